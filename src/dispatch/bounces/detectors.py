"""Bounce formats flufl.bounce does not know, as detectors in its own shape.

DragonFly Mail Agent (dma, the small MTA of DragonFly BSD and Debian's ``dma`` package) writes a
plain-text bounce of its own (dma's mail.c, ``bounce()``): a line ``This is the DragonFly Mail
Agent vX at HOST.``, then per failed recipient ``There was an error delivering your mail to
<ADDRESS>.`` followed by the error (the remote server's reply, a DNS failure, or "Could not
deliver for the last N seconds. Giving up."), then ``Original message follows.`` The format
was read from dma's source and Sisimai's DragonFly parser (Sisimai has no Python port).
"""

from __future__ import annotations

import re
from email.message import Message

from flufl.bounce import NoFailures, Recipients

_DMA_START = "This is the DragonFly Mail Agent "
_DMA_RECIPIENT = re.compile(r"^There was an error delivering your mail to <([^<>\s]+)>")
_DMA_END = ("Original message follows.", "Message headers follow")
_TEMPORARY = re.compile(r"^4\d\d[ -]|Could not deliver for the last ")


def _plain_text(msg: Message) -> str:
    for part in msg.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                return payload.decode("utf-8", "replace")
    return ""


class DragonFly:
    """dma's bounces: (temporary, permanent) failed addresses, as a flufl.bounce detector."""

    def process(self, msg: Message) -> tuple[Recipients, Recipients]:
        lines = _plain_text(msg).splitlines()
        start = next((i for i, line in enumerate(lines) if line.startswith(_DMA_START)), None)
        if start is None:
            return NoFailures
        temporary: set[bytes] = set()
        permanent: set[bytes] = set()
        address: bytes | None = None
        error: list[str] = []

        def close() -> None:
            if address is not None:
                text = " ".join(error)
                is_temporary = any(_TEMPORARY.search(line) for line in error)
                (temporary if is_temporary and text else permanent).add(address)

        for line in lines[start + 1 :]:
            if line.startswith(_DMA_END):
                break
            found = _DMA_RECIPIENT.match(line)
            if found:
                close()
                address, error = found.group(1).lower().encode("ascii", "replace"), []
            elif line.strip() and address is not None:
                error.append(line.strip())
        close()
        return frozenset(temporary), frozenset(permanent)
