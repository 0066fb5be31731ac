"""Readers' answers: recorded once, applied by one rule, never re-activating anybody."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from digestcli import subscribers
from digestcli.events import Event, after, last_for, record
from digestcli.importer import import_csv
from fakes import store


@pytest.fixture
def db(tmp_path: Path) -> sqlite3.Connection:
    return store(tmp_path / "digest.db", 5)


def state(db: sqlite3.Connection, email: str) -> str:
    found = subscribers.get(db, email)
    assert found is not None
    return found.state


def test_a_replayed_event_is_applied_once(db: sqlite3.Connection) -> None:
    bounce = Event("postmark", "bounce", "user1@example.org", source_id="pm-1")
    first = record(db, [bounce])
    again = record(db, [bounce, bounce])
    assert (first.recorded, first.changes["bounced"]) == (1, 1)
    assert (again.recorded, again.duplicates) == (0, 2)
    assert state(db, "user1@example.org") == "bounced"
    assert len(after(db, 0)) == 1


def test_an_unsubscribe_from_a_list_stops_sends_to_that_list_only(db: sqlite3.Connection) -> None:
    subscribers.add(db, "user2@example.org", list_name="weekly")
    record(db, [Event("serve", "unsubscribe", "user2@example.org", "default")])
    active = [r.email for r in subscribers.active_recipients(db, "default")]
    assert "user2@example.org" not in active and len(active) == 4
    assert [r.email for r in subscribers.active_recipients(db, "weekly")] == ["user2@example.org"]
    assert subscribers.count_subscribers(db, list_name="default", state="active") == 4
    assert state(db, "user2@example.org") == "active"


def test_provider_unsubscribes_and_complaints_cover_every_list(db: sqlite3.Connection) -> None:
    changed = record(
        db,
        [
            Event("sendgrid", "unsubscribe", "user0@example.org", source_id="a"),
            Event("sendgrid", "complaint", "user3@example.org", source_id="b"),
        ],
    )
    assert changed.changes == {"unsubscribed": 1, "bounced": 0, "complained": 1}
    assert state(db, "user0@example.org") == "unsubscribed"
    assert state(db, "user3@example.org") == "complained"
    last = last_for(db, "user3@example.org")
    assert last is not None and (last.source, last.kind) == ("sendgrid", "complaint")


def test_soft_bounces_in_a_row_bounce_and_a_delivery_resets_the_count(
    db: sqlite3.Connection,
) -> None:
    def soft(n: int) -> Event:
        return Event("mailgun", "soft_bounce", "user4@example.org", source_id=f"s{n}")

    record(db, [soft(1), soft(2)], soft_limit=3)
    record(db, [Event("mailgun", "delivery", "user4@example.org", source_id="d")], soft_limit=3)
    record(db, [soft(3), soft(4)], soft_limit=3)
    assert state(db, "user4@example.org") == "active"
    record(db, [soft(5)], soft_limit=3)
    assert state(db, "user4@example.org") == "bounced"


def test_a_complaint_is_never_softened_and_nobody_goes_back_to_active(
    db: sqlite3.Connection,
) -> None:
    record(db, [Event("postmark", "complaint", "user1@example.org", source_id="c")])
    record(db, [Event("postmark", "bounce", "user1@example.org", source_id="b")])
    record(db, [Event("serve", "unsubscribe", "user1@example.org")])
    assert state(db, "user1@example.org") == "complained"


def test_an_import_after_a_suppression_does_not_activate_the_address(
    db: sqlite3.Connection, tmp_path: Path
) -> None:
    # The provider knew the address before the store did.
    record(db, [Event("resend", "bounce", "new@example.org", source_id="r1")])
    csv = tmp_path / "readers.csv"
    csv.write_text("email,name\nnew@example.org,New\nuser0@example.org,Zero\n", encoding="utf-8")
    import_csv(db, csv)
    assert state(db, "new@example.org") == "bounced"
    assert "new@example.org" not in [r.email for r in subscribers.active_recipients(db, "default")]
    # Nor an import onto the list somebody left.
    record(db, [Event("serve", "unsubscribe", "user0@example.org", "default")])
    import_csv(db, csv)
    assert "user0@example.org" not in [
        r.email for r in subscribers.active_recipients(db, "default")
    ]
