"""Settings: environment over .env, one switch to skip .env, clear errors, secrets hidden."""

from __future__ import annotations

from pathlib import Path

import pytest

from dispatch.config import Secret, Settings, load_settings
from dispatch.errors import ConfigError


def test_environment_wins_over_dotenv(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "DISPATCH_OUTLET_NAME=From file\nDISPATCH_WINDOW_DAYS=3\n", encoding="utf-8"
    )
    settings = load_settings(env_file=env_file, environ={"DISPATCH_OUTLET_NAME": "From env"})
    assert settings.outlet_name == "From env"
    assert settings.window_days == 3


def test_dotenv_can_be_switched_off(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("DISPATCH_OUTLET_NAME=From file\n", encoding="utf-8")
    settings = load_settings(env_file=env_file, use_dotenv=False, environ={})
    assert settings.outlet_name == "Our newsroom"


def test_a_missing_env_file_given_explicitly_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(env_file=tmp_path / "nope.env", environ={})


def test_require_names_the_variable_and_where_to_set_it() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_mapping({}).require("smtp_url")
    text = str(caught.value)
    assert "DISPATCH_SMTP_URL is not set" in text and ".env" in text


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DISPATCH_WINDOW_DAYS", "seven", "DISPATCH_WINDOW_DAYS must be a whole number"),
        ("DISPATCH_SMTP_RATE", "-1", "DISPATCH_SMTP_RATE must not be negative"),
        ("DISPATCH_PREFILL_EMAIL", "maybe", "DISPATCH_PREFILL_EMAIL must be true or false"),
        ("DISPATCH_SMTP_CONCURRENCY", "0", "DISPATCH_SMTP_CONCURRENCY must be at least 1"),
        ("DISPATCH_SECRET_KEY", "x", "DISPATCH_SECRET_KEY is too short to be secret"),
    ],
)
def test_bad_values_are_named(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_mapping({name: value})


def test_secrets_never_show_in_repr() -> None:
    settings = Settings.from_mapping(
        {
            "DISPATCH_SMTP_URL": "smtp://user:hunter2@mail.example:587",
            "STRIPE_SECRET_KEY": "sk_test_abcdef",
            "DISPATCH_SECRET_KEY": "signing-key-123-long-enough-to-pass",
        }
    )
    text = repr(settings) + str(settings)
    for secret in ("hunter2", "sk_test_abcdef", "signing-key-123"):
        assert secret not in text
    assert settings.stripe_secret_key.reveal() == "sk_test_abcdef"
    assert f"{Secret('x')}" == "Secret('***')"


def test_list_settings_split_on_commas_and_newlines() -> None:
    settings = Settings.from_mapping(
        {"DISPATCH_SOURCES": "https://a.example/feed, articles/\nb.xml"}
    )
    assert settings.sources == ("https://a.example/feed", "articles/", "b.xml")


def test_cli_reports_a_bad_setting_without_traceback(run_cli) -> None:
    result = run_cli("build", env={"DISPATCH_WINDOW_DAYS": "soon"})
    assert result.exit_code == 1
    assert "Error: DISPATCH_WINDOW_DAYS must be a whole number" in result.stderr
    assert "Traceback" not in result.output


def test_boilerplate_patterns_split_on_lines_only_so_regex_commas_survive() -> None:
    settings = Settings.from_mapping(
        {"DISPATCH_BOILERPLATE_PATTERNS": "(?i)^support .{0,120}journalism\n(?i)^the editor$"}
    )
    assert settings.boilerplate_patterns == ("(?i)^support .{0,120}journalism", "(?i)^the editor$")


def test_a_malformed_dotenv_line_is_refused_not_skipped(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text('DISPATCH_OUTLET_NAME=Ledger\nSTRIPE_SECRET_KEY="sk_live_abc\n', "utf-8")
    with pytest.raises(ConfigError, match=r"Line 2 of .*\.env \(starting 'STRIPE_SECRET_KEY'") as e:
        load_settings(env_file=env_file, environ={})
    assert "sk_live_abc" not in str(e.value)


# -- DISPATCH_PAYMENT_LINK: never sent out broken ----------------------------------------

_WEEK = ["--since", "2026-11-16", "--until", "2026-11-22"]


@pytest.mark.parametrize(
    "value",
    [
        "donate.stripe.com/abc",
        "plink_1Nabc",
        "http://donate.stripe.com/abc",
        "https://",
        "/d/x",
        "https://donate.stripe.com/a b",
    ],
)
def test_a_payment_link_that_is_not_an_absolute_https_url_is_refused(value: str) -> None:
    from dispatch.config import check_payment_link_shape

    with pytest.raises(ConfigError) as caught:
        check_payment_link_shape(value)
    text = str(caught.value)
    assert "DISPATCH_PAYMENT_LINK" in text and "https://donate.stripe.com/" in text
    assert ".env" in text


def test_a_payment_link_url_keeps_its_path_and_drops_its_query() -> None:
    from dispatch.config import check_payment_link_shape

    assert check_payment_link_shape(" https://donate.stripe.com/abc?x=1 ") == (
        "https://donate.stripe.com/abc"
    )


def _feed(write_feed):  # noqa: ANN001, ANN202 - the shared feed fixture
    from datetime import UTC, datetime

    return write_feed(
        [("Flood wall approved", "https://news.test/wall", datetime(2026, 11, 19, tzinfo=UTC))]
    )


@pytest.mark.parametrize("value", ["donate.stripe.com/abc", "plink_1Nabc"])
def test_build_preview_and_send_refuse_a_broken_payment_link(
    run_cli, write_feed, tmp_path: Path, value: str
) -> None:
    feed = _feed(write_feed)
    built = run_cli("build", "--source", str(feed), *_WEEK, "--json")
    assert built.exit_code == 0, built.output
    issue = __import__("json").loads(built.stdout)["issue"]
    bad = {"DISPATCH_PAYMENT_LINK": value}
    for args in (
        ["build", "--source", str(feed), *_WEEK],
        ["preview", issue, "--out", str(tmp_path / "p")],
        ["send", issue, "--dry-run", str(tmp_path / "eml")],
        ["send", issue],
    ):
        result = run_cli(*args, env={**bad, "DISPATCH_SMTP_URL": "smtp://127.0.0.1:9"})
        assert result.exit_code == 1, (args, result.output)
        assert "Error: DISPATCH_PAYMENT_LINK" in result.output, result.output
        assert "https://donate.stripe.com/" in result.output
        assert "Traceback" not in result.output
    assert not (tmp_path / "eml").exists()


def test_a_payment_link_is_checked_against_stripe_once_and_remembered(
    make_settings, db, stripe_stub, stripe_env
) -> None:
    from dispatch.donations import verify_payment_link

    link = stripe_stub.add_payment_link()
    settings = make_settings(**stripe_env, DISPATCH_PAYMENT_LINK=link["url"] + "?x=1")
    assert verify_payment_link(settings, db) == link["url"]
    listed = len(stripe_stub.requests)
    assert any(r.path.startswith("/v1/payment_links") for r in stripe_stub.requests)
    assert verify_payment_link(settings, db) == link["url"]
    assert len(stripe_stub.requests) == listed  # remembered in the database


def test_a_payment_link_stripe_does_not_know_is_refused(
    make_settings, db, stripe_stub, stripe_env
) -> None:
    from dispatch.donations import verify_payment_link

    stripe_stub.add_payment_link()
    settings = make_settings(
        **stripe_env, DISPATCH_PAYMENT_LINK="https://donate.stripe.com/test_someone_elses"
    )
    with pytest.raises(ConfigError) as caught:
        verify_payment_link(settings, db)
    assert "not a Payment Link of this Stripe account in test mode" in str(caught.value)
    assert "https://donate.stripe.com/" in str(caught.value)


def test_a_payment_link_is_not_refused_while_stripe_cannot_be_reached(
    make_settings, db, caplog
) -> None:
    """Stripe down must not stop a send: the shape is right, and the next run checks again."""
    import socket

    from dispatch.donations import VERIFIED_LINK_KEY, verify_payment_link
    from dispatch.store import donations as donation_store

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = make_settings(
        STRIPE_SECRET_KEY="sk_test_dispatchTESTkey0123456789",
        STRIPE_API_BASE=f"http://127.0.0.1:{port}",
        STRIPE_MAX_NETWORK_RETRIES="0",
        DISPATCH_PAYMENT_LINK="https://donate.stripe.com/test_abc",
    )
    assert verify_payment_link(settings, db) == "https://donate.stripe.com/test_abc"
    assert "could not be checked against Stripe" in caplog.text
    assert (
        donation_store.get_meta(db, VERIFIED_LINK_KEY + "https://donate.stripe.com/test_abc")
        is None
    )
