"""Where bounces are read from: a Maildir folder, an mbox file, or an IMAP mailbox.

Each source yields ``(handle, raw bytes)`` and can set a message aside afterwards, into the
``processed`` folder when it was handled or the ``unreadable`` one when it could not be read.
Maildir renames the file into the ``.processed`` / ``.unreadable`` subfolder (Maildir++), so
the message keeps its exact bytes; IMAP reads only unseen mail, flags a processed message
``\\Seen`` and copies an unreadable one to the ``Dispatch-unreadable`` folder (flagged
``\\Seen \\Flagged`` where it was). An mbox is read only (removing one message rewrites the
whole file, not worth the risk while a mail server appends to it): an unreadable message's exact
bytes are copied once to ``<mbox>.unreadable`` beside it.
"""

from __future__ import annotations

import contextlib
import hashlib
import imaplib
import mailbox
import os
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from dispatch.errors import ConfigError, InputError

PROCESSED_FOLDER = "processed"
UNREADABLE_FOLDER = "unreadable"
IMAP_UNREADABLE_FOLDER = "Dispatch-unreadable"


class Source:
    """A mailbox of bounces."""

    label: str = ""
    can_set_aside = False

    def messages(self) -> Iterator[tuple[str, bytes]]:
        raise NotImplementedError

    def set_aside(self, handle: str, folder: str = PROCESSED_FOLDER) -> bool:
        """Move one message to ``folder`` (processed or unreadable); whether it moved."""
        return False

    def where(self, folder: str) -> str:
        """Where ``set_aside`` puts messages of ``folder``, for the summary."""
        return ""

    def close(self) -> None:
        """Release the mailbox."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class MaildirSource(Source):
    """A Maildir read file by file: ``new/`` and ``cur/``, oldest name first."""

    can_set_aside = True

    def __init__(self, path: Path) -> None:
        if not (path / "cur").is_dir() or not (path / "new").is_dir():
            raise InputError(
                f"{path} is not a Maildir folder (no cur/ and new/ inside)",
                "Pass the Maildir itself, e.g. ~/Maildir or ~/Maildir/.bounces.",
            )
        self.label = str(path)
        self.path = path

    def messages(self) -> Iterator[tuple[str, bytes]]:
        names = [
            (name, sub)
            for sub in ("new", "cur")
            for name in os.listdir(self.path / sub)
            if not name.startswith(".")
        ]
        for name, sub in sorted(names):  # Maildir names begin with the delivery time
            handle = f"{sub}/{name}"
            try:
                raw = (self.path / handle).read_bytes()
            except (FileNotFoundError, IsADirectoryError):
                continue  # taken by another reader meanwhile, or not a message
            yield handle, raw

    def _folder(self, folder: str) -> Path:
        target = self.path / f".{folder}"
        for sub in ("tmp", "new", "cur"):
            (target / sub).mkdir(parents=True, exist_ok=True)
        (target / "maildirfolder").touch()  # Maildir++: marks a subfolder
        return target

    def set_aside(self, handle: str, folder: str = PROCESSED_FOLDER) -> bool:
        # A rename within one file system: the file, its name and its bytes stay as they were.
        try:
            os.rename(self.path / handle, self._folder(folder) / handle)
        except FileNotFoundError:
            return False  # moved by another reader meanwhile
        except OSError as exc:  # every later move would fail the same way: stop, say why
            raise InputError(
                f"Cannot move {handle} into {self.where(folder)}: {exc.strerror or exc}",
                "Let the user running Dispatch write to the Maildir; what was read so far "
                "is recorded, and a rerun goes on from there.",
            ) from exc
        return True

    def where(self, folder: str) -> str:
        return str(self.path / f".{folder}")


class MboxSource(Source):
    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise InputError(
                f"The mbox file {path} does not exist", "Check the path given to --mbox."
            )
        self.label = str(path)
        self.path = path
        self._box = mailbox.mbox(path, create=False)
        self._copied: set[str] | None = None

    def messages(self) -> Iterator[tuple[str, bytes]]:
        self._box.lock()
        try:
            for key in list(self._box.iterkeys()):
                yield str(key), self._box.get_bytes(key)
        finally:
            self._box.unlock()

    def _sidecar(self, folder: str) -> Path:
        return self.path.with_name(f"{self.path.name}.{folder}")

    def set_aside(self, handle: str, folder: str = PROCESSED_FOLDER) -> bool:
        """Copy an unreadable message, From_ line and bytes exactly as in the mbox, to the
        sidecar mbox (once: the next run finds it there); processed ones stay in the mbox."""
        if folder != UNREADABLE_FOLDER:
            return False
        sidecar = self._sidecar(folder)
        key: Any = int(handle)  # mbox keys are ints (typeshed says str)
        exact = self._box.get_bytes(key, from_=True)
        digest = hashlib.sha256(exact).hexdigest()
        if self._copied is None:
            self._copied = set()
            if sidecar.exists():
                copies = mailbox.mbox(sidecar, create=False)
                self._copied = {
                    hashlib.sha256(copies.get_bytes(k, from_=True)).hexdigest()
                    for k in copies.iterkeys()
                }
                copies.close()
        if digest in self._copied:
            return False
        with sidecar.open("ab") as out:
            out.write(exact + (b"" if exact.endswith(b"\n") else b"\n") + b"\n")
        self._copied.add(digest)
        return True

    def where(self, folder: str) -> str:
        return str(self._sidecar(folder)) if folder == UNREADABLE_FOLDER else ""

    def close(self) -> None:
        self._box.close()


@dataclass(frozen=True)
class ImapTarget:
    host: str
    port: int
    user: str
    password: str
    folder: str
    tls: bool  # imaps:// (implicit TLS); imap:// uses STARTTLS

    def __repr__(self) -> str:  # never show the password
        return f"ImapTarget({self.host}:{self.port}, user={self.user!r}, folder={self.folder!r})"


def parse_imap_url(url: str) -> ImapTarget:
    """``imaps://user:pass@host[:port]/FOLDER`` (or imap:// with STARTTLS); folder default INBOX."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    safe = f"{scheme}://{parts.hostname or '?'}"
    if scheme not in ("imap", "imaps") or not parts.hostname:
        raise ConfigError(
            f"The IMAP address {safe}... is not imaps://user:password@host/FOLDER",
            "Use imaps://user:password@imap.example.org/INBOX.",
        )
    if not parts.username or parts.password is None:
        raise ConfigError(
            f"The IMAP address for {parts.hostname} has no user and password",
            "Use imaps://user:password@host/INBOX (percent-encode @ or : in them).",
        )
    try:
        port = parts.port or (993 if scheme == "imaps" else 143)
    except ValueError:
        raise ConfigError(
            f"The IMAP address for {parts.hostname} has a bad port",
            "Use a number, e.g. imaps://user:password@host:993/INBOX.",
        ) from None
    return ImapTarget(
        host=parts.hostname,
        port=port,
        user=unquote(parts.username),
        password=unquote(parts.password),
        folder=unquote(parts.path.lstrip("/")) or "INBOX",
        tls=scheme == "imaps",
    )


