"""Importing the editor's CSV files (hostile ones too), suppression, unsubscribe and forget."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from dispatch.store.subscribers import address_hash
from tests.plugins.postgres import dump_text

EXAMPLE = Path(__file__).parents[1] / "subscribers" / "example.csv"


def write(tmp_path: Path, content: str | bytes, name: str = "list.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def import_json(run_cli, path: Path) -> dict:
    result = run_cli("subscribers", "import", str(path), "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def listed(run_cli, status: str = "all") -> dict[str, dict]:
    result = run_cli("subscribers", "list", "--status", status, "--json")
    assert result.exit_code == 0, result.output
    return {s["email"]: s for s in json.loads(result.stdout)}


def test_example_csv_imports_cleanly(run_cli):
    report = import_json(run_cli, EXAMPLE)
    assert report == {
        "added": 12,
        "updated": 0,
        "unchanged": 0,
        "suppressed": 0,
        "invalid": 0,
        "invalid_rows": [],
        "rows": 12,
        "layout": "plain",
        "encoding": "utf-8",
        "delimiter": ",",
        "ignored_columns": [],
        "dry_run": False,
    }
    people = listed(run_cli)
    assert people["chloe.lefevre@example.com"]["name"] == "Lefèvre, Chloé"
    assert people["malik.haddad@example.org"]["name"] == 'Malik "Mal" Haddad'
    assert people["renee.dubois@example.com"]["tags"] == ["weekly", "donor"]
    assert {p["status"] for p in people.values()} == {"active"}
    again = import_json(run_cli, EXAMPLE)
    assert again["unchanged"] == 12 and again["added"] == 0


def test_bad_rows_are_reported_with_their_physical_line_and_good_rows_still_imported(
    tmp_path, run_cli
):
    content = (
        "ana@example.org,Ana\n"  # 1
        '"bo@example.org","Bo\nwith a line break"\n'  # 2-3 (one record)
        "not-an-address,Nobody\n"  # 4
        "\n"  # 5 (blank: ignored)
        "ANA@Example.ORG,Ana again\n"  # 6 duplicate of line 1
        ",No address\n"  # 7
        "cy@example.org,Cy,friends,,local\n"  # 8
        "dee@localhost,Dee\n"  # 9
        "eve@exa mple.org,Eve\n"  # 10
    )
    report = import_json(run_cli, write(tmp_path, content))
    assert (report["added"], report["invalid"]) == (3, 5)
    rows = {r["line"]: r for r in report["invalid_rows"]}
    assert sorted(rows) == [4, 6, 7, 9, 10]
    assert rows[4]["email"] == "not-an-address" and "@" in rows[4]["reason"]
    assert rows[6]["email"] == "ana@example.org" and "duplicate of line 1" in rows[6]["reason"]
    assert "no email address" in rows[7]["reason"]
    people = listed(run_cli)
    assert sorted(people) == ["ana@example.org", "bo@example.org", "cy@example.org"]
    assert people["bo@example.org"]["name"] == "Bo with a line break"
    assert people["cy@example.org"]["tags"] == ["friends", "local"]


def test_header_row_bom_crlf_and_column_order(tmp_path, run_cli):
    content = (
        '\ufeffName,E-mail,Tags\r\nAna Souza,ana@example.org,donor\r\n"Ló, Bo",BO@example.org,\r\n'
    )
    report = import_json(run_cli, write(tmp_path, content))
    assert report["added"] == 2 and report["invalid"] == 0
    people = listed(run_cli)
    assert people["bo@example.org"]["name"] == "Ló, Bo"
    assert people["ana@example.org"]["tags"] == ["donor"]


def test_old_mac_line_endings_and_no_trailing_newline(tmp_path, run_cli):
    report = import_json(run_cli, write(tmp_path, "a@example.org,A\rb@example.org,B\rbad,C"))
    assert report["added"] == 2
    assert report["invalid_rows"][0]["line"] == 3


def test_header_injection_in_a_name_is_flattened_to_one_line(tmp_path, run_cli):
    content = '"eve@example.org","Eve\r\nBcc: victim@example.net\tx\x00"\n'
    import_json(run_cli, write(tmp_path, content))
    assert listed(run_cli)["eve@example.org"]["name"] == "Eve Bcc: victim@example.net x"


def test_malformed_quoting_reports_the_row_and_keeps_going(tmp_path, run_cli):
    content = 'a@example.org,A\nb@example.org,"B"junk\nc@example.org,C\n'
    report = import_json(run_cli, write(tmp_path, content))
    assert report["added"] == 2
    assert report["invalid_rows"][0]["line"] == 2
    assert "malformed CSV" in report["invalid_rows"][0]["reason"]


def test_empty_file_and_header_only_file_are_clear_errors(tmp_path, run_cli):
    for content in ("", "email,name\n", "\n\n"):
        result = run_cli("subscribers", "import", str(write(tmp_path, content)))
        assert result.exit_code == 1
        assert "has no subscriber rows" in result.output


def test_windows_1252_file_is_read_as_such(tmp_path, run_cli):
    path = write(tmp_path, "a@example.org,Ana\nb@example.org,Jos\xe9 S\xe3o\n".encode("cp1252"))
    report = import_json(run_cli, path)
    assert report["added"] == 2 and report["encoding"] == "cp1252"
    assert listed(run_cli)["b@example.org"]["name"] == "José São"


def test_a_file_that_is_not_text_is_a_clear_error_naming_the_line(tmp_path, run_cli):
    path = write(tmp_path, b"a@example.org,Ana\n" + bytes(range(256)) * 4)
    result = run_cli("subscribers", "import", str(path))
    assert result.exit_code == 1
    assert "is not text" in result.output and "line 3" in result.output
    assert "Traceback" not in result.output


def test_missing_file_is_a_clear_error(tmp_path, run_cli):
    result = run_cli("subscribers", "import", str(tmp_path / "nope.csv"))
    assert result.exit_code == 1 and "Cannot read" in result.output


def test_suppression_wins_over_import(tmp_path, run_cli, db):
    path = write(tmp_path, "ana@example.org,Ana\nbo@example.org,Bo\ncy@example.org,Cy\n")
    import_json(run_cli, path)
    assert run_cli("subscribers", "unsubscribe", "ANA@example.org").exit_code == 0
    db.execute("UPDATE subscribers SET status = 'bounced' WHERE email = 'bo@example.org'")
    report = import_json(
        run_cli, write(tmp_path, "Ana@Example.org,Ana Again\nbo@example.org,B\ncy@example.org,Cy\n")
    )
    assert (report["suppressed"], report["unchanged"]) == (2, 1)
    people = listed(run_cli)
    assert people["ana@example.org"]["status"] == "unsubscribed"
    assert people["ana@example.org"]["name"] == "Ana"
    assert people["bo@example.org"]["status"] == "bounced"


def test_forget_erases_the_person_and_keeps_them_off_the_list(tmp_path, run_cli, db):
    from dispatch.store import ledger
    from tests.plugins.smtp import create_sample_issue

    import_json(run_cli, write(tmp_path, "ana@example.org,Ana Souza,donor\nbo@example.org,Bo\n"))
    create_sample_issue(db)
    ledger.fix_deliveries(db, "2026-W48", {}, "non_donor")
    with db.transaction() as conn:  # traces a send, a bounce and a web signup leave
        conn.execute(
            "UPDATE deliveries SET last_reply = '550 5.1.1 <ana@example.org> unknown'"
            " WHERE email = 'ana@example.org'"
        )
        conn.execute(
            "INSERT INTO bounces (message_key, subscriber_id, kind, diagnostic, received_at)"
            " SELECT 'k1', id, 'soft', 'mailbox full: ana@example.org', '2026-11-27' FROM"
            " subscribers WHERE email = 'ana@example.org'"
        )
        conn.execute(
            "INSERT INTO confirmations (token_hash, email, name, created_at, expires_at)"
            " VALUES ('h', 'ana@example.org', 'Ana Souza', '2026-11-27', '2026-11-29')"
        )
    result = run_cli("subscribers", "forget", "Ana@Example.org")
    assert result.exit_code == 0 and "Forgotten" in result.output
    assert "ana@example.org" not in listed(run_cli)
    rows = db.execute("SELECT email, subscriber_id FROM deliveries ORDER BY id").fetchall()
    assert [tuple(r) for r in rows][0] == (None, None)
    dump = dump_text(db)
    assert "ana@example.org" not in dump.lower() and "Ana Souza" not in dump
    assert address_hash("ana@example.org") in dump
    report = import_json(run_cli, write(tmp_path, "ana@example.org,Ana\n"))
    assert report["suppressed"] == 1 and report["added"] == 0
    unknown = run_cli("subscribers", "forget", "zed@example.org")
    assert unknown.exit_code == 0 and "Not on the list" in unknown.output
    assert import_json(run_cli, write(tmp_path, "zed@example.org,Zed\n"))["suppressed"] == 1


def test_unsubscribe_unknown_address_is_an_error(run_cli, db):
    result = run_cli("subscribers", "unsubscribe", "nobody@example.org")
    assert result.exit_code == 1 and "not a subscriber" in result.output


def test_export_round_trips_through_import(tmp_path, run_cli):
    import_json(run_cli, EXAMPLE)
    result = run_cli("subscribers", "export")
    assert result.exit_code == 0
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["email", "name", "tags"] and len(rows) == 13
    out = tmp_path / "backup.csv"
    assert run_cli("subscribers", "export", "--out", str(out)).exit_code == 0
    assert out.read_text(encoding="utf-8") == result.stdout
    report = import_json(run_cli, out)
    assert report["unchanged"] == 12 and report["invalid"] == 0


@pytest.mark.parametrize("status", ["unsubscribed", "active"])
def test_list_filters_by_status(tmp_path, run_cli, status):
    import_json(run_cli, write(tmp_path, "a@example.org,A\nb@example.org,B\n"))
    run_cli("subscribers", "unsubscribe", "a@example.org")
    people = listed(run_cli, status)
    assert list(people) == (["a@example.org"] if status == "unsubscribed" else ["b@example.org"])


def test_export_quotes_would_be_spreadsheet_formulas_and_imports_them_back(run_cli, tmp_path):
    source = tmp_path / "in.csv"
    source.write_text(
        'email,name,tags\nmal@example.org,"=HYPERLINK(""http://evil.example"",""x"")",+tag\n',
        encoding="utf-8",
    )
    assert run_cli("subscribers", "import", str(source)).exit_code == 0
    out = tmp_path / "out.csv"
    assert run_cli("subscribers", "export", "--out", str(out)).exit_code == 0
    exported = out.read_text(encoding="utf-8")
    assert "'=HYPERLINK" in exported and ",'+tag" in exported
    # the export imports back unchanged
    again = json.loads(run_cli("subscribers", "import", str(out), "--json").stdout)
    assert (again["unchanged"], again["updated"]) == (1, 0)


def test_export_to_an_unwritable_place_is_a_clear_error(run_cli, tmp_path):
    result = run_cli("subscribers", "export", "--out", str(tmp_path / "no" / "such" / "x.csv"))
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: Cannot write")
    assert "Traceback" not in result.output
