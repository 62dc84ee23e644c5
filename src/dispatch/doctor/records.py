"""The From domain's SPF, DKIM and DMARC records, read from DNS and judged.

SPF: exactly one TXT record starting ``v=spf1`` at the domain (RFC 7208 4.5: two is an error).
DKIM: the TXT record at ``<selector>._domainkey.<domain>``; when Dispatch signs, its ``p=`` must
be the public half of DISPATCH_DKIM_KEY_FILE, else every signature fails. DMARC: ``v=DMARC1`` at
``_dmarc.<domain>``, else at a parent domain, found by DMARCbis's DNS tree walk (which replaced
the Public Suffix List: up to 8 labels, dropping the leftmost until a record turns up).
"""

from __future__ import annotations

from typing import Protocol

from dispatch.doctor.checks import CheckResult, bulk_missing, fail, ok, warn
from dispatch.doctor.dns import DnsUnreachable


class Lookup(Protocol):
    description: str

    def txt(self, name: str) -> list[str]: ...


def unreachable(name: str, what: str, exc: DnsUnreachable) -> CheckResult:
    """DNS could not be asked: say so and go on (a warning, never a block)."""
    return warn(
        name,
        f"{what} not checked: DNS could not be reached ({exc})",
        "Check the network, or set DISPATCH_DNS_SERVERS to resolvers that answer; rerun.",
    )


def tags(record: str) -> dict[str, str]:
    """``k=v; k=v`` tag lists (DKIM, DMARC) as a dict, names lower-cased, whitespace trimmed."""
    out = {}
    for part in record.split(";"):
        name, sep, value = part.partition("=")
        if sep:
            out[name.strip().lower()] = value.strip()
    return out


def aligned(domain: str, other: str) -> bool:
    """Relaxed DMARC alignment, approximately: the same domain, or one inside the other."""
    a, b = domain.lower().rstrip("."), other.lower().rstrip(".")
    return a == b or a.endswith("." + b) or b.endswith("." + a)


# -- SPF ------------------------------------------------------------------------------------


def check_spf(lookup: Lookup, domain: str) -> CheckResult:
    try:
        records = lookup.txt(domain)
    except DnsUnreachable as exc:
        return unreachable("spf", f"SPF of {domain}", exc)
    spf = [r for r in records if r.lower() == "v=spf1" or r.lower().startswith("v=spf1 ")]
    fix = (
        f"Publish one TXT record at {domain} listing who may send for it, e.g. "
        '"v=spf1 include:<your relay\'s SPF domain> ~all" (your relay documents the include).'
    )
    if not spf:
        return bulk_missing("spf", f"{domain} has no SPF record", fix)
    if len(spf) > 1:
        return bulk_missing(
            "spf",
            f"{domain} has {len(spf)} SPF records; receivers treat that as an error",
            "Merge them into one v=spf1 record.",
        )
    record = spf[0]
    if record.split()[-1].lower() in ("+all", "all"):
        return warn(
            "spf",
            f"{domain}: {record} lets anyone send as {domain}",
            "End the record with ~all or -all instead of +all.",
        )
    return ok("spf", f"{domain}: {record}")


# -- DKIM -----------------------------------------------------------------------------------


def _key_of(record: str) -> str:
    return "".join(tags(record).get("p", "").split())


