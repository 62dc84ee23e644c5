"""A throwaway PostgreSQL cluster for the tests: Debian's initdb and pg_ctl, run as an
unprivileged user (PostgreSQL refuses root), with its data and socket in a temporary folder,
listening on a free loopback port, stopped and removed when the session ends.

``pg_cluster`` is the session's cluster; ``pg_url`` is a fresh database per test (copied from a
migrated template, so a test starts from the same empty schema SQLite's would have)."""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

SUPERUSER = "dispatch"
PASSWORD = "pg-test-secret-7f3a"  # scram over TCP; the tests check it never shows
TEMPLATE = "dispatch_template"


def _bin_dir() -> Path | None:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Cluster:
    bin: Path
    root: Path
    port: int
    user: str | None  # the unprivileged user the server runs as (None: ourselves)
    _names: Any = None

    @property
    def socket_dir(self) -> Path:
        return self.root / "run"

    def url(self, database: str, password: bool = True) -> str:
        secret = f":{PASSWORD}" if password else ""
        return f"postgresql://{SUPERUSER}{secret}@127.0.0.1:{self.port}/{database}"

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        extra: dict[str, Any] = {}
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            extra = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
        return subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            check=check,
            cwd=self.root,
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
            timeout=120,
            **extra,
        )

    def admin(self, sql: str, database: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(
            host=str(self.socket_dir),
            port=self.port,
            user=SUPERUSER,
            dbname=database,
            autocommit=True,
        ) as conn:
            conn.execute(sql.encode())

    def new_database(self, migrated: bool = True) -> str:
        if self._names is None:
            self._names = itertools.count(1)
        name = f"t{os.getpid()}_{next(self._names)}"
        self.admin(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE if migrated else 'template0'}")
        return name

    def drop_database(self, name: str) -> None:
        self.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def start_cluster() -> Cluster | str:
    """A running cluster, or why there cannot be one."""
    bin_dir = _bin_dir()
    if bin_dir is None:
        return "PostgreSQL is not installed (Debian's postgresql package)"
    user = None
    if os.geteuid() == 0:
        user = "nobody"
    root = Path(tempfile.mkdtemp(prefix="dispatch-pg-"))
    os.chmod(root, 0o700)
    cluster = Cluster(bin_dir, root, _free_port(), user)
    cluster.socket_dir.mkdir()
    (root / "pw").write_text(PASSWORD + "\n")
    if user is not None:
        entry = pwd.getpwnam(user)
        for path in (root, cluster.socket_dir, root / "pw"):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    init = cluster.run(
        "initdb",
        "-D",
        str(root / "data"),
        "-U",
        SUPERUSER,
        "--pwfile",
        str(root / "pw"),
        "--auth-local=trust",
        "--auth-host=scram-sha-256",
        "-E",
        "UTF8",
        "--locale=C.UTF-8",
        "--no-sync",
        check=False,
    )
    if init.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        return f"initdb failed: {init.stderr.strip()[-500:]}"
    options = (
        f"-c listen_addresses=127.0.0.1 -p {cluster.port} -k {cluster.socket_dir}"
        " -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    start = cluster.run(
        "pg_ctl",
        "-D",
        str(root / "data"),
        "-o",
        options,
        "-l",
        str(root / "server.log"),
        "-w",
        "-t",
        "60",
        "start",
        check=False,
    )
    if start.returncode != 0:
        log = (root / "server.log").read_text(errors="replace")[-800:]
        shutil.rmtree(root, ignore_errors=True)
        return f"pg_ctl start failed: {start.stderr.strip()} {log}"
    from dispatch.store import PostgresURL, open_db

    cluster.admin(f"CREATE DATABASE {TEMPLATE}")
    open_db(PostgresURL.parse(cluster.url(TEMPLATE), workdir=root)).close()
    from dispatch.store.postgres import close_pools

    close_pools()  # a template may have no connections
    return cluster


def stop_cluster(cluster: Cluster) -> None:
    cluster.run("pg_ctl", "-D", str(cluster.root / "data"), "-m", "immediate", "stop", check=False)
    shutil.rmtree(cluster.root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    from tests.conftest import skip_or_fail

    started = start_cluster()
    if isinstance(started, str):
        skip_or_fail(started)
        raise AssertionError("unreachable")
    yield started
    from dispatch.store.postgres import close_pools

    close_pools()
    stop_cluster(started)


@pytest.fixture
def pg_url(pg_cluster: Cluster) -> Iterator[str]:
    """DISPATCH_DB for a fresh, migrated PostgreSQL database (dropped after the test)."""
    name = pg_cluster.new_database()
    yield pg_cluster.url(name)
    from dispatch.store.postgres import close_pools

    close_pools()
    pg_cluster.drop_database(name)


def dump_text(db: Any) -> str:
    """Every row of every table as text, on either engine (SQLite's iterdump's role)."""
    if db.engine == "sqlite":
        return "\n".join(db.conn.iterdump())
    tables = db.execute(
        "SELECT table_name FROM information_schema.tables"
        " WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
    ).fetchall()
    return "\n".join(
        str(row[0])
        for (name,) in tables
        for row in db.execute(f'SELECT t::text FROM "{name}" t').fetchall()
    )
