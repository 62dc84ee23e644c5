"""Where bounces are read from: a Maildir folder, an mbox file, or an IMAP mailbox.

Each source yields ``(handle, raw bytes)`` and can set a processed message aside afterwards:
Maildir moves it into the ``.processed`` subfolder (Maildir++), IMAP flags it ``\\Seen`` and
reads only unseen mail, mbox is read only (an mbox is rewritten whole to remove one message,
which is not worth the risk while a mail server appends to it).
"""

from __future__ import annotations

import imaplib
import mailbox
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from dispatch.errors import ConfigError, InputError

PROCESSED_FOLDER = "processed"


class Source:
    """A mailbox of bounces."""

    label: str = ""
    can_set_aside = False

    def messages(self) -> Iterator[tuple[str, bytes]]:
        raise NotImplementedError

    def set_aside(self, handle: str) -> None:
        """Mark one message as processed (move it, flag it); a no-op where unsupported."""

    def close(self) -> None:
        """Release the mailbox."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class MaildirSource(Source):
    can_set_aside = True

    def __init__(self, path: Path) -> None:
        if not (path / "cur").is_dir() or not (path / "new").is_dir():
            raise InputError(f"{path} is not a Maildir folder (no cur/ and new/ inside)",
                             "Pass the Maildir itself, e.g. ~/Maildir or ~/Maildir/.bounces.")
        self.label = str(path)
        self._box = mailbox.Maildir(path, factory=None, create=False)
        self._processed: mailbox.Maildir | None = None

    def messages(self) -> Iterator[tuple[str, bytes]]:
        for key in sorted(self._box.keys()):
            try:
                yield key, self._box.get_bytes(key)
            except (KeyError, FileNotFoundError):
                continue  # taken by another reader meanwhile

    def set_aside(self, handle: str) -> None:
        if self._processed is None:
            self._processed = self._box.add_folder(PROCESSED_FOLDER)
        try:
            message = self._box.get_message(handle)
        except KeyError:
            return
        self._processed.add(message)
        self._box.discard(handle)


class MboxSource(Source):
    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise InputError(f"The mbox file {path} does not exist",
                             "Check the path given to --mbox.")
        self.label = str(path)
        self._box = mailbox.mbox(path, create=False)

    def messages(self) -> Iterator[tuple[str, bytes]]:
        self._box.lock()
        try:
            for key in list(self._box.iterkeys()):
                yield str(key), self._box.get_bytes(key)
        finally:
            self._box.unlock()

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
        raise ConfigError(f"The IMAP address {safe}... is not imaps://user:password@host/FOLDER",
                          "Use imaps://user:password@imap.example.org/INBOX.")
    if not parts.username or parts.password is None:
        raise ConfigError(f"The IMAP address for {parts.hostname} has no user and password",
                          "Use imaps://user:password@host/INBOX (percent-encode @ or : in them).")
    try:
        port = parts.port or (993 if scheme == "imaps" else 143)
    except ValueError:
        raise ConfigError(f"The IMAP address for {parts.hostname} has a bad port",
                          "Use a number, e.g. imaps://user:password@host:993/INBOX.") from None
    return ImapTarget(
        host=parts.hostname, port=port, user=unquote(parts.username),
        password=unquote(parts.password), folder=unquote(parts.path.lstrip("/")) or "INBOX",
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
        try:
            if target.tls:
                self._imap: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                    target.host, target.port, ssl_context=ssl.create_default_context(),
                    timeout=timeout)
            else:
                self._imap = imaplib.IMAP4(target.host, target.port, timeout=timeout)
                self._imap.starttls(ssl_context=ssl.create_default_context())
            self._imap.login(target.user, target.password)
            status, _ = self._imap.select(_quote(target.folder))
        except (OSError, imaplib.IMAP4.error) as exc:  # ssl.SSLError is an OSError
            raise InputError(f"Cannot read bounces from {where}: {_safe(exc, target.password)}",
                             "Check the address, user, password and folder.") from None
        if status != "OK":
            raise InputError(f"{where} has no folder {target.folder!r}",
                             "Name an existing folder in the URL, e.g. /INBOX.")

    def messages(self) -> Iterator[tuple[str, bytes]]:
        status, data = self._imap.uid("SEARCH", "UNSEEN")
        if status != "OK":
            return
        for raw_uid in (data[0] or b"").split():
            uid = raw_uid.decode("ascii")
            status, parts = self._imap.uid("FETCH", uid, "(BODY.PEEK[])")
            if status != "OK":
                continue
            for part in parts:
                if isinstance(part, tuple):
                    yield uid, part[1]
                    break

    def set_aside(self, handle: str) -> None:
        self._imap.uid("STORE", handle, "+FLAGS", "(\\Seen)")

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


def open_source(*, maildir: Path | None = None, mbox: Path | None = None,
                imap: str | None = None, timeout: float = 30.0) -> Source:
    """The one source named (exactly one of the three)."""
    given = [x for x in (maildir, mbox, imap) if x]
    if len(given) != 1:
        raise InputError("Name one mailbox to read bounces from",
                         "Use --maildir DIR, --mbox FILE or --imap URL, or set "
                         "DISPATCH_BOUNCE_MAILBOX.")
    if maildir:
        return MaildirSource(maildir)
    if mbox:
        return MboxSource(mbox)
    return ImapSource(str(imap), timeout=timeout)
