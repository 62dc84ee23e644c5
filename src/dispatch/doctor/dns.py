"""TXT look-ups for `dispatch doctor` (dnspython lives here and nowhere else).

A :class:`TxtLookup` answers "the TXT strings at this name": a list (empty when the name or
record does not exist) or :class:`DnsUnreachable` when no resolver gave an answer in time, which
the checks report as "could not check" rather than "missing". DISPATCH_DNS_SERVERS points it at
other resolvers (tests run their own on loopback).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import dns.exception
import dns.nameserver
import dns.resolver

from dispatch.errors import ConfigError

#: Seconds for one query to one server, and for a whole look-up (all servers, retries).
QUERY_TIMEOUT = 2.0
LOOKUP_LIFETIME = 5.0

_SERVERS_HINT = (
    "Set DISPATCH_DNS_SERVERS to resolver addresses separated by commas, as IP or IP:port "
    "(e.g. 1.1.1.1,9.9.9.9 or [2606:4700::1111]:53), or leave it empty for the system's."
)


class DnsUnreachable(Exception):
    """No resolver answered (timeout, refused, SERVFAIL, no resolver configured)."""


def parse_servers(values: Sequence[str]) -> list[tuple[str, int]]:
    """``1.1.1.1``, ``127.0.0.1:5353``, ``::1``, ``[::1]:5353`` as (address, port) pairs."""
    servers = []
    for value in values:
        host, port = value.strip(), "53"
        if host.startswith("["):
            host, _, rest = host[1:].partition("]")
            port = rest.removeprefix(":") or "53"
        elif host.count(":") == 1:
            host, port = host.split(":")
        try:
            address = str(ipaddress.ip_address(host))
            number = int(port)
            if not 0 < number < 65536:
                raise ValueError(port)
        except ValueError:
            raise ConfigError(
                f"DISPATCH_DNS_SERVERS has {value!r}, which is not an IP address with an "
                "optional port",
                _SERVERS_HINT,
            ) from None
        servers.append((address, number))
    return servers


class TxtLookup:
    """TXT records through the configured resolvers (or the system's)."""

    def __init__(self, servers: Sequence[str] = (), lifetime: float = LOOKUP_LIFETIME) -> None:
        self.lifetime = lifetime
        parsed = parse_servers(servers)
        self.description = ", ".join(f"{a}:{p}" for a, p in parsed) or "the system's resolvers"
        self._error = ""
        if parsed:
            self._resolver = dns.resolver.Resolver(configure=False)
            self._resolver.nameservers = [dns.nameserver.Do53Nameserver(a, p) for a, p in parsed]
        else:
            try:
                self._resolver = dns.resolver.Resolver()
            except dns.exception.DNSException as exc:  # no /etc/resolv.conf, no servers in it
                self._resolver = dns.resolver.Resolver(configure=False)
                self._error = f"no DNS resolver is configured ({exc})"
        self._resolver.timeout = min(QUERY_TIMEOUT, lifetime)
        self._resolver.lifetime = lifetime

    def txt(self, name: str) -> list[str]:
        """The TXT strings at ``name`` (each record's pieces joined), [] when there are none."""
        if self._error:
            raise DnsUnreachable(self._error)
        try:
            answer = self._resolver.resolve(name, "TXT", lifetime=self.lifetime, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.Timeout:
            raise DnsUnreachable(
                f"no answer from {self.description} within {self.lifetime:g} s"
            ) from None
        except dns.resolver.NoNameservers:
            raise DnsUnreachable(f"{self.description} could not answer for {name}") from None
        except dns.exception.DNSException as exc:
            raise DnsUnreachable(f"the look-up of {name} failed: {exc}") from None
        records = []
        for rdata in answer:
            strings = getattr(rdata, "strings", ())
            records.append(b"".join(strings).decode("utf-8", "replace"))
        return records
