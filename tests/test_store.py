"""Finding the database: only build, subscribers import and demo start one; everything else says
where it looked. A DISPATCH_DB that is a folder, in a missing folder, or not SQLite is named."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dispatch.errors import StoreError
from dispatch.store import open_db

CSV = "email,name\nana@example.org,Ana\n"


def _dispatch(cwd: Path, *args: str, env: dict[str, str] | None = None):
    """The real command in another folder (a subprocess: the tests' own folder never changes)."""
    import os

    full = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "dispatch", "--no-dotenv", *args],
        cwd=cwd,
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "args",
    [
        ("status", "2026-W49"),
        ("report",),
        ("subscribers", "list"),
        ("preview", "2026-W49", "--out", "p"),
    ],
)
def test_a_command_that_needs_a_database_says_where_it_looked(run_cli, tmp_path, args) -> None:
    missing = tmp_path / "elsewhere" / "dispatch.sqlite3"
    missing.parent.mkdir()
    result = run_cli(*args, env={"DISPATCH_DB": str(missing)})
    assert result.exit_code == 1, result.output
    assert f"Error: No Dispatch database was found at {missing}" in result.output
    assert "There is no issue" not in result.output
    assert "dispatch build" in result.output and "DISPATCH_DB" in result.output
    assert not missing.exists()  # no stray empty database


def test_run_from_another_folder_nothing_is_created_and_the_folder_is_named(tmp_path) -> None:
    elsewhere = tmp_path / "Downloads"
    elsewhere.mkdir()
    result = _dispatch(elsewhere, "status", "2026-W49")
    assert result.returncode == 1, result.stderr
    assert f"No Dispatch database was found at {elsewhere / 'dispatch.sqlite3'}" in result.stderr
    assert "relative to the current folder" in result.stderr
    assert "Traceback" not in result.stderr
    assert list(elsewhere.iterdir()) == []


def test_build_and_import_start_a_database(run_cli, tmp_path) -> None:
    csv = tmp_path / "list.csv"
    csv.write_text(CSV, encoding="utf-8")
    fresh = tmp_path / "fresh.sqlite3"
    imported = run_cli("subscribers", "import", str(csv), env={"DISPATCH_DB": str(fresh)})
    assert imported.exit_code == 0, imported.output
    assert fresh.is_file()
    listed = run_cli("subscribers", "list", "--json", env={"DISPATCH_DB": str(fresh)})
    assert "ana@example.org" in listed.output
    other = tmp_path / "built.sqlite3"
    built = run_cli("build", "--source", str(tmp_path / "nothing"), env={"DISPATCH_DB": str(other)})
    assert other.is_file(), built.output  # the store opened (and created) before the sources


def test_a_database_in_a_folder_that_does_not_exist_is_refused(run_cli, tmp_path) -> None:
    target = tmp_path / "no" / "such" / "folder" / "dispatch.sqlite3"
    csv = tmp_path / "list.csv"
    csv.write_text(CSV, encoding="utf-8")
    result = run_cli("subscribers", "import", str(csv), env={"DISPATCH_DB": str(target)})
    assert result.exit_code == 1
    assert f"The folder of DISPATCH_DB does not exist: {target.parent}" in result.output
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize("create", [True, False])
def test_a_file_that_is_not_sqlite_is_named_not_a_traceback(run_cli, tmp_path, create) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("Shopping list: milk, eggs, and a much longer line of text. " * 20)
    before = notes.read_bytes()
    csv = tmp_path / "list.csv"
    csv.write_text(CSV, encoding="utf-8")
    args = ("subscribers", "import", str(csv)) if create else ("status", "2026-W49")
    result = run_cli(*args, env={"DISPATCH_DB": str(notes)})
    assert result.exit_code == 1
    assert f"Error: DISPATCH_DB points to {notes}, which is not a SQLite database" in result.output
    assert "Traceback" not in result.output
    assert notes.read_bytes() == before


def test_a_folder_given_as_the_database_is_named(run_cli, tmp_path) -> None:
    result = run_cli("report", env={"DISPATCH_DB": str(tmp_path)})
    assert result.exit_code == 1
    assert f"DISPATCH_DB points to the folder {tmp_path}" in result.output


def test_open_db_does_not_create_unless_asked(tmp_path) -> None:
    path = tmp_path / "d.sqlite3"
    with pytest.raises(StoreError, match="No Dispatch database was found"):
        open_db(path)
    assert not path.exists()
    open_db(path, create=True).close()
    open_db(path).close()


def test_sqlite_urls_name_relative_and_absolute_files(run_cli, tmp_path) -> None:
    csv = tmp_path / "list.csv"
    csv.write_text(CSV, encoding="utf-8")
    absolute = tmp_path / "abs.sqlite3"
    result = run_cli(
        "subscribers", "import", str(csv), env={"DISPATCH_DB": f"sqlite:///{absolute}"}
    )
    assert result.exit_code == 0, result.output
    assert absolute.is_file()
    folder = tmp_path / "outlet"
    folder.mkdir()
    made = _dispatch(
        folder, "subscribers", "import", str(csv), env={"DISPATCH_DB": "sqlite:///data.sqlite3"}
    )
    assert made.returncode == 0, made.stderr
    assert (folder / "data.sqlite3").is_file()
    bad = run_cli("report", env={"DISPATCH_DB": "sqlite://"})
    assert bad.exit_code == 1 and "sqlite:////absolute/" in bad.output
