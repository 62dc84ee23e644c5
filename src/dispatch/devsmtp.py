"""A small SMTP server on loopback that files every message it receives into a Maildir.

For the demo and for trying Dispatch without a relay (aiosmtpd, in-process, in its own thread).
It accepts everything and delivers nothing: each message lands in ``<folder>/new/`` with a
``Delivered-To`` line naming its envelope recipient.
"""

from __future__ import annotations

import mailbox
import socket
import threading
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (aiosmtpd's Controller cannot take port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def start_controller(handler: Any, host: str = "127.0.0.1", **smtp_kwargs: Any) -> Controller:
    """Start aiosmtpd on a free loopback port; try a few ports in case one is taken meanwhile."""
    last: Exception | None = None
    for _ in range(5):
        controller = Controller(handler, hostname=host, port=free_port(host), **smtp_kwargs)
        try:
            controller.start()
        except (OSError, RuntimeError) as exc:
            last = exc
            continue
        return controller
    raise RuntimeError(f"cannot start the SMTP server on {host}: {last}")


class MaildirHandler:
    """aiosmtpd handler: one Maildir message per envelope recipient."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.maildir = mailbox.Maildir(folder, create=True)
        self._lock = threading.Lock()
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = envelope.original_content or b""
        with self._lock:
            for rcpt in envelope.rcpt_tos:
                line = f"Delivered-To: {rcpt}\r\n".encode()
                self.maildir.add(line + content)
                self.count += 1
        return "250 Message accepted for delivery"


class DevSmtpServer:
    """``with DevSmtpServer(folder) as server:`` then send to ``server.url``."""

    def __init__(self, folder: Path, host: str = "127.0.0.1") -> None:
        self.handler = MaildirHandler(folder)
        self.host = host
        self.controller: Controller | None = None

    @property
    def port(self) -> int:
        assert self.controller is not None
        return int(self.controller.port)

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    def start(self) -> DevSmtpServer:
        self.controller = start_controller(self.handler, self.host)
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def __enter__(self) -> DevSmtpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
