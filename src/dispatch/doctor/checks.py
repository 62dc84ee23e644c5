"""Check results and the runner that gives each check its own deadline.

Every check runs in its own daemon thread; the runner waits for each until the check's own time
limit or the whole run's, whichever comes first, and reports a check that has not finished by
then as timed out. A look-up that never returns therefore cannot hold the command up, and a
stuck thread cannot keep the process from exiting.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from dispatch.errors import DispatchError

log = logging.getLogger(__name__)

#: Seconds the whole run may take; every check's own limit is cut to fit within it.
TOTAL_LIMIT = 25.0

#: Gmail, Yahoo and Outlook: SPF, DKIM and DMARC (and one-click unsubscribe at Gmail and Yahoo)
#: are required of senders of 5,000 or more messages a day to their users.
BULK_THRESHOLD = 5000


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class CheckResult:
    """One line of the report: what was found (``detail``) and how to fix it (``fix``).

    ``bulk_rule`` marks a bulk-sender requirement that is not met: it warns below
    :data:`BULK_THRESHOLD` readers and fails at or above it (see :func:`apply_bulk_rule`).
    """

    name: str
    status: Status
    detail: str
    fix: str = ""
    bulk_rule: bool = False

    def as_dict(self) -> dict[str, str]:
        data = {"name": self.name, "status": str(self.status), "detail": self.detail}
        if self.fix:
            data["fix"] = self.fix
        return data


def ok(name: str, detail: str) -> CheckResult:
    return CheckResult(name, Status.OK, detail)


def warn(name: str, detail: str, fix: str = "") -> CheckResult:
    return CheckResult(name, Status.WARN, detail, fix)


def fail(name: str, detail: str, fix: str = "") -> CheckResult:
    return CheckResult(name, Status.FAIL, detail, fix)


def bulk_missing(name: str, detail: str, fix: str) -> CheckResult:
    """A bulk-sender requirement not met; its status is settled by the list's size."""
    return CheckResult(name, Status.WARN, detail, fix, bulk_rule=True)


def from_error(name: str, exc: DispatchError) -> CheckResult:
    """A failed check from a Dispatch error: its message as the detail, its hint as the fix."""
    return fail(name, exc.message.rstrip("."), exc.hint)


@dataclass(frozen=True)
class Check:
    """A check to run: ``run`` returns its result; if it is late, ``on_timeout`` is its status
    and ``waiting_for`` names what did not answer."""

    name: str
    run: Callable[[], CheckResult]
    limit: float
    on_timeout: Status = Status.FAIL
    waiting_for: str = "the check"


def _guarded(check: Check) -> CheckResult:
    try:
        return check.run()
    except DispatchError as exc:
        return from_error(check.name, exc)
    except Exception as exc:  # a bug in a check must not hide the others' results
        log.debug("doctor check %s crashed", check.name, exc_info=True)
        return fail(
            check.name,
            f"the check itself failed ({type(exc).__name__})",
            "Rerun with --debug to see why, and report it.",
        )


def run_checks(checks: Sequence[Check], total: float = TOTAL_LIMIT) -> list[CheckResult]:
    """Run all checks at once; results in the order given, late ones reported as timed out."""
    results: dict[int, CheckResult] = {}
    lock = threading.Lock()

    def worker(index: int, check: Check) -> None:
        result = _guarded(check)
        with lock:
            results[index] = result

    started = time.monotonic()
    threads = []
    for index, check in enumerate(checks):
        thread = threading.Thread(
            target=worker, args=(index, check), name=f"doctor-{check.name}", daemon=True
        )
        thread.start()
        threads.append(thread)
    for check, thread in zip(checks, threads, strict=True):
        elapsed = time.monotonic() - started
        thread.join(max(0.0, min(check.limit, total) - elapsed))
    out = []
    with lock:
        for index, check in enumerate(checks):
            result = results.get(index)
            if result is None:
                limit = min(check.limit, total)
                result = CheckResult(
                    check.name,
                    check.on_timeout,
                    f"no answer from {check.waiting_for} within {limit:g} s",
                    "Check the network and the setting this check uses; rerun.",
                )
            out.append(result)
    return out


def apply_bulk_rule(results: Sequence[CheckResult], readers: int | None) -> list[CheckResult]:
    """Settle each bulk-sender requirement: warn below the threshold, fail at or above it (and
    warn, saying so, when the list's size is unknown)."""
    settled = []
    for result in results:
        if not result.bulk_rule:
            settled.append(result)
            continue
        if readers is None:
            note = f"required of senders of {BULK_THRESHOLD:,} or more a day; list size unknown"
            status = Status.WARN
        elif readers >= BULK_THRESHOLD:
            note = (
                f"Gmail, Yahoo and Outlook require it of senders of {BULK_THRESHOLD:,} or more "
                f"a day: this list has {readers:,} active readers"
            )
            status = Status.FAIL
        else:
            note = f"required from {BULK_THRESHOLD:,} a day; this list has {readers:,}"
            status = Status.WARN
        settled.append(replace(result, status=status, detail=f"{result.detail} ({note})"))
    return settled
