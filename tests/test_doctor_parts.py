"""The parts of `dispatch doctor` on their own: lenient settings, the runner's deadlines, the
bulk-sender rule, the DMARC tree walk and the resolver setting."""

from __future__ import annotations

import threading

import pytest

from dispatch.config import load_settings_leniently
from dispatch.doctor.checks import (
    Check,
    Status,
    apply_bulk_rule,
    bulk_missing,
    ok,
    run_checks,
)
from dispatch.doctor.dns import TxtLookup, parse_servers
from dispatch.doctor.records import aligned, dmarc_names, tags
from dispatch.errors import ConfigError


def test_lenient_settings_keep_the_good_and_name_the_bad(tmp_path):
    settings, problems = load_settings_leniently(
        use_dotenv=False,
        environ={
            "DISPATCH_SMTP_TIMEOUT": "soon",
            "DISPATCH_SECRET_KEY": "hunter2xyz",
            "DISPATCH_SMTP_CONCURRENCY": "0",
            "DISPATCH_OUTLET_NAME": "The Ledger",
            "DISPATCH_WINDOW_DAYS": "14",
        },
    )
    assert set(problems) == {
        "DISPATCH_SMTP_TIMEOUT",
        "DISPATCH_SECRET_KEY",
        "DISPATCH_SMTP_CONCURRENCY",
    }
    assert "hunter2xyz" not in str(problems["DISPATCH_SECRET_KEY"])  # a secret never shows
    assert settings.outlet_name == "The Ledger" and settings.window_days == 14
    assert settings.smtp_timeout == 30.0  # the default stands in for the bad value


def test_lenient_settings_survive_a_broken_env_file(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text('DISPATCH_FROM="unclosed\n')
    settings, problems = load_settings_leniently(
        env_file=env_file, environ={"DISPATCH_OUTLET_NAME": "X"}
    )
    assert ".env" in problems and settings.outlet_name == "X"


def test_a_check_that_never_returns_is_reported_late_and_the_run_ends():
    never = threading.Event()

    def hang():
        never.wait()
        return ok("hang", "unreachable")

    results = run_checks(
        [
            Check("hang", hang, limit=0.2, on_timeout=Status.WARN),
            Check("quick", lambda: ok("quick", "fine"), limit=5),
        ],
        total=5,
    )
    assert [r.name for r in results] == ["hang", "quick"]
    assert (
        results[0].status == Status.WARN
        and "no answer from the check within 0.2 s" in results[0].detail
    )
    assert results[1].status == Status.OK
    never.set()


def test_a_crashing_check_fails_without_hiding_the_others():
    def boom():
        raise RuntimeError("smtp://user:secret@host")  # foreign text may hold a secret

    def config():
        raise ConfigError("DISPATCH_X is wrong", "Fix it.")

    results = run_checks(
        [
            Check("boom", boom, 5),
            Check("config", config, 5),
            Check("fine", lambda: ok("fine", ""), 5),
        ]
    )
    assert results[0].status == Status.FAIL and "secret" not in results[0].detail
    assert results[1].status == Status.FAIL and results[1].detail == "DISPATCH_X is wrong"
    assert results[1].fix == "Fix it."
    assert results[2].status == Status.OK


@pytest.mark.parametrize(
    ("readers", "status"), [(4999, Status.WARN), (5000, Status.FAIL), (None, Status.WARN)]
)
def test_bulk_rule_warns_below_5000_and_fails_from_it(readers, status):
    (settled,) = apply_bulk_rule([bulk_missing("spf", "no SPF record", "publish one")], readers)
    assert settled.status == status


def test_dmarc_tree_walk_stops_before_the_top_level_domain():
    assert dmarc_names("news.mail.outlet.co.uk") == [
        "news.mail.outlet.co.uk",
        "mail.outlet.co.uk",
        "outlet.co.uk",
        "co.uk",
    ]
    long = ".".join(f"l{i}" for i in range(10)) + ".org"
    names = dmarc_names(long)
    assert names[0] == long and len(names[1].split(".")) == 7 and names[-1].count(".") == 1


def test_tags_and_alignment():
    assert tags("v=DMARC1; p=reject ;sp = none")["sp"] == "none"
    assert aligned("outlet.org", "mail.outlet.org") and not aligned("outlet.org", "other.org")


def test_dns_servers_setting_accepts_ports_and_names_the_bad_one():
    assert parse_servers(["1.1.1.1", "127.0.0.1:5353", "[::1]:5300", "::1"]) == [
        ("1.1.1.1", 53),
        ("127.0.0.1", 5353),
        ("::1", 5300),
        ("::1", 53),
    ]
    with pytest.raises(ConfigError, match="DISPATCH_DNS_SERVERS has 'dns.google'"):
        TxtLookup(["dns.google"])
    with pytest.raises(ConfigError):
        parse_servers(["127.0.0.1:70000"])
