"""One error root for everything Dispatch reports to a person.

Each error carries a ``hint``: the one sentence that tells the editor how to fix it. The CLI
prints ``Error: <message>. <hint>`` and exits with ``exit_code``; no traceback unless --debug.
Foreign exceptions are wrapped once, where they enter (``raise SendError(...) from exc``).
"""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    """The exit statuses of `dispatch`, one name each (after httpie's ``status.ExitStatus``)."""

    OK = 0
    ERROR = 1
    USAGE = 2  # click's own status for a usage error (click.UsageError.exit_code)
    PARTIAL = 3  # a send where some recipients failed or are in doubt; rerun to resume
    INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT (128 + 2)


class DispatchError(Exception):
    """Base class: a failure the user can act on."""

    exit_code: ExitStatus = ExitStatus.ERROR
    default_hint = ""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint if hint is not None else self.default_hint

    def __str__(self) -> str:
        text = self.message.rstrip(".")
        return f"{text}. {self.hint}" if self.hint else f"{text}."


class ConfigError(DispatchError):
    """A setting is missing or wrong."""

    default_hint = "Set it in the environment or in the .env file (see .env.example)."


class StoreError(DispatchError):
    """The database cannot be opened, migrated or written."""


class SourceError(DispatchError):
    """An article source (feed URL, feed file, folder) cannot be read or parsed."""


class RenderError(DispatchError):
    """A template is missing or broken."""

    default_hint = "Check the templates folder (DISPATCH_TEMPLATES) and the template named."


class IssueError(DispatchError):
    """An issue does not exist, is empty, or is in the wrong state for the command."""


class InputError(DispatchError):
    """Bad input from a file or flag (a CSV, an address, a date)."""


class AnswerNeeded(DispatchError):
    """A command asks before it acts and nobody can answer (no terminal, nothing piped)."""

    exit_code = ExitStatus.USAGE


class SendError(DispatchError):
    """Mail could not be handed to the SMTP relay."""

    default_hint = "Check DISPATCH_SMTP_URL and that the relay is reachable; rerun to resume."


class PartialSendError(DispatchError):
    """Some recipients failed permanently; the rest went out."""

    exit_code = ExitStatus.PARTIAL


class DonationError(DispatchError):
    """Stripe refused a request or returned something unexpected."""


class WebError(DispatchError):
    """The web service cannot start or serve."""
