"""A real SMTP server (aiosmtpd) in-process on a free loopback port, with fault injection.

``smtp_server`` stores every message it accepts (envelope and raw bytes) and can be told to:

- answer a recipient with scripted replies (``server.script_rcpt("a@x", "451 later", "250")``:
  one reply per attempt, the last one repeating; "250" means accept; "CLOSE" drops the
  connection instead of answering, before any message data);
- answer the end of DATA likewise (``script_data``), where "CLOSE" drops the connection after
  the final dot without storing the message, and "ACCEPT+CLOSE" stores it and then drops the
  connection without a reply (delivered, but the sender cannot know);
- go away after N accepted messages (``drop_after(N)``: a 421 and a closed connection, then
  every new connection is closed), or altogether (``server.down = True``);
- throttle above a rate (``throttle(rate, burst, reply, at)``: a token bucket; MAIL (or RCPT,
  or the end of DATA, per ``at``) beyond it gets ``454 4.7.0 Throttling`` or the reply given,
  a 421 also closing the connection), recording each as accepted or throttled in ``events``
  in arrival order;
- answer slowly (``slow_data = seconds`` after storing a message, ``slow_mail`` before MAIL).

It offers PIPELINING (``pipelining=False`` to test the one-command-at-a-time path).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import pytest

from dispatch.devsmtp import start_controller


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt: str
    data: bytes

    def parsed(self) -> EmailMessage:
        msg = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        return msg


class FaultySmtpHandler:
    """aiosmtpd handler that records messages and injects scripted faults."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[Received] = []
        self.rcpt_scripts: dict[str, list[str]] = {}
        self.data_scripts: dict[str, list[str]] = {}
        self.down = False
        self._drop_after: int | None = None
        self.connections = 0
        self.rcpt_attempts: dict[str, int] = {}
        self.pipelining = True
        self.slow_data = 0.0
        self.slow_mail = 0.0
        self.events: list[tuple[str, str]] = []  # ("mail" | "throttled" | "421", sender)
        self._throttle: tuple[float, float, str] | None = None
        self.throttle_at = "mail"  # or "rcpt", "data": where the throttling reply comes
        self._tokens = 0.0
        self._last = 0.0

    # -- configuration from tests -------------------------------------------------------

    def script_rcpt(self, address: str, *replies: str) -> None:
        self.rcpt_scripts[address.lower()] = list(replies)

    def script_data(self, address: str, *replies: str) -> None:
        self.data_scripts[address.lower()] = list(replies)

    def drop_after(self, count: int | None) -> None:
        """After ``count`` more accepted messages, drop connections and refuse all mail."""
        with self.lock:
            self._drop_after = None if count is None else len(self.received) + count

    def throttle(
        self,
        rate: float | None,
        burst: float = 5.0,
        reply: str = "454 4.7.0 Throttling",
        at: str = "mail",
    ) -> None:
        """Refuse MAIL (or ``at`` RCPT or the end of DATA) with ``reply`` beyond ``rate`` per
        second (bursts of ``burst``)."""
        with self.lock:
            self.throttle_at = at
            self._throttle = None if rate is None else (rate, burst, reply)
            self._tokens, self._last = burst, time.monotonic()

    def _take_token(self) -> str | None:
        """The throttling reply, or None when this MAIL is within the rate."""
        with self.lock:
            if self._throttle is None:
                return None
            rate, burst, reply = self._throttle
            now = time.monotonic()
            self._tokens = min(burst, self._tokens + (now - self._last) * rate)
            self._last = now
            if self._tokens >= 1:
                self._tokens -= 1
                return None
            return reply

    @property
    def throttled(self) -> int:
        with self.lock:
            return sum(1 for kind, _ in self.events if kind == "throttled")

    def recover(self) -> None:
        with self.lock:
            self._drop_after = None
            self.down = False

    # -- aiosmtpd hooks -----------------------------------------------------------------

    def _refusing(self) -> bool:
        return self.down or (
            self._drop_after is not None and len(self.received) >= self._drop_after
        )

    @staticmethod
    def _next(scripts: dict[str, list[str]], address: str) -> str | None:
        script = scripts.get(address.lower())
        if not script:
            return None
        return script.pop(0) if len(script) > 1 else script[0]

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        self.connections += 1
        session.host_name = hostname
        if self._refusing():
            server.transport.close()
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.slow_mail:
            await asyncio.sleep(self.slow_mail)
        if self._refusing():
            _close_after_reply(server)
            return "421 4.3.0 service not available, closing"
        if self.throttle_at == "mail":
            throttled = self._throttled(server, address)
            if throttled:
                return throttled
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    def _throttled(self, server: Any, address: str) -> str | None:
        throttled = self._take_token()
        with self.lock:
            self.events.append(("throttled" if throttled else "mail", address))
        if throttled and throttled.startswith("421"):
            _close_after_reply(server)
        return throttled

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.throttle_at == "rcpt":
            throttled = self._throttled(server, address)
            if throttled:
                return throttled
        with self.lock:
            self.rcpt_attempts[address.lower()] = self.rcpt_attempts.get(address.lower(), 0) + 1
        reply = self._next(self.rcpt_scripts, address)
        if reply == "CLOSE":
            server.transport.close()
            return "421 4.4.2 (never seen: the connection is closed)"
        if reply and not reply.startswith("250"):
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        rcpt = envelope.rcpt_tos[0] if envelope.rcpt_tos else ""
        reply = self._next(self.data_scripts, rcpt)
        if reply == "CLOSE":  # the final dot arrived; the message is lost, no reply
            server.transport.abort()
            return "451 4.4.2 (never seen: the connection is closed)"
        if reply and reply != "ACCEPT+CLOSE" and not reply.startswith("250"):
            return reply
        if self.throttle_at == "data":
            throttled = self._throttled(server, rcpt)
            if throttled:
                return throttled
        with self.lock:
            if self._refusing():
                _close_after_reply(server)
                return "421 4.3.0 closing"
            for address in envelope.rcpt_tos:
                self.received.append(
                    Received(envelope.mail_from, address, envelope.original_content)
                )
        if reply == "ACCEPT+CLOSE":  # delivered, but the reply never reaches the sender
            server.transport.abort()
            return "250 (never seen: the connection is closed)"
        if self.slow_data:
            await asyncio.sleep(self.slow_data)
        return "250 2.0.0 OK queued"


