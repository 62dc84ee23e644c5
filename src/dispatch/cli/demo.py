"""`dispatch demo`: the whole weekly job on bundled sample data."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("dispatch-demo"),
    show_default=True,
    help="Folder for the demo's database, previews and received mail.",
)
def demo(workdir: Path) -> None:
    """Run the weekly job on the bundled sample site, with no network and no settings.

    Uses its own database in the work folder (reset each run); your settings and .env are
    not used.

    \b
    Example:
      dispatch demo
      dispatch demo --workdir /tmp/dispatch-demo
    """
    from dispatch.jobs.demo import run_demo  # the demo's sample data loads only when asked for

    run_demo(workdir, echo=click.echo)


COMMANDS = [demo]
