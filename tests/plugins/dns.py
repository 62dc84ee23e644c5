"""DNS servers on loopback for `dispatch doctor`'s tests (dnslib), reached through
DISPATCH_DNS_SERVERS: one that answers TXT records from a dict the test fills in, and one
that never answers at all."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from dnslib import QTYPE, RCODE, RR, TXT
from dnslib.server import DNSLogger, DNSServer


class TxtZone:
    """dnslib resolver: TXT records by name; any other name is NXDOMAIN."""

    def __init__(self) -> None:
        self.records: dict[str, list[str]] = {}
        self.queries: list[str] = []
        self.lock = threading.Lock()

    def add(self, name: str, *values: str) -> None:
        with self.lock:
            self.records.setdefault(name.lower().rstrip("."), []).extend(values)

    def resolve(self, request: Any, handler: Any) -> Any:
        reply = request.reply()
        qname = str(request.q.qname).lower().rstrip(".")
        with self.lock:
            self.queries.append(qname)
            values = list(self.records.get(qname, []))
        if not values:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        if request.q.qtype == QTYPE.TXT:
            for value in values:  # one DNS string holds 255 bytes: long keys come in pieces
                pieces = [value[i : i + 255] for i in range(0, len(value), 255)] or [""]
                reply.add_answer(RR(request.q.qname, QTYPE.TXT, rdata=TXT(pieces), ttl=60))
        return reply


class DnsFixture:
    def __init__(self, zone: TxtZone, server: DNSServer) -> None:
        self.zone = zone
        self.server = server
        host, port = server.server.server_address[:2]
        self.address = f"{host}:{port}"

    def add(self, name: str, *values: str) -> None:
        self.zone.add(name, *values)

    @property
    def queries(self) -> list[str]:
        with self.zone.lock:
            return list(self.zone.queries)


@pytest.fixture
def dns_server() -> Iterator[DnsFixture]:
    """A real DNS server (UDP) on 127.0.0.1 and a free port; ``dns_server.address`` is the
    value for DISPATCH_DNS_SERVERS."""
    zone = TxtZone()
    server = DNSServer(
        zone,
        address="127.0.0.1",
        port=0,
        logger=DNSLogger("-request,-reply,-truncated,-error,-recv,-send,-data"),
    )
    server.start_thread()
    try:
        yield DnsFixture(zone, server)
    finally:
        server.stop()
        server.server.server_close()


@pytest.fixture
def silent_dns() -> Iterator[str]:
    """A UDP socket on loopback that takes queries and never answers (a blackholed resolver)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()