class ImapSource(Source):
    """Unseen messages of one IMAP folder, fetched without marking them; ``set_aside`` marks
    them ``\\Seen``. Errors name the host and user, never the password."""

    can_set_aside = True

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        target = parse_imap_url(url)
        self.label = f"imap{'s' if target.tls else ''}://{target.host}/{target.folder}"
        where = f"the IMAP server {target.host}:{target.port} (user {target.user})"
        self._where, self._password = where, target.password
        try:
            if target.tls:
                self._imap: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                    target.host,
                    target.port,
                    ssl_context=ssl.create_default_context(),
                    timeout=timeout,
                )
            else:
                self._imap = imaplib.IMAP4(target.host, target.port, timeout=timeout)
                self._imap.starttls(ssl_context=ssl.create_default_context())
            self._imap.login(target.user, target.password)
            status, _ = self._imap.select(_quote(target.folder))
        except (OSError, imaplib.IMAP4.error) as exc:  # ssl.SSLError is an OSError
            raise InputError(
                f"Cannot read bounces from {where}: {_safe(exc, target.password)}",
                "Check the address, user, password and folder.",
            ) from None
        if status != "OK":
            raise InputError(
                f"{where} has no folder {target.folder!r}",
                "Name an existing folder in the URL, e.g. /INBOX.",
            )

    def _uid(self, command: str, *args: str) -> tuple[str, list[Any]]:
        """One UID command; a dropped connection or a protocol error ends the run, named."""
        try:
            return self._imap.uid(command, *args)
        except (OSError, imaplib.IMAP4.error) as exc:  # abort (connection lost) is an error
            raise InputError(
                f"Lost {self._where} while reading bounces: {_safe(exc, self._password)}",
                "What was read so far is recorded; rerun to go on.",
            ) from None

    def messages(self) -> Iterator[tuple[str, bytes]]:
        status, data = self._uid("SEARCH", "UNSEEN")
        if status != "OK":
            return
        for raw_uid in (data[0] or b"").split():
            uid = raw_uid.decode("ascii")
            status, parts = self._uid("FETCH", uid, "(BODY.PEEK[])")
            if status != "OK":
                continue
            for part in parts:
                if isinstance(part, tuple):
                    yield uid, part[1]
                    break

    def set_aside(self, handle: str, folder: str = PROCESSED_FOLDER) -> bool:
        if folder == UNREADABLE_FOLDER:
            # "NO" when it exists: fine; were it an error, the COPY below reports it.
            with contextlib.suppress(imaplib.IMAP4.error):
                self._imap.create(_quote(IMAP_UNREADABLE_FOLDER))
            self._uid("COPY", handle, _quote(IMAP_UNREADABLE_FOLDER))
            status, _ = self._uid("STORE", handle, "+FLAGS", "(\\Seen \\Flagged)")
        else:
            status, _ = self._uid("STORE", handle, "+FLAGS", "(\\Seen)")
        return status == "OK"

    def where(self, folder: str) -> str:
        return f"the IMAP folder {IMAP_UNREADABLE_FOLDER}" if folder == UNREADABLE_FOLDER else ""

    def close(self) -> None:
        try:
            self._imap.close()
            self._imap.logout()
        except (OSError, imaplib.IMAP4.error):
            pass


def _quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _safe(exc: BaseException, secret: str) -> str:
    text = str(exc) or type(exc).__name__
    return text.replace(secret, "***") if secret else text


def open_source(
    *,
    maildir: Path | None = None,
    mbox: Path | None = None,
    imap: str | None = None,
    timeout: float = 30.0,
) -> Source:
    """The one source named (exactly one of the three)."""
    given = [x for x in (maildir, mbox, imap) if x]
    if len(given) != 1:
        raise InputError(
            "Name one mailbox to read bounces from",
            "Use --maildir DIR, --mbox FILE or --imap URL, or set DISPATCH_BOUNCE_MAILBOX.",
        )
    if maildir:
        return MaildirSource(maildir)
    if mbox:
        return MboxSource(mbox)
    return ImapSource(str(imap), timeout=timeout)
