"""Readers' answers: recorded once, applied by one rule, never re-activating anybody."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from conftest import REPO, Cli

from digestcli import subscribers
from digestcli.db import opened
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


def test_subscribers_show_says_what_answer_made_the_state(cli: Cli, workspace: Path) -> None:
    assert cli("subscribers", "add", "ann@example.org", "--name", "Ann").exit_code == 0
    assert cli("subscribers", "add", "ann@example.org", "--list", "weekly").exit_code == 0
    with opened(workspace / ".digest" / "digest.db") as db:
        record(
            db,
            [
                Event(
                    "serve",
                    "unsubscribe",
                    "ann@example.org",
                    "weekly",
                    at="2026-11-30T08:00:00+00:00",
                )
            ],
        )
    shown = cli("subscribers", "show", "ann@example.org")
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.splitlines() == [
        "ann@example.org  Ann  [active]",
        "lists: default, weekly (left)",
        "last answer: unsubscribe from weekly via serve at 2026-11-30T08:00:00+00:00",
    ]
    data = json.loads(cli("subscribers", "show", "ann@example.org", "--json").stdout)
    assert data["lists_left"] == ["weekly"]
    assert data["last_event"]["kind"] == "unsubscribe"
    missing = cli("subscribers", "show", "nobody@example.org")
    assert missing.exit_code == 1 and "not a subscriber" in missing.stderr


def test_the_send_summary_counts_who_is_skipped_and_why(cli: Cli, workspace: Path) -> None:
    shutil.copytree(REPO / "templates", workspace / "templates")
    shutil.copytree(REPO / "drafts", workspace / "drafts", dirs_exist_ok=True)
    for i in range(4):
        assert cli("subscribers", "add", f"r{i}@example.org").exit_code == 0
    with opened(workspace / ".digest" / "digest.db") as db:
        record(
            db,
            [
                Event("postmark", "bounce", "r0@example.org", source_id="1"),
                Event("serve", "unsubscribe", "r1@example.org", "default"),
            ],
        )
    sent = cli("send", "--yes", "--dry-run", env={"DIGEST_SECRET": "s"})
    assert sent.exit_code == 0, sent.output
    assert "Recipients: 2\n" in sent.stderr
    assert "Skipped:    2 list members (1 bounced, 1 left the list)" in sent.stderr
