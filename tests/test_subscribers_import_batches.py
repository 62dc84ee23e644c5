"""An import's batch does its writes set by set (one statement per kind of change, not one per
row); what each kind of row does to the store, and how it is counted, stays exactly the same."""

from __future__ import annotations

import json
from typing import Any

from dispatch.models import SubscriberStatus
from dispatch.store import subscribers as store
from dispatch.subscribers import CsvRow

ACT, UNS, BOU, PEN = (
    SubscriberStatus.ACTIVE,
    SubscriberStatus.UNSUBSCRIBED,
    SubscriberStatus.BOUNCED,
    SubscriberStatus.PENDING,
)
COLUMNS = (
    "email, name, first_name, tags, status, language, consent_at, consent_ip, consent_source,"
    " source, unsub_token, updated_at, status_changed_at"
)


def _table(db: Any) -> dict[str, dict[str, Any]]:
    rows = db.execute(f"SELECT {COLUMNS} FROM subscribers ORDER BY id").fetchall()
    return {r["email"]: dict(zip(r.keys(), r, strict=True)) for r in rows}


def _seed(db: Any) -> None:
    seed = [
        CsvRow(1, "ann@example.org", "Ann Lee", ("x",), "Ann", "en"),
        CsvRow(2, "bob@example.org", "Bob"),
        CsvRow(3, "cy@example.org", "Cy"),
        CsvRow(4, "dee@example.org", "D"),
        CsvRow(5, "eve@example.org", "Eve", status=PEN),
        CsvRow(6, "fay@example.org", "Fay"),
        CsvRow(7, "gus@example.org", "Gus", ("y",)),
        CsvRow(8, "hal@example.org", "Hal", consent_at="2024-01-01 00:00:00", consent_ip="1.2.3.4"),
    ]
    counts = store.import_subscribers(db, seed, source="seed")
    assert counts.added == 8
    store.set_status(db, "cy@example.org", UNS)
    store.forget(db, "fay@example.org")
    # The stored times are to the second or finer: make them old, so a touched row shows.
    with db.transaction() as conn:
        conn.execute(
            "UPDATE subscribers SET updated_at = '2020-01-01 00:00:00',"
            " status_changed_at = '2020-01-01 00:00:00'"
        )


FILE = [
    CsvRow(1, "new1@example.org", "New One", ("t1", "t2"), consent_source="form"),  # added
    CsvRow(2, "ann@example.org", "Ann Smith"),  # new name, no first name: updated, "Ann" goes
    CsvRow(3, "bob@example.org", "Bob"),  # unchanged
    CsvRow(4, "cy@example.org", "Cy Again"),  # unsubscribed: suppressed
    CsvRow(5, "dee@example.org", "Dee", status=UNS),  # status and name: updated
    CsvRow(6, "fay@example.org", "Fay"),  # forgotten: suppressed, not added back
    CsvRow(7, "new2@example.org", "New Two", status=UNS),  # added as unsubscribed
    CsvRow(8, "eve@example.org", "", status=ACT),  # an import never activates: unchanged
    CsvRow(9, "gus@example.org", "Gus", status=BOU),  # status only: updated
    CsvRow(10, "hal@example.org", "", language="de"),  # language only: updated, consent kept
]


def test_every_kind_of_row_in_mixed_batches_is_counted_and_stored_as_one_by_one(db):
    _seed(db)
    before = _table(db)

    dry = store.import_subscribers(db, FILE, source="import:list.csv", dry_run=True, batch_size=4)
    assert _table(db) == before  # a dry run counts and writes nothing

    counts = store.import_subscribers(db, FILE, source="import:list.csv", batch_size=4)
    expected = (2, 4, 2, 2)  # added, updated, unchanged, suppressed
    assert (counts.added, counts.updated, counts.unchanged, counts.suppressed) == expected
    assert (dry.added, dry.updated, dry.unchanged, dry.suppressed) == expected

    after = _table(db)
    assert set(after) == set(before) | {"new1@example.org", "new2@example.org"}
    for email in ("bob@example.org", "cy@example.org", "eve@example.org"):
        assert after[email] == before[email], email  # not touched at all
    assert not any(r["email"] and "fay" in r["email"] for r in after.values())

    new1, new2 = after["new1@example.org"], after["new2@example.org"]
    assert (new1["status"], new1["name"], json.loads(new1["tags"])) == (
        "active",
        "New One",
        ["t1", "t2"],
    )
    assert (new1["source"], new1["consent_source"]) == ("import:list.csv", "form")
    assert new2["status"] == "unsubscribed"
    assert (
        new1["unsub_token"] and new2["unsub_token"] and new1["unsub_token"] != new2["unsub_token"]
    )

    ann = after["ann@example.org"]
    assert (ann["name"], ann["first_name"], json.loads(ann["tags"]), ann["language"]) == (
        "Ann Smith",
        "",
        ["x"],
        "en",
    )
    assert ann["status"] == "active" and ann["status_changed_at"] == "2020-01-01 00:00:00"
    for email in ("ann@example.org", "dee@example.org", "gus@example.org", "hal@example.org"):
        assert after[email]["updated_at"] > "2020-01-01 00:00:00", email
    assert after["gus@example.org"]["status_changed_at"] > "2020-01-01 00:00:00"

    dee = after["dee@example.org"]
    assert (dee["status"], dee["name"]) == ("unsubscribed", "Dee")
    assert dee["status_changed_at"] > "2020-01-01 00:00:00"
    gus = after["gus@example.org"]
    assert (gus["status"], gus["name"], json.loads(gus["tags"])) == ("bounced", "Gus", ["y"])
    hal = after["hal@example.org"]
    assert (hal["language"], hal["consent_at"], hal["consent_ip"], hal["name"]) == (
        "de",
        "2024-01-01 00:00:00",
        "1.2.3.4",
        "Hal",
    )
    for email in ("ann@example.org", "dee@example.org", "gus@example.org", "hal@example.org"):
        assert after[email]["unsub_token"] == before[email]["unsub_token"]
        assert after[email]["source"] == "seed"

    again = store.import_subscribers(db, FILE, source="import:list.csv", batch_size=3)
    assert (again.added, again.updated, again.unchanged, again.suppressed) == (0, 0, 5, 5)
    assert _table(db) == after


def test_a_batch_of_only_new_rows_and_one_of_only_known_rows(db):
    rows = [CsvRow(i, f"r{i}@example.org", f"Reader {i}", (f"t{i % 3}",)) for i in range(1, 1201)]
    first = store.import_subscribers(db, rows, source="big")
    assert (first.added, first.updated, first.unchanged) == (1200, 0, 0)
    stored = _table(db)
    assert len(stored) == 1200 and len({r["unsub_token"] for r in stored.values()}) == 1200
    ids = [r["id"] for r in db.execute("SELECT id FROM subscribers ORDER BY id").fetchall()]
    emails = [r["email"] for r in db.execute("SELECT email FROM subscribers ORDER BY id")]
    assert emails == [r.email for r in rows] and len(set(ids)) == 1200  # file order kept

    renamed = [CsvRow(r.line, r.email, r.name + "!", r.tags) for r in rows]
    second = store.import_subscribers(db, renamed, source="big")
    assert (second.added, second.updated, second.unchanged) == (0, 1200, 0)
    assert all(r["name"].endswith("!") for r in _table(db).values())
