"""Imports of real exports: Mailchimp, Substack, Ghost, listmonk, Buttondown, beehiiv, Excel.

Each test writes the tool's file itself, with the column names of that tool's CSV export.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

MAILCHIMP_HEADER = (
    "Email Address,First Name,Last Name,Address,Phone Number,MEMBER_RATING,OPTIN_TIME,OPTIN_IP,"
    "CONFIRM_TIME,CONFIRM_IP,LATITUDE,LONGITUDE,GMTOFF,DSTOFF,TIMEZONE,CC,REGION,LAST_CHANGED,"
    "LEID,EUID,NOTES,TAGS"
)


def _row(email: str, first: str, last: str, tags: str) -> str:
    return (
        f'{email},{first},{last},,,2,"2024-03-01 10:00:00",203.0.113.7,"2024-03-01 10:05:00",'
        f'203.0.113.8,51.5,-0.12,0,1,Europe/London,GB,ENG,"2024-03-02 09:00:00",123456,'
        f'abc123,,"{tags}"'
    )


def write(tmp_path: Path, text: str | bytes, name: str = "export.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def run_import(run_cli, path: Path, *extra: str) -> dict:
    result = run_cli("subscribers", "import", str(path), "--json", *extra)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def listed(run_cli) -> dict[str, dict]:
    result = run_cli("subscribers", "list", "--json")
    assert result.exit_code == 0, result.output
    return {s["email"]: s for s in json.loads(result.stdout)}


@pytest.fixture
def import_export(tmp_path, run_cli):
    """Import one tool's export from its text: the import report, and everyone listed after."""

    def run(text: str) -> tuple[dict, dict[str, dict]]:
        report = run_import(run_cli, write(tmp_path, text))
        return report, listed(run_cli)

    return run


def test_mailchimp_audience_export_keeps_names_and_consent_not_as_tags(tmp_path, run_cli):
    text = "\n".join([
        MAILCHIMP_HEADER,
        _row("ada@example.org", "Ada", "Lovelace", '""Donor"",""Weekly""'),
        _row("alan@example.org", "Alan", "Turing", ""),
    ]) + "\n"  # fmt: skip
    report = run_import(run_cli, write(tmp_path, text))
    assert (report["added"], report["invalid"], report["layout"]) == (2, 0, "mailchimp")
    ada = listed(run_cli)["ada@example.org"]
    assert ada["name"] == "Ada Lovelace" and ada["first_name"] == "Ada"
    assert ada["tags"] == ["Donor", "Weekly"]
    assert ada["consent_at"] == "2024-03-01 10:00:00" and ada["consent_ip"] == "203.0.113.7"
    assert ada["consent_source"] == "mailchimp export"
    assert ada["status"] == "active"
    assert listed(run_cli)["alan@example.org"]["tags"] == []
    assert "LATITUDE" in report["ignored_columns"]


@pytest.mark.parametrize(
    ("extra", "status"),
    [
        ("UNSUB_TIME,UNSUB_CAMPAIGN_TITLE,UNSUB_CAMPAIGN_ID,UNSUB_REASON,UNSUB_REASON_OTHER",
         "unsubscribed"),
        ("CLEAN_TIME,CLEAN_CAMPAIGN_TITLE,CLEAN_CAMPAIGN_ID", "bounced"),
    ],
)  # fmt: skip
def test_mailchimp_unsubscribed_and_cleaned_exports_are_never_active(
    tmp_path, run_cli, extra, status
):
    plain = write(tmp_path, "email,name\nada@example.org,Ada\n", "plain.csv")
    run_import(run_cli, plain)
    cells = ",".join("2024-05-01" for _ in extra.split(","))
    text = f"{MAILCHIMP_HEADER},{extra}\n" + _row("ada@example.org", "Ada", "L", "") + f",{cells}\n"
    text += _row("new@example.org", "New", "One", "") + f",{cells}\n"
    report = run_import(run_cli, write(tmp_path, text))
    assert report["invalid"] == 0, report
    people = listed(run_cli)
    assert people["ada@example.org"]["status"] == status  # an active reader moves
    assert people["new@example.org"]["status"] == status  # a new one arrives so
    again = run_import(run_cli, plain)  # and no later import makes them active
    assert again["suppressed"] == 1
    assert listed(run_cli)["ada@example.org"]["status"] == status


