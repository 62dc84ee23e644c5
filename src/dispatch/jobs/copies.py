"""Test copies (``dispatch send --to``) and dry runs (``--dry-run``): the issue as readers
would get it, without a ledger and, for dry runs, without SMTP."""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from dispatch.config import Settings
from dispatch.errors import InputError, SendError
from dispatch.jobs.messages import issue_messages
from dispatch.mailer import Outcome, SmtpConnection, relay_from_settings
from dispatch.mailer.dkim import signer_from_settings
from dispatch.models import Persona
from dispatch.render.message import Recipient
from dispatch.store import Database, donations
from dispatch.store import subscribers as subscriber_store
from dispatch.store.issues import require_issue
from dispatch.subscribers import envelope_address, normalize_address


@dataclass
class TestCopy:
    address: str
    ok: bool
    reply: str


def send_test_copies(
    db: Database,
    settings: Settings,
    issue_id: str,
    addresses: Sequence[str],
    persona: str = Persona.NON_DONOR.value,
) -> list[TestCopy]:
    """Send one copy per address, as ``persona`` sees it; the ledger is not touched."""
    issue = require_issue(db, issue_id)
    factory = issue_messages(db, settings, issue)
    target = relay_from_settings(settings)
    signer = signer_from_settings(settings)
    normalised = []
    for address in addresses:
        try:
            normalised.append(normalize_address(address, allow_test_domains=True))
        except InputError as exc:
            raise InputError(
                f"--to {exc.message}", "Give a full address such as ana@example.org."
            ) from exc
    conn = SmtpConnection(target, settings.smtp_timeout)
    try:
        conn.open()
    except OSError as exc:
        raise SendError(f"Cannot reach the relay {target.describe()}: {exc}") from exc
    results = []
    try:
        for address in normalised:
            known = subscriber_store.get_subscriber(db, address)
            recipient = Recipient(
                email=address,
                name=known.name if known else "",
                first_name=known.first_name if known else "",
                token="test-" + secrets.token_hex(8),
                unsub_token=known.unsub_token if known else "test-copy",
                key="test-" + secrets.token_hex(6),
            )
            data = factory.build(persona, recipient)
            if signer is not None:
                data = signer.sign(data)
            status = conn.send(
                envelope_address(factory.config.from_address), envelope_address(address), data
            )
            results.append(TestCopy(address, status.outcome == Outcome.SENT, status.describe))
    finally:
        conn.close()
    return results


def dry_run(
    db: Database, settings: Settings, issue_id: str, out_dir: Path, limit: int | None = None
) -> list[Path]:
    """Write the copy each active subscriber would get as ``.eml`` files; no ledger, no SMTP."""
    issue = require_issue(db, issue_id)
    factory = issue_messages(db, settings, issue)
    signer = signer_from_settings(settings)
    personas = donations.donor_personas(
        db, datetime.now(UTC), settings.donor_recent_days, settings.donor_lapsed_days
    )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"Cannot create {out_dir}: {exc.strerror or exc}") from exc
    written = []
    for n, sub in enumerate(subscriber_store.first_active(db, limit), start=1):
        recipient = Recipient(
            email=sub.email,
            name=sub.name,
            token="dryrun" + secrets.token_hex(12),
            unsub_token=sub.unsub_token,
            key=f"dry-run-{sub.id}",
            manage_url=factory.manage_urls.get(sub.id, ""),
        )
        data = factory.build(personas.get(sub.id, Persona.NON_DONOR.value), recipient)
        if signer is not None:
            data = signer.sign(data)
        safe = re.sub(r"[^A-Za-z0-9@._-]+", "_", sub.email)[:80]
        path = out_dir / f"{n:06d}-{safe}.eml"
        path.write_bytes(data)
        written.append(path)
    return written
