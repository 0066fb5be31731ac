"""Claiming and recording batches touch exactly their own rows, contiguous or not."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from digestcli import journal
from digestcli.journal import Campaign, Delivery
from digestcli.models import Result
from fakes import store


def campaign(db: sqlite3.Connection) -> Campaign:
    return journal.create_campaign(
        db, key="k", draft="issue.md", content_hash="h", list_name="default", transport="memory"
    )


def states(db: sqlite3.Connection, cid: int) -> dict[int, tuple[str, int | None, str | None]]:
    rows = db.execute(
        "SELECT seq, state, batch, provider_id FROM deliveries WHERE campaign_id = ?", (cid,)
    )
    return {int(seq): (str(state), batch, pid) for seq, state, batch, pid in rows}


def test_claim_skips_rows_no_longer_pending_and_reports_them_as_before(tmp_path: Path) -> None:
    db = store(tmp_path / "digest.db", 12)
    camp = campaign(db)
    first = journal.claim(db, camp.id, 1, 3)
    journal.set_state(db, camp.id, [first[1]], "pending", None)  # seq 2 back to pending
    journal.record(db, camp.id, [first[0], first[2]], [Result("a", ok=True)] * 2)
    second = journal.claim(db, camp.id, 2, 3)  # seq 2, 4, 5: not one range
    assert [d.seq for d in second] == [2, 4, 5]
    assert [(d.batch, d.attempts) for d in second] == [(1, 1), (None, 0), (None, 0)]
    found = states(db, camp.id)
    assert {seq for seq, (state, _, _) in found.items() if state == "in_flight"} == {2, 4, 5}
    assert found[3] == ("sent", 1, None)
    assert found[6] == ("pending", None, None)


def test_record_writes_each_rows_own_outcome_whatever_the_order(tmp_path: Path) -> None:
    db = store(tmp_path / "digest.db", 10)
    camp = campaign(db)
    rows = journal.claim(db, camp.id, 1, 10)
    shuffled: list[Delivery] = [rows[3], rows[1], rows[2], rows[0]]  # seqs 4, 2, 3, 1
    journal.record(db, camp.id, shuffled, [Result("x", ok=True, provider_id="one")] * 4)
    mixed = [Result("x", ok=True, provider_id="p5"), Result("x", ok=True, provider_id="p6")]
    journal.record(db, camp.id, rows[4:6], mixed)
    journal.record(db, camp.id, [rows[6], rows[8]], [Result("x", ok=True, provider_id="gap")] * 2)
    journal.record(db, camp.id, [rows[7]], [Result("x", ok=False, error="no", permanent=True)])
    found = states(db, camp.id)
    assert [found[seq] for seq in range(1, 11)] == [
        ("sent", 1, "one"),
        ("sent", 1, "one"),
        ("sent", 1, "one"),
        ("sent", 1, "one"),
        ("sent", 1, "p5"),
        ("sent", 1, "p6"),
        ("sent", 1, "gap"),
        ("failed", 1, None),
        ("sent", 1, "gap"),
        ("in_flight", 1, None),
    ]


def test_a_batch_sent_under_ids_of_its_own_keeps_each_rows_id(tmp_path: Path) -> None:
    db = store(tmp_path / "digest.db", 6)
    camp = campaign(db)
    rows = journal.claim(db, camp.id, 1, 6)
    ids = ['é "quoted" \\ id', None, "[1]", "", "0", "😀"]
    order = [2, 0, 5, 1, 4, 3]  # answers need not come in seq order
    journal.record(
        db,
        camp.id,
        [rows[i] for i in order],
        [Result("x", ok=True, provider_id=ids[i]) for i in order],
    )
    found = states(db, camp.id)
    assert [found[seq] for seq in range(1, 7)] == [("sent", 1, pid) for pid in ids]