def check_dkim_signing(
    lookup: Lookup, domain: str, selector: str, expected_record: str, from_domain: str
) -> CheckResult:
    """Dispatch signs: the published key must be the public half of its private key."""
    name = f"{selector}._domainkey.{domain}"
    try:
        records = [r for r in lookup.txt(name) if "p=" in r]
    except DnsUnreachable as exc:
        return unreachable("dkim", f"DKIM record {name}", exc)
    expected = _key_of(expected_record)
    publish = "Publish the record `dispatch dkim record` prints, then rerun."
    if not records:
        return bulk_missing("dkim", f"no DKIM record at {name}: every signature fails", publish)
    keys = [_key_of(r) for r in records]
    if expected not in keys:
        if not any(keys):
            detail = f"the DKIM key at {name} is revoked (empty p=)"
        else:
            detail = f"the DKIM record at {name} is not the key in DISPATCH_DKIM_KEY_FILE"
        return fail(
            "dkim",
            f"{detail}: every message would carry a broken signature",
            publish + " Or point DISPATCH_DKIM_KEY_FILE at the key that matches it.",
        )
    if not aligned(domain, from_domain):
        return warn(
            "dkim",
            f"signing as {domain}, but mail comes from {from_domain}: DMARC needs them aligned",
            "Set DISPATCH_DKIM_DOMAIN to the From address's domain (and publish its record).",
        )
    return ok("dkim", f"{name} publishes the key Dispatch signs with")


def check_dkim_relay(lookup: Lookup, domain: str, selector: str) -> CheckResult:
    """The relay signs with a selector of the From domain: its record must hold a key."""
    name = f"{selector}._domainkey.{domain}"
    try:
        records = [r for r in lookup.txt(name) if "p=" in r]
    except DnsUnreachable as exc:
        return unreachable("dkim", f"DKIM record {name}", exc)
    if not records or not any(_key_of(r) for r in records):
        return bulk_missing(
            "dkim",
            f"no DKIM key at {name} (DISPATCH_RELAY_DKIM_SELECTOR)",
            "Publish the DKIM record your relay gives you for this selector, then rerun.",
        )
    return ok("dkim", f"{name} publishes a key (the relay signs)")


def dkim_not_configured(from_domain: str) -> CheckResult:
    return bulk_missing(
        "dkim",
        f"Dispatch does not sign mail from {from_domain}, and no relay selector is set to check",
        "Run `dispatch dkim keygen`, publish the record and set DISPATCH_DKIM_DOMAIN, "
        "DISPATCH_DKIM_SELECTOR and DISPATCH_DKIM_KEY_FILE; or, if your relay signs for your "
        "domain, set DISPATCH_RELAY_DKIM_SELECTOR to its selector.",
    )


# -- DMARC ----------------------------------------------------------------------------------


def dmarc_names(domain: str) -> list[str]:
    """DMARCbis tree walk: the domain, then (from at most 7 labels) each parent but the TLD."""
    labels = domain.lower().rstrip(".").split(".")
    names = [".".join(labels)]
    if len(labels) > 7:
        labels = labels[-7:]
        names.append(".".join(labels))
    while len(labels) > 2:
        labels = labels[1:]
        names.append(".".join(labels))
    return list(dict.fromkeys(names))


def check_dmarc(lookup: Lookup, domain: str) -> CheckResult:
    fix = (
        f'Publish a TXT record at _dmarc.{domain} such as "v=DMARC1; p=none; '
        f'rua=mailto:dmarc@{domain}" (p=none is the minimum Gmail and Yahoo ask for).'
    )
    for name in dmarc_names(domain):
        try:
            records = [r for r in lookup.txt(f"_dmarc.{name}") if r.startswith("v=DMARC1")]
        except DnsUnreachable as exc:
            return unreachable("dmarc", f"DMARC of {domain}", exc)
        if len(records) > 1:
            return bulk_missing(
                "dmarc",
                f"_dmarc.{name} has {len(records)} DMARC records, so none counts",
                "Keep exactly one v=DMARC1 record.",
            )
        if not records:
            continue
        found = tags(records[0])
        policy = found.get("p", "")
        if name != domain.lower():
            policy = found.get("sp", policy)
        if policy not in ("none", "quarantine", "reject"):
            return bulk_missing("dmarc", f"_dmarc.{name} has no valid policy (p=)", fix)
        where = "" if name == domain.lower() else f" (inherited from {name})"
        return ok("dmarc", f"_dmarc.{name}: policy {policy}{where}")
    return bulk_missing("dmarc", f"{domain} has no DMARC record", fix)