def _close_after_reply(server: Any) -> None:
    """Close once the reply being returned has been written (a 421's usual manners)."""
    asyncio.get_running_loop().call_soon(server.transport.close)


class SmtpServer:
    """The running server: ``url`` for DISPATCH_SMTP_URL, ``messages`` for assertions."""

    def __init__(self, handler: FaultySmtpHandler, controller: Any) -> None:
        self.handler = handler
        self.controller = controller
        self.host = controller.hostname
        self.port = controller.port

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    @property
    def messages(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.received)

    def to(self, address: str) -> list[Received]:
        return [m for m in self.messages if m.rcpt.lower() == address.lower()]

    def __getattr__(self, name: str) -> Any:  # script_rcpt, drop_after, down, ...
        return getattr(self.handler, name)

    def set_down(self, value: bool) -> None:
        self.handler.down = value


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    handler = FaultySmtpHandler()
    controller = start_controller(handler, "127.0.0.1")
    try:
        yield SmtpServer(handler, controller)
    finally:
        controller.stop()


@pytest.fixture
def smtp_env(smtp_server: SmtpServer) -> dict[str, str]:
    """Environment for run_cli/make_settings that sends to the fixture server."""
    return {
        "DISPATCH_SMTP_URL": smtp_server.url,
        "DISPATCH_PAYMENT_LINK": "https://buy.stripe.com/test_demo123",
        "DISPATCH_SMTP_CONCURRENCY": "2",
    }


# -- issues and subscribers for send tests ----------------------------------------------------

SAMPLE_HTML = (
    '<!DOCTYPE html>\n<html><body style="margin:0">\n'
    '<p style="font-size:16px">%%DISPATCH_GREETING%%</p>\n'
    '<p style="color:#333">This week at the Riverside Ledger: the council’s budget, '
    "the river’s flood gauge, and a café that = community.</p>\n"
    '<p><a href="%%DISPATCH_DONATE_URL%%" style="color:#b00">Support our journalism</a></p>\n'
    '<p style="font-size:12px">Sent to %%DISPATCH_EMAIL%%. '
    '<a href="%%DISPATCH_UNSUBSCRIBE_URL%%">Unsubscribe</a></p>\n'
    "</body></html>\n"
)
SAMPLE_TEXT = (
    "%%DISPATCH_GREETING%%\n\n"
    "This week at the Riverside Ledger: the council’s budget, the river’s flood gauge.\n\n"
    "Support our journalism: %%DISPATCH_DONATE_URL%%\n\n"
    "Sent to %%DISPATCH_EMAIL%%. Unsubscribe: %%DISPATCH_UNSUBSCRIBE_URL%%\n"
)


def create_sample_issue(
    db: Any, issue_id: str = "2026-W48", subject: str = "The Ledger: budget, floods and a café"
) -> str:
    from dispatch.models import Persona, RenderedVariant
    from dispatch.store import issues

    issues.create_issue(db, issue_id, subject=subject)
    issues.save_variants(
        db,
        issue_id,
        [
            RenderedVariant(
                p.value,
                subject,
                SAMPLE_HTML.replace("journalism", f"journalism ({p.value})"),
                SAMPLE_TEXT,
            )
            for p in Persona
        ],
    )
    return issue_id


def add_subscribers(db: Any, people: list[tuple[str, str]]) -> None:
    from dispatch.store.subscribers import import_subscribers
    from dispatch.subscribers import CsvRow

    rows = [CsvRow(line=n, email=e, name=name) for n, (e, name) in enumerate(people, start=2)]
    import_subscribers(db, rows, source="test")
