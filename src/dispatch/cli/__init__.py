"""The `dispatch` command: thin faces over the use cases in ``dispatch.jobs``.

Each module in this package is one command group and exports ``COMMANDS``, a list of click
commands that are added to the main group here. A command parses input, calls one use case and
formats the result; no SQL, Jinja, smtplib or stripe here.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import sys
import traceback
from pathlib import Path

import click

from dispatch import __version__
from dispatch.cli._app import App
from dispatch.errors import DispatchError, ExitStatus


class DispatchGroup(click.Group):
    """Turns a DispatchError into `Error: <what>. <how to fix>` and its exit status."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except DispatchError as exc:
            app = ctx.find_object(App)
            if app is not None and app.debug:
                traceback.print_exc()
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("Interrupted. Rerun the same command to resume.", err=True)
            ctx.exit(ExitStatus.INTERRUPTED)
        finally:
            app = ctx.find_object(App)
            if app is not None:
                app.close()

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self.commands)


@click.group(cls=DispatchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dispatch")
@click.option(
    "--env-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Read settings from this file instead of ./.env.",
)
@click.option("--no-dotenv", is_flag=True, help="Ignore .env files; use the environment only.")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logging.")
@click.pass_context
def cli(ctx: click.Context, env_file: Path | None, no_dotenv: bool, debug: bool) -> None:
    """Dispatch: the weekly digest and donation tracker for an independent newsroom.

    \b
    The weekly routine:
      dispatch build                  # collect this week's articles into an issue
      dispatch preview 2026-W48 --out preview/
      dispatch doctor                 # relay, DNS records, links: ready to send?
      dispatch send 2026-W48          # resumable; rerun after any interruption
      dispatch donations sync && dispatch report

    \b
    Example:
      dispatch demo                   # the whole job on bundled sample data
    """
    ctx.obj = App(env_file=env_file, use_dotenv=not no_dotenv, debug=debug)
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    # The stripe library logs request details (emails, ids) at debug level: keep it quiet.
    logging.getLogger("stripe").setLevel(logging.WARNING)


def _register() -> None:
    package = sys.modules[__name__]
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for command in getattr(module, "COMMANDS", []):
            cli.add_command(command)


_register()


def main() -> None:
    cli(prog_name="dispatch")
