"""`dispatch doctor`: everything a send needs, checked at once, each with what to fix.

The relay (connect, STARTTLS, login; nothing sent), the From domain's SPF, DKIM and DMARC,
one-click unsubscribe, the public web address, the Payment Link (against Stripe when a key is
set), the templates, and the list's size against the Gmail, Yahoo and Outlook bulk-sender rules.
Checks run concurrently, each within its own time limit (``dispatch.doctor.checks``). A setting
that does not parse fails the checks that use it, with its message, and the rest still run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dispatch.config import Settings, check_payment_link_shape
from dispatch.doctor import checks as c
from dispatch.doctor import records
from dispatch.doctor.dns import TxtLookup
from dispatch.doctor.web import check_public_url
from dispatch.donations import StripeGateway, donation_link_base
from dispatch.errors import ConfigError, DispatchError, DonationError
from dispatch.mailer.dkim import signer_from_settings
from dispatch.mailer.probe import probe_relay
from dispatch.mailer.url import parse_smtp_url
from dispatch.models import PLACEHOLDERS, Article, Issue, IssueKind, IssueStatus, SubscriberStatus
from dispatch.render.settings import renderer_from
from dispatch.store import Database
from dispatch.store import subscribers as subscriber_store
from dispatch.subscribers import parse_mailbox

log = logging.getLogger(__name__)

#: Each check's own time limit in seconds (the whole run is also capped, checks.TOTAL_LIMIT).
LIMITS = {
    "relay": 15.0,
    "spf": 8.0,
    "dkim": 8.0,
    "dmarc": 12.0,
    "public_url": 10.0,
    "payment_link": 12.0,
    "templates": 15.0,
    "unsubscribe": 5.0,
}

#: What a late check was waiting for, for its report.
WAITING_FOR = {
    "relay": "the relay",
    "spf": "DNS",
    "dkim": "DNS",
    "dmarc": "DNS",
    "public_url": "the public URL",
    "payment_link": "Stripe",
    "templates": "the templates (still rendering)",
}

_DNS = ("DISPATCH_FROM", "DISPATCH_DNS_SERVERS")
_DKIM = (
    "DISPATCH_DKIM_DOMAIN",
    "DISPATCH_DKIM_SELECTOR",
    "DISPATCH_DKIM_KEY_FILE",
    "DISPATCH_RELAY_DKIM_SELECTOR",
)
#: The settings each check reads: one that does not parse fails the check with its message.
NEEDS: dict[str, tuple[str, ...]] = {
    "relay": ("DISPATCH_SMTP_URL", "DISPATCH_SMTP_TIMEOUT"),
    "spf": _DNS,
    "dkim": _DNS + _DKIM,
    "dmarc": _DNS,
    "unsubscribe": ("DISPATCH_PUBLIC_URL", "DISPATCH_UNSUBSCRIBE_MAILTO"),
    "public_url": ("DISPATCH_PUBLIC_URL",),
    "payment_link": (
        "DISPATCH_PAYMENT_LINK",
        "STRIPE_SECRET_KEY",
        "STRIPE_API_BASE",
        "STRIPE_MAX_NETWORK_RETRIES",
    ),
    "templates": ("DISPATCH_TEMPLATES", "DISPATCH_OUTLET_NAME", "DISPATCH_PUBLIC_URL"),
    "list_size": ("DISPATCH_DB",),
}


@dataclass(frozen=True)
class DoctorReport:
    checks: list[c.CheckResult]

    @property
    def ok(self) -> bool:
        return all(check.status != c.Status.FAIL for check in self.checks)

    @property
    def failed(self) -> list[c.CheckResult]:
        return [check for check in self.checks if check.status == c.Status.FAIL]

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [check.as_dict() for check in self.checks]}


# -- the checks -----------------------------------------------------------------------------


def check_relay(settings: Settings) -> c.CheckResult:
    target = parse_smtp_url(settings.require("smtp_url"))
    found = probe_relay(target, timeout=min(settings.smtp_timeout or 10.0, 10.0))
    login = ", logged in" if found.logged_in else ", no login"
    if found.tls == "none" and not found.loopback:
        return c.warn(
            "relay",
            f"{found.where} answers{login}, but without TLS: mail crosses the network unencrypted",
            "Use smtps:// or a relay that offers STARTTLS.",
        )
    secured = {"implicit": "TLS", "starttls": "STARTTLS", "none": "no TLS (loopback)"}[found.tls]
    return c.ok("relay", f"{found.where} answers: {secured}{login}; nothing was sent")


def from_domain(settings: Settings) -> str:
    _, address = parse_mailbox(settings.require("from_address"), "DISPATCH_FROM")
    return address.rpartition("@")[2].lower()


def check_dkim(settings: Settings, lookup: TxtLookup) -> c.CheckResult:
    domain = from_domain(settings)
    signer = signer_from_settings(settings)
    if signer is not None:
        result = records.check_dkim_signing(
            lookup, signer.domain, signer.selector, signer.dns_record(), domain
        )
        if result.status == c.Status.OK and signer.algorithm.startswith("ed25519"):
            return c.warn(
                "dkim",
                f"{result.detail}, but only with Ed25519, which many receivers do not verify "
                "yet (RFC 8463): to them the mail is unsigned",
                "Sign with an RSA key (`dispatch dkim keygen --algorithm rsa`).",
            )
        return result
    if settings.relay_dkim_selector:
        return records.check_dkim_relay(lookup, domain, settings.relay_dkim_selector)
    return records.dkim_not_configured(domain)


def check_unsubscribe(settings: Settings) -> c.CheckResult:
    public = settings.public_url.strip().rstrip("/")
    if public.startswith("https://"):
        return c.ok("unsubscribe", f"one-click (RFC 8058) through {public}/u/<token>, and mailto")
    return c.bulk_missing(
        "unsubscribe",
        "no https unsubscribe URL: readers can leave by mailto only, with no one-click "
        "unsubscribe (List-Unsubscribe-Post)",
        "Run `dispatch serve` behind https and set DISPATCH_PUBLIC_URL to its https:// address.",
    )


def check_payment_link(settings: Settings, stored_link: str) -> c.CheckResult:
    name = "payment_link"
    if not settings.payment_link.strip() and not stored_link:
        return c.warn(
            name,
            "no Payment Link: the emails carry no donation link",
            "Run `dispatch donations setup`, or set DISPATCH_PAYMENT_LINK.",
        )
    url = check_payment_link_shape(settings.payment_link or stored_link)
    if not settings.stripe_secret_key:
        return c.ok(
            name,
            f"{url} is an https address (set STRIPE_SECRET_KEY to check it against Stripe too)",
        )
    gateway = StripeGateway(settings)
    try:
        link = gateway.find_payment_link(url)
    except DonationError as exc:
        return c.warn(name, f"{url} could not be checked against Stripe: {exc.message}", exc.hint)
    if link is None:
        return c.fail(
            name,
            f"{url} is not a Payment Link of this Stripe account "
            f"({gateway.mode} mode): the Donate buttons would go astray",
            "Set DISPATCH_PAYMENT_LINK to the link's URL from Dashboard → Payment "
            "Links, with STRIPE_SECRET_KEY of the same mode.",
        )
    if link.get("active") is False:
        return c.fail(
            name,
            f"the Payment Link {url} is deactivated: donors would land on an error page",
            "Reactivate it in the Stripe Dashboard, or set another.",
        )
    return c.ok(name, f"{url} is an active Payment Link ({gateway.mode} mode)")


def sample_issue() -> Issue:
    """An issue of two articles to render the templates with (none of the outlet's data)."""
    now = datetime.now(UTC)
    articles = tuple(
        Article(
            title=title,
            url=f"https://example.org/{n}",
            guid=f"doctor-{n}",
            published=now,
            source="doctor",
            excerpt="A sentence or two of the article. And another.",
        )
        for n, title in enumerate(("First story of the week", "A second story, with “quotes”"))
    )
    return Issue(
        id="2026-W01",
        kind=IssueKind.DIGEST,
        status=IssueStatus.DRAFT,
        subject="Doctor's sample issue",
        preheader="This week",
        note="A note from the editor.",
        created_at=now,
        articles=articles,
    )


def check_templates(settings: Settings) -> c.CheckResult:
    variants = renderer_from(settings).render_issue(sample_issue())
    empty = [v.persona for v in variants if not v.html.strip() or not v.text.strip()]
    if empty:
        return c.fail(
            "templates",
            f"the digest renders empty for {', '.join(empty)}",
            "Check digest.html and digest.txt in DISPATCH_TEMPLATES.",
        )
    link = PLACEHOLDERS["UNSUBSCRIBE_URL"]
    unlinked = [v.persona for v in variants if link not in v.html or link not in v.text]
    if unlinked:
        return c.warn(
            "templates",
            f"the digest has no unsubscribe link in its body for {', '.join(unlinked)} "
            "(HTML or text); only the List-Unsubscribe header offers one",
            f"Put {{{{ links.unsubscribe }}}} (it renders as {link}) in digest.html and "
            "digest.txt.",
        )
    where = settings.templates_dir or "the bundled templates"
    return c.ok(
        "templates",
        f"the digest renders for {len(variants)} kinds of reader (HTML and text) from {where}",
    )


# -- putting it together ----------------------------------------------------------------------


def _settings_check(problems: Mapping[str, ConfigError]) -> c.CheckResult:
    claimed = {name for needs in NEEDS.values() for name in needs}
    rest = [exc for name, exc in problems.items() if name not in claimed]
    if not rest:
        return c.ok("settings", "every setting parses")
    return c.fail("settings", "; ".join(exc.message.rstrip(".") for exc in rest), rest[0].hint)


def _store_facts(
    settings: Settings, open_db: Callable[[], Database]
) -> tuple[c.CheckResult, int | None, str]:
    """The list's size and the stored Payment Link, read in this thread (SQLite's rule)."""
    try:
        db = open_db()
        readers = subscriber_store.status_counts(db).get(SubscriberStatus.ACTIVE, 0)
        stored = "" if settings.payment_link.strip() else donation_link_base(db, settings)
    except DispatchError as exc:
        return c.from_error("list_size", exc), None, ""
    except Exception as exc:  # the store not as expected: report it, run the other checks
        log.debug("reading the store failed", exc_info=True)
        detail = f"the database could not be read ({type(exc).__name__})"
        return c.fail("list_size", detail, "Rerun with --debug to see why."), None, ""
    bulk = readers >= c.BULK_THRESHOLD
    rule = ("at or above" if bulk else "below") + f" the {c.BULK_THRESHOLD:,}-a-day bulk-sender"
    detail = f"{readers:,} active readers: {rule} line of Gmail, Yahoo and Outlook"
    if bulk:
        detail += " (SPF, DKIM, DMARC and one-click unsubscribe required)"
    return c.ok("list_size", detail), readers, stored


def run_doctor(
    settings: Settings,
    problems: Mapping[str, ConfigError],
    open_db: Callable[[], Database],
    total: float = c.TOTAL_LIMIT,
) -> DoctorReport:
    """Run every check and settle the bulk-sender rules by the list's size."""
    if "DISPATCH_DB" in problems:
        size: c.CheckResult = c.from_error("list_size", problems["DISPATCH_DB"])
        readers, stored = None, ""
    else:
        size, readers, stored = _store_facts(settings, open_db)

    lookup: TxtLookup | None = None
    lookup_error: ConfigError | None = None
    try:
        lookup = TxtLookup(settings.dns_servers)
    except ConfigError as exc:
        lookup_error = exc

    def dns(fn: Callable[[TxtLookup], c.CheckResult]) -> Callable[[], c.CheckResult]:
        def run() -> c.CheckResult:
            if lookup_error is not None:
                raise lookup_error
            assert lookup is not None
            return fn(lookup)

        return run

    runs: dict[str, Callable[[], c.CheckResult]] = {
        "relay": lambda: check_relay(settings),
        "spf": dns(lambda lk: records.check_spf(lk, from_domain(settings))),
        "dkim": dns(lambda lk: check_dkim(settings, lk)),
        "dmarc": dns(lambda lk: records.check_dmarc(lk, from_domain(settings))),
        "unsubscribe": lambda: check_unsubscribe(settings),
        "public_url": lambda: check_public_url(settings.public_url, LIMITS["public_url"] - 2),
        "payment_link": lambda: check_payment_link(settings, stored),
        "templates": lambda: check_templates(settings),
    }
    lenient = {
        "spf",
        "dkim",
        "dmarc",
        "public_url",
        "payment_link",
    }  # late DNS, web or Stripe: say so, do not block
    planned = []
    for name, run in runs.items():
        bad = [problems[n] for n in NEEDS[name] if n in problems]
        if bad:
            run = _failing(name, bad[0])
        status = c.Status.WARN if name in lenient else c.Status.FAIL
        planned.append(c.Check(name, run, LIMITS[name], status, WAITING_FOR.get(name, name)))
    found = c.run_checks(planned, total=total)
    results = [_settings_check(problems), *found, size]
    return DoctorReport(c.apply_bulk_rule(results, readers))


def _failing(name: str, exc: ConfigError) -> Callable[[], c.CheckResult]:
    return lambda: c.from_error(name, exc)
