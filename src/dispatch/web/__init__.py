"""The optional web service (Flask): one-click unsubscribe, the donation redirect, the Stripe
webhook, double opt-in signup and the public archive. The only package that imports flask.

``create_app(settings)`` builds the WSGI app; ``wsgi_app()`` does the same from the environment
and ``.env`` for a production server::

    DISPATCH_WEB_PROXIES=1 gunicorn -w 4 -b 127.0.0.1:8000 \
        -c python:dispatch.web.gunicorn_conf 'dispatch.web:wsgi_app()'

Each blueprint (links, signup, archive, stripe_hook) parses the request and calls one use case
in ``dispatch.jobs`` (unsubscribe, clicks, signup, archive, donations); what the blueprints
share (the per-app state, its database connection, page rendering) is ``web.app_support``,
which imports nothing from this module.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from dispatch.config import Settings, load_settings
from dispatch.errors import DispatchError, WebError
from dispatch.render.settings import renderer_from
from dispatch.store import PostgresURL
from dispatch.store.locking import DatabaseBusyError
from dispatch.web.app_support import WebState, page, state
from dispatch.web.security import (
    add_hsts,
    add_security_headers,
    install_log_redaction,
    no_store,
)

log = logging.getLogger("dispatch.web")

#: Largest request body accepted (Stripe events are a few kilobytes).
MAX_BODY = 512 * 1024

GUNICORN_COMMAND = (
    "DISPATCH_WEB_PROXIES=1 gunicorn -w 4 -b 127.0.0.1:8000 -c python:dispatch.web.gunicorn_conf "
    "'dispatch.web:wsgi_app()'"
)


def _close_db(_exc: BaseException | None) -> None:
    database = g.pop("dispatch_db", None)
    if database is not None:
        database.close()


def create_app(settings: Settings, db_path: Path | PostgresURL | None = None) -> Flask:
    """The web service for these settings; DISPATCH_SECRET_KEY is required (it signs the
    signup form's session)."""
    secret = settings.require("secret_key")
    app = Flask(__name__, static_folder=None, template_folder=None)
    app.config.update(
        SECRET_KEY=secret,
        MAX_CONTENT_LENGTH=MAX_BODY,
        SESSION_COOKIE_NAME="dispatch_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.public_url.startswith("https://"),
    )
    app.extensions["dispatch"] = WebState(
        settings=settings, db_path=db_path or settings.db_path, renderer=renderer_from(settings)
    )
    if settings.web_proxies:
        n = settings.web_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n)  # type: ignore[method-assign]

    from dispatch.web import archive, links, signup, stripe_hook

    for module in (links, signup, archive, stripe_hook):
        app.register_blueprint(module.bp)

    app.after_request(add_security_headers)
    if settings.public_url.startswith("https://"):
        app.after_request(add_hsts)
    app.after_request(_relative_redirect)
    # Flask logs unhandled errors as "Exception on <path>" on this logger: no tokens there.
    install_log_redaction(app.logger.name)
    app.teardown_appcontext(_close_db)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(DispatchError, _dispatch_error)
    app.register_error_handler(DatabaseBusyError, _busy)

    @app.get("/")
    def home() -> Response:
        return page("home")

    @app.get("/healthz")
    def health() -> Response:
        return no_store(Response("ok\n", mimetype="text/plain"))

    return app


def _http_error(exc: HTTPException) -> Response:
    code = exc.code or 500
    if request.path.startswith("/stripe/"):
        return Response(f"{exc.name}\n", status=code, mimetype="text/plain")
    try:
        return no_store(
            page(
                "error",
                status=code,
                code=code,
                title=exc.name,
                message=_MESSAGES.get(code, exc.description or ""),
            )
        )
    except DispatchError:  # a broken template must not hide the status
        return Response(f"{exc.name}\n", status=code, mimetype="text/plain")


