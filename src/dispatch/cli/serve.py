"""`dispatch serve`: the web service under the development server."""

from __future__ import annotations

import click

from dispatch.cli._app import App, pass_app


@click.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (0.0.0.0 for every interface).",
)
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on.",
)
@pass_app
def serve(app: App, host: str, port: int) -> None:
    """Run the web service: one-click unsubscribe, the donation redirect, the Stripe webhook,
    the signup form with double opt-in, and the public archive.

    \b
    Paths:
      GET/POST /u/<token>          unsubscribe page; one-click POST (RFC 8058)
      GET      /d/<token>          count the donation click, redirect to Stripe
      POST     /stripe/webhook     Stripe events (needs STRIPE_WEBHOOK_SECRET)
      GET/POST /subscribe          signup form; GET/POST /confirm/<token> (double opt-in)
      GET      /archive/           sent issues; /archive/<issue> one of them

    Needs DISPATCH_SECRET_KEY; emails link here when DISPATCH_PUBLIC_URL is set to the
    public https address of this service. This is the development server: in production
    run the same app under gunicorn behind an https proxy (set DISPATCH_WEB_PROXIES):

    \b
      gunicorn -w 4 -b 127.0.0.1:8000 -c python:dispatch.web.gunicorn_conf \\
          'dispatch.web:wsgi_app()'

    (run it where the .env file is; its access log leaves out tokens and client addresses).

    \b
    Example:
      dispatch serve --port 8000
      dispatch serve --host 0.0.0.0 --port 8080
    """
    from dispatch.web import serve as run_server

    settings = app.settings
    settings.require("secret_key")
    run_server(settings, host, port, announce=lambda line: click.echo(line, err=True))


COMMANDS = [serve]
