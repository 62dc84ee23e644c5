"""Shared fixtures. Area-specific fixtures live in tests/plugins/<area>.py (loaded below), so
that each part of Dispatch keeps its own test helpers without everyone editing this file."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from dispatch.config import Settings, all_env_names, database_target
from dispatch.store import Database, open_db

pytest_plugins = sorted(
    f"tests.plugins.{p.stem}"
    for p in (Path(__file__).parent / "plugins").glob("*.py")
    if not p.stem.startswith("_")
)

IN_CI = os.environ.get("CI", "").lower() == "true"

#: DISPATCH_TEST_DB=postgresql runs the tests on a throwaway PostgreSQL cluster
#: (tests/plugins/postgres.py) instead of a SQLite file; read before the environment is emptied.
ON_POSTGRES = os.environ.get("DISPATCH_TEST_DB", "sqlite").lower() == "postgresql"
#: A test about the SQLite file itself: left out of the PostgreSQL pass (not skipped: it ran on
#: the SQLite pass, and under CI no test skips itself).
sqlite_only = pytest.mark.sqlite_only
#: A test of what only PostgreSQL does (several senders on one ledger): left out of the SQLite
#: pass, run on the PostgreSQL pass (``DISPATCH_TEST_DB=postgresql``).
postgres_only = pytest.mark.postgres_only

#: A test that asks for any of these (directly or through another fixture) uses the database.
DATABASE_FIXTURES = {"db", "db_url", "pg_url", "pg_cluster", "make_settings", "run_cli"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On the PostgreSQL pass, run only the tests that touch a database: the others (article
    parsing, rendering, DKIM...) ran on the SQLite pass and would only repeat themselves, and the
    ones about the SQLite file itself cannot run there."""
    if not ON_POSTGRES:
        drop = [item for item in items if item.get_closest_marker("postgres_only") is not None]
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = [item for item in items if item not in drop]
        return
    keep, drop = [], []
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        uses_database = bool(names & DATABASE_FIXTURES)
        about_sqlite = item.get_closest_marker("sqlite_only") is not None
        (keep if uses_database and not about_sqlite else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def skip_or_fail(reason: str) -> None:
    """Skip locally when a real component is missing; under CI that is a failure, never a skip."""
    if IN_CI:
        pytest.fail(f"{reason} (CI must have it: scripts/test.sh installs it)")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """No test sees the developer's settings, and none reaches the network by accident."""
    for name in all_env_names():
        monkeypatch.delenv(name, raising=False)
    for name in list(os.environ):
        if name.startswith(("DISPATCH_", "STRIPE_")):
            monkeypatch.delenv(name, raising=False)
    for proxy in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(proxy, raising=False)
    for name in ("PGPASSWORD", "PGSERVICE", "PGSERVICEFILE", "PGPASSFILE", "PGHOST", "PGUSER"):
        monkeypatch.delenv(name, raising=False)
    if ON_POSTGRES:  # per-machine files (journal, send lock) go beside the working folder
        monkeypatch.chdir(request.getfixturevalue("tmp_path"))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "dispatch.sqlite3"


@pytest.fixture
def db_url(db_path: Path, request: pytest.FixtureRequest) -> str:
    """DISPATCH_DB for the test's database: the SQLite file, or under DISPATCH_TEST_DB=postgresql
    a fresh migrated PostgreSQL database."""
    if ON_POSTGRES:
        return str(request.getfixturevalue("pg_url"))
    return str(db_path)


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = open_db(database_target(db_url), create=True)
    yield database
    database.close()


@pytest.fixture
def make_settings(db_url: str) -> Callable[..., Settings]:
    """Settings from environment-style names, with the test database filled in."""

    def factory(**env: str) -> Settings:
        values = {"DISPATCH_DB": db_url, "DISPATCH_FROM": "Test Outlet <news@outlet.test>"}
        values.update(env)
        return Settings.from_mapping(values)

    return factory


@pytest.fixture
def run_cli(db_path: Path, db_url: str) -> Callable[..., Result]:
    """Invoke the real CLI in-process with --no-dotenv and an explicit environment, for an
    outlet whose database exists (tests of a missing one point DISPATCH_DB elsewhere)."""

    def invoke(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result:
        if not ON_POSTGRES and not db_path.exists():
            open_db(db_path, create=True).close()
        full_env = {"DISPATCH_DB": db_url, "DISPATCH_FROM": "Test Outlet <news@outlet.test>"}
        full_env.update(env or {})
        from dispatch.cli import cli  # imported here so a broken command breaks only CLI tests

        runner = CliRunner()
        return runner.invoke(
            cli, ["--no-dotenv", *args], env=full_env, input=input, catch_exceptions=False
        )

    return invoke