def _dispatch_error(exc: DispatchError) -> Response:
    # Setting and template problems are the operator's to fix: log them, keep the page vague.
    log.error("%s %s failed: %s", request.method, request.blueprint or request.endpoint, exc)
    if request.path.startswith("/stripe/"):
        return Response("unavailable\n", status=503, mimetype="text/plain")
    return no_store(
        page(
            "error",
            status=503,
            code=503,
            title="Temporarily unavailable",
            message="Something on our side is not set up right. Please try again later.",
        )
    )


def _busy(exc: DatabaseBusyError) -> Response:
    """Another writer kept the database through every retry: ask the client to come back (a
    mail provider's one-click POST and Stripe retry on a 5xx); nothing was recorded."""
    retry_after = str(state().patience.retry_after)
    if request.path.startswith("/stripe/") or request.form.get("List-Unsubscribe"):
        response = Response("busy, try again\n", status=503, mimetype="text/plain")
    else:
        response = page(
            "error",
            status=503,
            code=503,
            title="Busy for a moment",
            message="We could not record that just now because the service is busy. "
            "Nothing was changed: please try again in a few seconds.",
        )
    response.headers["Retry-After"] = retry_after
    return no_store(response)


def _relative_redirect(response: Response) -> Response:
    """A redirect to this service itself (e.g. ``/archive`` to ``/archive/``) points at a path,
    never at the request's Host header, which a visitor (or a poisoned cache) controls."""
    location = response.headers.get("Location")
    if location and 300 <= response.status_code < 400:
        parts = urlsplit(location)
        if parts.netloc and parts.netloc == request.host:
            path = parts.path or "/"
            response.headers["Location"] = f"{path}?{parts.query}" if parts.query else path
    return response


_MESSAGES = {
    400: "The form could not be accepted. Please go back, reload the page and try again.",
    404: "This link is not valid. It may have been mistyped or cut off by your email program.",
    405: "This page cannot be used that way.",
    413: "That was more than this page accepts.",
    429: "Too many attempts from your connection. Please wait a few minutes and try again.",
}


def wsgi_app(env_file: str | None = None) -> Flask:
    """The app for a production WSGI server, with settings from the environment and ``.env``
    in the working directory (or ``env_file``)."""
    settings = load_settings(env_file=Path(env_file) if env_file else None)
    return create_app(settings)


def missing_settings(settings: Settings) -> list[str]:
    """What will not work with these settings, one line each (said when the server starts)."""
    lines = []
    if not settings.public_url:
        lines.append(
            "Note: DISPATCH_PUBLIC_URL is not set: emails do not link here and "
            "/subscribe cannot send confirmation links."
        )
    if not settings.stripe_webhook_secret:
        lines.append("Note: STRIPE_WEBHOOK_SECRET is not set: /stripe/webhook answers 503.")
    if not settings.smtp_url:
        lines.append("Note: DISPATCH_SMTP_URL is not set: /subscribe cannot send confirmations.")
    return lines


def serve(
    settings: Settings, host: str, port: int, announce: Callable[[str], None] = print
) -> None:
    """The development server (werkzeug, threaded), with tokens kept out of its request log.
    ``announce`` is told where it listens once the port is bound."""
    from werkzeug.serving import make_server

    app = create_app(settings)
    install_log_redaction("werkzeug")
    logging.getLogger("werkzeug").setLevel(logging.INFO)
    try:
        server = make_server(host, port, app, threaded=True)
    except (OSError, SystemExit) as exc:  # werkzeug exits when the port is taken
        raise WebError(
            f"Cannot listen on {host}:{port}",
            "Choose another --port, or stop the program that uses this one.",
        ) from exc
    announce(
        f"Dispatch web service on http://{host}:{server.port}/ (development server; "
        f"in production: {GUNICORN_COMMAND}). Ctrl+C stops it."
    )
    for line in missing_settings(settings):
        announce(line)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        app.extensions["dispatch"].close()
