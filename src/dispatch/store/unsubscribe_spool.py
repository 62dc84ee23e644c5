"""Unsubscribes the web service could not write because another writer (an import, a send)
held the database through every retry: kept in a file next to the database, one token per
line, appended and fsynced before the reader is answered, and applied as soon as the lock is
free. So a reader's unsubscribe is never lost, even when the database stays busy.

Any worker process may apply the spool: it first renames the file to a name of its own (an
atomic claim), so two workers never apply the same lines; what it could not apply goes back.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path

from dispatch.errors import StoreError

SUFFIX = ".unsubscribe-spool"
#: A claimed file older than this was left by a worker that died while applying it.
STALE_CLAIM_SECONDS = 300


def spool_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + SUFFIX)


def _append(path: Path, tokens: list[str]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, "".join(f"{t}\n" for t in tokens).encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)


def spool_unsubscribe(db_path: Path, token: str) -> None:
    """Keep one unsubscribe (its token, already checked) on disk; StoreError if it cannot be
    written (then the reader must be told to try again)."""
    try:
        _append(spool_path(db_path), [token])
    except OSError as exc:
        raise StoreError(
            f"Cannot write the unsubscribe spool next to {db_path}: {exc.strerror}",
            "Check that the database's folder is writable and has free space.",
        ) from exc


def has_spooled(db_path: Path) -> bool:
    """Whether unsubscribes wait in the spool (a stat, cheap enough for every web write)."""
    spool = spool_path(db_path)
    return spool.exists() or any(_stale_claims(spool))


def _stale_claims(spool: Path) -> list[Path]:
    now = time.time()
    found = []
    for path in spool.parent.glob(spool.name + ".claimed-*"):
        try:
            if now - path.stat().st_mtime > STALE_CLAIM_SECONDS:
                found.append(path)
        except FileNotFoundError:
            continue
    return found


def apply_spooled_unsubscribes(db_path: Path, apply: Callable[[str], object]) -> int:
    """Claim the spool and call ``apply(token)`` for each line (it must be idempotent: a
    guarded status change). Whatever was not applied when ``apply`` raises goes back to the
    spool before the exception continues. Returns how many were applied."""
    spool = spool_path(db_path)
    claims = []
    for source in [spool, *_stale_claims(spool)]:
        claim = spool.with_name(f"{spool.name}.claimed-{os.getpid()}-{secrets.token_hex(4)}")
        try:
            os.replace(source, claim)
        except FileNotFoundError:
            continue
        claims.append(claim)
    # Read leniently: a damaged byte must not make the claims unreadable (they would be adopted
    # again and again, failing every send); a garbled token matches no reader and changes nothing.
    tokens = [t for claim in claims for t in claim.read_bytes().decode("ascii", "replace").split()]
    done = 0
    try:
        for token in tokens:
            apply(token)
            done += 1
    except BaseException:
        # If even this fails, the claimed files stay on disk and are adopted once stale.
        _append(spool, tokens[done:])
        _remove(claims)
        raise
    _remove(claims)
    return done


def _remove(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
