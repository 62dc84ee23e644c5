"""What the web service's blueprints share: the per-app :class:`WebState` (settings, renderer,
outbox thread, signup rate limit, database connections and write retries), ``state()`` and
``page()``. Blueprints import these from here, never from ``dispatch.web`` (which imports them).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from flask import Response, current_app, g

from dispatch.config import Settings
from dispatch.jobs.outbox import Outbox
from dispatch.jobs.signup import BACKGROUND_PATIENCE
from dispatch.jobs.unsubscribe import apply_deferred_unsubscribes, has_deferred_unsubscribes
from dispatch.render.templates import Renderer
from dispatch.store import Database, PostgresURL, local_path, open_db
from dispatch.store.locking import WritePatience, connect_web, retry_when_locked
from dispatch.web.security import RateLimiter

T = TypeVar("T")

#: POSTs to /subscribe per client address and window (seconds), per worker process.
SIGNUP_LIMIT = (5, 600.0)


@dataclass
class WebState:
    """What the routes share: settings, the page renderer, the confirmation outbox and the
    signup rate limit. The store is migrated once (lazily, after a server forks its workers)
    and each request gets its own connection, closed when the request ends; ``patience`` says
    how long a request's write waits for another writer (an import, a send)."""

    settings: Settings
    db_path: Path | PostgresURL
    renderer: Renderer
    outbox: Outbox = field(default_factory=Outbox)
    limiter: RateLimiter = field(default_factory=lambda: RateLimiter(*SIGNUP_LIMIT))
    patience: WritePatience = field(default_factory=WritePatience)
    _migrated: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def db(self) -> Database:
        """This request's connection to the store."""
        if "dispatch_db" not in g:
            g.dispatch_db = self.connect(self.patience)
        return g.dispatch_db  # type: ignore[no-any-return]

    def connect(self, patience: WritePatience) -> Database:
        """A new connection to the migrated store (the caller closes it)."""
        with self._lock:
            if not self._migrated:
                open_db(self.db_path, create=True).close()  # a signup may start the list
                self._migrated = True
        return connect_web(self.db_path, patience)

    def write(self, call: Callable[[], T], what: str) -> T:
        """Run a use case that writes, again after a short pause while another writer holds
        the database; DatabaseBusyError (a 503 with Retry-After) if it never lets go."""
        result = retry_when_locked(call, self.patience, what)
        if has_deferred_unsubscribes(local_path(self.db_path)):  # the lock is free now: catch up
            self.apply_deferred_unsubscribes()
        return result

    def apply_deferred_unsubscribes(self) -> None:
        """Queue the spooled unsubscribes on the outbox thread (see links.unsubscribe_post)."""
        self.outbox.submit(
            partial(
                apply_deferred_unsubscribes,
                partial(self.connect, BACKGROUND_PATIENCE),
                BACKGROUND_PATIENCE,
            )
        )

    def close(self) -> None:
        self.outbox.join()


def state() -> WebState:
    return current_app.extensions["dispatch"]  # type: ignore[no-any-return]


def page(_template: str, status: int = 200, _lang: str | None = None, **context: Any) -> Response:
    """Render ``templates/web/<_template>.html`` (the outlet's folder over the bundled one), in
    ``_lang`` (a reader's language, one of DISPATCH_LANGUAGES) or the outlet's."""
    html = state().renderer.render_template(f"web/{_template}.html", context, _lang)
    return Response(html, status=status, mimetype="text/html")
