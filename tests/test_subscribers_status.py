"""The one table of subscriber status changes (models.STATUS_CHANGES) and the paths using it."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest

from dispatch.jobs import signup as signup_jobs
from dispatch.jobs import unsubscribe as web_jobs
from dispatch.models import (
    STATUS_CHANGES,
    StatusActor,
    SubscriberStatus,
    status_change_allowed,
)
from dispatch.store import signups as web_store
from dispatch.store import subscribers as subs
from dispatch.store import utcnow

S = SubscriberStatus


def test_no_click_brings_bounced_or_complained_back_and_imports_never_activate():
    for old in (S.BOUNCED, S.COMPLAINED):
        for actor in StatusActor:
            allowed = status_change_allowed(actor, old, S.ACTIVE)
            assert allowed == (actor is StatusActor.CONFIRMATION), (actor, old)
    assert not any(new == S.ACTIVE for _, new in STATUS_CHANGES[StatusActor.IMPORT])
    assert not any(new == S.ACTIVE for _, new in STATUS_CHANGES[StatusActor.EDITOR])
    # Nobody may forget a bounce or complaint by unsubscribing them.
    for actor in (StatusActor.READER, StatusActor.EDITOR, StatusActor.IMPORT):
        assert not status_change_allowed(actor, S.BOUNCED, S.UNSUBSCRIBED)
        assert not status_change_allowed(actor, S.COMPLAINED, S.UNSUBSCRIBED)


@pytest.mark.parametrize("status", ["bounced", "complained"])
def test_cli_unsubscribe_keeps_a_bounce_and_the_resubscribe_button_cannot_undo_it(
    run_cli, db, tmp_path, status
):
    (tmp_path / "l.csv").write_text("ana@example.org,Ana\n", encoding="utf-8")
    assert run_cli("subscribers", "import", str(tmp_path / "l.csv")).exit_code == 0
    subs.set_status(db, "ana@example.org", S(status))  # arranged: a bounce or complaint came in
    result = run_cli("subscribers", "unsubscribe", "ana@example.org")
    assert result.exit_code == 0, result.output
    assert f"stays {status}" in result.output
    person = subs.get_subscriber(db, "ana@example.org")
    assert person is not None and person.status == S(status)
    assert web_jobs.resubscribe(db, person.unsub_token) is not None
    after = subs.get_subscriber(db, "ana@example.org")
    assert after is not None and after.status == S(status)


def test_unsubscribed_reader_may_resubscribe_by_link(run_cli, db, tmp_path):
    (tmp_path / "l.csv").write_text("bo@example.org,Bo\n", encoding="utf-8")
    run_cli("subscribers", "import", str(tmp_path / "l.csv"))
    assert run_cli("subscribers", "unsubscribe", "bo@example.org").exit_code == 0
    person = subs.get_subscriber(db, "bo@example.org")
    assert person is not None and person.status == S.UNSUBSCRIBED
    back = web_jobs.resubscribe(db, person.unsub_token)
    assert back is not None and back.status == S.ACTIVE


def test_a_bounced_reader_comes_back_only_through_a_used_confirmation(run_cli, db, tmp_path):
    (tmp_path / "l.csv").write_text("cy@example.org,Cy\n", encoding="utf-8")
    run_cli("subscribers", "import", str(tmp_path / "l.csv"))
    subs.set_status(db, "cy@example.org", S.BOUNCED)
    token_hash = hashlib.sha256(b"tok").hexdigest()
    web_store.add_confirmation(db, token_hash, "cy@example.org", "Cy", utcnow() + timedelta(1))
    outcome = web_store.use_confirmation(
        db, token_hash, utcnow(), signup_jobs.REACTIVATED_BY_CONFIRMATION
    )
    assert outcome == "activated"
    person = subs.get_subscriber(db, "cy@example.org")
    assert person is not None and person.status == S.ACTIVE


def test_change_status_refuses_what_the_table_does_not_list(run_cli, db, tmp_path):
    (tmp_path / "l.csv").write_text("di@example.org,Di\n", encoding="utf-8")
    run_cli("subscribers", "import", str(tmp_path / "l.csv"))
    person, changed = subs.change_status(db, StatusActor.BOUNCE, S.ACTIVE, "di@example.org")
    assert not changed and person is not None and person.status == S.ACTIVE
    person, changed = subs.change_status(db, StatusActor.COMPLAINT, S.COMPLAINED, "di@example.org")
    assert changed and person is not None and person.status == S.COMPLAINED
    person, changed = subs.change_status(db, StatusActor.READER, S.ACTIVE, "di@example.org")
    assert not changed and person is not None and person.status == S.COMPLAINED
