"""The project's own promises: layering, documented settings, help with examples."""

from __future__ import annotations

import ast
from pathlib import Path

import click
import pytest

from dispatch.cli import cli
from dispatch.config import all_env_names

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "dispatch"

# The layers themselves (imports point down, no cycles) are checked in test_layers.py.


def test_third_party_libraries_each_live_in_one_place() -> None:
    homes = {
        "jinja2": "render",
        "premailer": "render",
        "smtplib": "mailer",
        "stripe": "donations",
        "feedparser": "articles",
        "flask": "web",
        "sqlite3": "store",
        "psycopg": "store",
        "psycopg_pool": "store",
        "dns": "doctor",
    }
    offenders = []
    for path in SRC.rglob("*.py"):
        rel = ".".join(path.relative_to(SRC).with_suffix("").parts)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module.split(".")[0]]
            for name in names:
                home = homes.get(name)
                if home and not rel.startswith(home):
                    offenders.append(f"{rel} imports {name} (belongs in {home})")
    assert not offenders, "\n".join(offenders)


def test_web_blueprints_import_their_helpers_from_a_sibling_not_the_package() -> None:
    """web/__init__ imports the blueprints; a blueprint importing it back is a hidden loop."""
    siblings = {path.stem for path in (SRC / "web").glob("*.py")}
    offenders = []
    for path in (SRC / "web").glob("*.py"):
        if path.name == "__init__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "dispatch.web":
                # A sibling module by name is fine; a name defined in __init__ is the loop.
                offenders += [
                    f"{path.name}: {a.name}" for a in node.names if a.name not in siblings
                ]
    assert not offenders, offenders


def test_cli_exits_with_a_named_status() -> None:
    """Every exit in cli/ names an ExitStatus member, so 0/1/2/3 mean one thing everywhere."""
    offenders = []
    for path in (SRC / "cli").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name not in {"exit", "Exit"}:
                continue
            arg = node.args[0]
            named = isinstance(arg, ast.Attribute) and (
                getattr(arg.value, "id", "") == "ExitStatus" or arg.attr == "exit_code"
            )
            if not named:
                offenders.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
    assert not offenders, "\n".join(offenders)


def test_every_setting_is_documented_in_env_example() -> None:
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    missing = [name for name in all_env_names() if f"\n{name}=" not in text]
    assert not missing, f".env.example lacks {missing}"


def _all_commands(group: click.Group, prefix: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        yield (*prefix, name), command
        if isinstance(command, click.Group):
            yield from _all_commands(command, (*prefix, name))


@pytest.mark.parametrize(
    "path", [" ".join(p) for p, _ in _all_commands(cli)], ids=lambda p: p or "dispatch"
)
def test_every_command_has_help_with_an_example(path: str, run_cli) -> None:
    result = run_cli(*path.split(), "--help")
    assert result.exit_code == 0, result.output
    assert "Example:" in result.output
    example = result.output.split("Example:", 1)[1]
    assert f"dispatch {path.split()[0]}" in example, f"the example of `{path}` does not use it"


def test_main_help_names_the_weekly_routine(run_cli) -> None:
    result = run_cli("--help")
    assert "dispatch build" in result.output and "dispatch send" in result.output


@pytest.mark.parametrize(
    "command", [["check", "--quiet"], ["format", "--check", "--quiet"]], ids=["check", "format"]
)
def test_code_passes_ruff(command: list[str]) -> None:
    """`ruff check` and `ruff format --check` over everything Python (fix: ruff format FILE)."""
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "ruff", *command, "src", "tests", "bench"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_code_passes_mypy_strict() -> None:
    """`mypy` over src/ with pyproject's config, which is strict (fix: type what it names)."""
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-error-summary"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ci_runs_exactly_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "```sh\nscripts/test.sh\n```" in readme
    assert "```sh\nscripts/demo.sh\n```" in readme
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "exec scripts/test.sh" in ci


def test_readme_demo_command_runs(tmp_path: Path) -> None:
    """The README's first command, for real: the script, the venv check, the whole demo."""
    import subprocess

    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "demo.sh"), "--workdir", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "personal copies sent, 0 failed" in result.stdout
    assert (tmp_path / "demo" / "preview" / "non_donor.html").is_file()
