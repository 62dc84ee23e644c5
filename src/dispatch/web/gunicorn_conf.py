"""gunicorn settings for the Dispatch web service: access logs without tokens or addresses.

Use it with ``-c python:dispatch.web.gunicorn_conf``::

    gunicorn -w 4 -b 127.0.0.1:8000 -c python:dispatch.web.gunicorn_conf 'dispatch.web:wsgi_app()'

Personal links carry their credential in the path (``/u/<token>``, ``/d/<token>``,
``/confirm/<token>``) and the donation redirect's Location names the reader's address, so the
access log writes paths with tokens replaced by ``[token]``, no query strings, no client
address, and no cookies or signatures. Flags given on the command line override these values.
"""

from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger

from dispatch.web.security import redact

accesslog = "-"
errorlog = "-"
access_log_format = '%(t)s "%(r)s" %(s)s %(B)s %(L)ss "%(a)s"'
# Stripe expects an answer within seconds; nothing here waits on the network.
timeout = 30
graceful_timeout = 20

_DROPPED = (
    "{cookie}i",
    "{authorization}i",
    "{stripe-signature}i",
    "{set-cookie}o",
    "{x-forwarded-for}i",
    "{forwarded}i",
    "{remote_addr}e",
)


class RedactingLogger(Logger):
    """gunicorn's logger with every access-log atom passed through dispatch's redaction."""

    # types-gunicorn's atoms TypedDict lacks the "{header}i" keys gunicorn adds; access() wraps
    # whatever mapping this returns, so a plain dict is what gunicorn itself relies on.
    def atoms(  # type: ignore[override]
        self, resp: Any, req: Any, environ: Any, request_time: Any
    ) -> dict[str, Any]:
        atoms: dict[str, Any] = dict(super().atoms(resp, req, environ, request_time))
        for key in _DROPPED:
            atoms.pop(key, None)
        atoms["h"] = "-"
        atoms["q"] = ""
        return {k: redact(v) if isinstance(v, str) else v for k, v in atoms.items()}


logger_class = RedactingLogger

#: Seconds a stopping worker gives the signups it queued (see jobs.signup) to finish.
DRAIN_SECONDS = 15.0


def worker_exit(server: Any, worker: Any) -> None:
    """gunicorn hook, in the worker as it stops: finish the queued signups' work first."""
    state = getattr(getattr(worker, "wsgi", None), "extensions", {}).get("dispatch")
    if state is not None:
        state.outbox.join(timeout=DRAIN_SECONDS)