def test_excel_semicolon_file_in_windows_1252(tmp_path, run_cli):
    text = "E-mail;Name\r\nana@example.org;Ana Souza\r\njose@example.org;José Núñez; \r\n"
    report = run_import(run_cli, write(tmp_path, text.encode("cp1252")))
    assert (report["added"], report["invalid"]) == (2, 0), report
    assert report["delimiter"] == ";" and report["encoding"] == "cp1252"
    assert listed(run_cli)["jose@example.org"]["name"] == "José Núñez"


def test_headerless_semicolon_file_is_not_blamed_on_the_address(tmp_path, run_cli):
    report = run_import(run_cli, write(tmp_path, "ana@example.org;Ana Souza\nbo@example.org;Bo\n"))
    assert (report["added"], report["invalid"]) == (2, 0)
    assert listed(run_cli)["ana@example.org"]["name"] == "Ana Souza"


def test_utf16_tab_separated_excel_unicode_text(tmp_path, run_cli):
    text = "Email\tFirst Name\tLast Name\r\nzoe@example.org\tZoë\tÅberg\r\n"
    report = run_import(run_cli, write(tmp_path, text.encode("utf-16")))
    assert report["added"] == 1 and report["delimiter"] == "\t"
    zoe = listed(run_cli)["zoe@example.org"]
    assert (zoe["name"], zoe["first_name"]) == ("Zoë Åberg", "Zoë")


def test_utf8_bom_comma_file(tmp_path, run_cli):
    report = run_import(run_cli, write(tmp_path, "\ufeffemail,name\nli@example.org,Lì\n"))
    assert report["added"] == 1 and listed(run_cli)["li@example.org"]["name"] == "Lì"


def test_substack_email_disabled_is_unsubscribed(import_export):
    text = (
        "email,active_subscription,expiry,plan,email_disabled,created_at\n"
        "on@example.org,false,,free,false,2023-01-02T03:04:05.000Z\n"
        "off@example.org,true,2025-01-01,paid,true,2023-01-02T03:04:05.000Z\n"
    )
    report, people = import_export(text)
    assert report["layout"] == "substack" and report["added"] == 2
    assert people["on@example.org"]["status"] == "active"
    assert people["off@example.org"]["status"] == "unsubscribed"
    assert people["on@example.org"]["consent_at"] == "2023-01-02T03:04:05.000Z"
    assert people["on@example.org"]["tags"] == []


def test_ghost_members_labels_and_subscribed_to_emails(import_export):
    text = (
        "id,email,name,note,subscribed_to_emails,complimentary_plan,stripe_customer_id,"
        "created_at,deleted_at,labels,tiers\n"
        '6401,kim@example.org,Kim Lee,"likes\nlong notes",true,false,,2022-05-05T00:00:00.000Z,'
        ',"Local, Donor",\n'
        "6402,out@example.org,Out,,false,false,cus_1,2022-05-05T00:00:00.000Z,,,Supporter\n"
    )
    report, people = import_export(text)
    assert (report["layout"], report["added"], report["invalid"]) == ("ghost", 2, 0), report
    assert people["kim@example.org"]["tags"] == ["Local", "Donor"]
    assert people["kim@example.org"]["name"] == "Kim Lee"
    assert people["out@example.org"]["status"] == "unsubscribed"


def test_listmonk_blocklisted_is_unsubscribed(import_export):
    text = (
        "uuid,email,name,attributes,status,created_at,updated_at\n"
        'u1,en@example.org,En,"{""city"": ""Porto""}",enabled,2021-01-01,2021-01-02\n'
        "u2,bl@example.org,Bl,{},blocklisted,2021-01-01,2021-01-02\n"
    )
    report, people = import_export(text)
    assert report["layout"] == "listmonk" and report["invalid"] == 0
    assert people["en@example.org"]["status"] == "active"
    assert people["bl@example.org"]["status"] == "unsubscribed"
    assert people["en@example.org"]["tags"] == []


def test_buttondown_subscriber_types(import_export):
    text = (
        "email,subscriber_type,notes,metadata,tags,creation_date,referrer_url,utm_source\n"
        'reg@example.org,regular,,{},"news, local",2020-02-02,https://ref.example/,twitter\n'
        "gone@example.org,unsubscribed,,{},,2020-02-02,,\n"
    )
    report, people = import_export(text)
    assert report["layout"] == "buttondown" and report["invalid"] == 0
    assert people["reg@example.org"]["tags"] == ["news", "local"]
    assert people["reg@example.org"]["consent_source"] == "buttondown export: twitter"
    assert people["gone@example.org"]["status"] == "unsubscribed"


def test_beehiiv_status_and_language(import_export):
    text = (
        "email,status,created_at,utm_source,utm_medium,referring_site,language\n"
        "act@example.org,active,2024-01-01 00:00:00,newsletter,email,,pt-BR\n"
        "ina@example.org,inactive,2024-01-01 00:00:00,,,,\n"
    )
    report, people = import_export(text)
    assert report["layout"] == "beehiiv" and report["invalid"] == 0
    assert people["act@example.org"]["language"] == "pt-BR"
    assert "pt-BR" not in people["act@example.org"]["tags"]
    assert people["ina@example.org"]["status"] == "unsubscribed"


def test_unknown_layout_lists_its_columns_and_takes_a_map(tmp_path, run_cli):
    path = write(tmp_path, "Courriel,Nom complet,Ville\nana@example.org,Ana Souza,Porto\n")
    result = run_cli("subscribers", "import", str(path))
    assert result.exit_code == 1
    assert "Courriel, Nom complet, Ville" in result.output and "--map" in result.output
    report = run_import(run_cli, path, "--map", "email=Courriel,name=Nom complet,tags=Ville")
    assert report["added"] == 1
    assert listed(run_cli)["ana@example.org"]["tags"] == ["Porto"]
    bad = run_cli("subscribers", "import", str(path), "--map", "email=Mail")
    assert bad.exit_code == 1 and "Mail" in bad.output and "Courriel" in bad.output


def test_dry_run_shows_what_would_change_and_stores_nothing(tmp_path, run_cli, db):
    path = write(tmp_path, "email,name\nana@example.org,Ana\nbo@example.org,Bo\n")
    report = run_import(run_cli, path, "--dry-run")
    assert report["added"] == 2 and report["dry_run"] is True
    assert db.execute("SELECT COUNT(*) FROM subscribers").fetchone()[0] == 0
    text = run_cli("subscribers", "import", str(path), "--dry-run")
    assert (
        text.exit_code == 0
        and "Would import" in text.output
        and "Nothing was stored" in (text.output)
    )


def test_a_dry_run_or_an_unreadable_file_creates_no_database(tmp_path, run_cli):
    missing = tmp_path / "not-yet" / "dispatch.sqlite3"
    missing.parent.mkdir()
    env = {"DISPATCH_DB": str(missing)}
    path = write(tmp_path, "email,name\nana@example.org,Ana\nbo@example.org,Bo\n")
    dry = run_cli("subscribers", "import", str(path), "--dry-run", "--json", env=env)
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.output)["added"] == 2  # everything would be new
    assert not missing.exists()
    gone = run_cli("subscribers", "import", str(tmp_path / "nope.csv"), env=env)
    assert gone.exit_code == 1 and "nope.csv" in gone.output
    assert not missing.exists()  # the file is read before the database is created


def test_line_breaks_and_control_characters_in_names_become_single_spaces(tmp_path, run_cli):
    text = 'email,first name,last name\nada@example.org,"Ada\r\n\tB.",Love\x0blace\n'
    run_import(run_cli, write(tmp_path, text))
    ada = listed(run_cli)["ada@example.org"]
    assert ada["name"] == "Ada B. Love lace" and ada["first_name"] == "Ada B."


def test_a_plain_status_column_keeps_the_unsubscribed_out_and_ignores_other_words(
    tmp_path, run_cli
):
    text = "email,name,status\nin@example.org,In,Subscribed\nout@example.org,Out,Unsubscribed\n"
    report = run_import(run_cli, write(tmp_path, text))
    assert (report["added"], report["invalid"]) == (2, 0)
    people = listed(run_cli)
    assert people["in@example.org"]["status"] == "active"
    assert people["out@example.org"]["status"] == "unsubscribed"
