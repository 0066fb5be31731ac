"""`digest sync` reads each provider's suppression lists from a local fake into the store."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from digestcli.db import opened
from digestcli.importer import import_csv
from digestcli.sync import sync
from digestcli.workspace import Workspace
from fakes import FakeClock
from harness.providers import json_reply
from harness.suppressions import (
    MailgunSuppressions,
    PostmarkSuppressions,
    ResendSuppressions,
    SendGridSuppressions,
    sync_workspace,
)

T0 = dt.datetime(2025, 12, 1, 8, 0, tzinfo=dt.UTC)


def states(root: Path) -> dict[str, str]:
    with opened(root / ".digest" / "digest.db") as db:
        return {str(e): str(s) for e, s in db.execute("SELECT email, state FROM subscribers")}


def report_rows(report: object) -> dict[str, tuple[int, int, str | None]]:
    data = report.as_dict()  # type: ignore[attr-defined]
    return {s["source"]: (s["fetched"], s["applied"], s["error"]) for s in data["sources"]}


def test_sendgrid_1200_bounces_come_in_three_pages_and_a_second_sync_fetches_only_new(
    tmp_path: Path,
) -> None:
    with SendGridSuppressions() as fake:
        for i in range(1200):
            fake.add(
                "bounces", f"user{i}@example.org", 1_764_000_000 + i, reason="550", status="5.1.1"
            )
        fake.add("spam_reports", "user1500@example.org", 1_764_000_100, ip="10.0.0.1")
        fake.add("unsubscribes", "user1501@example.org", 1_764_000_200)
        fake.add("blocks", "user1502@example.org", 1_764_000_300, reason="blocked", status="4.0.0")
        root = sync_workspace(tmp_path / "ws", fake, subscribers=1600)
        report = sync(Workspace(root), fake.env)

        bounce_pages = [p for p in fake.paths() if p.startswith("/v3/suppression/bounces")]
        assert [("offset=0" in p, "offset=500" in p, "offset=1000" in p) for p in bounce_pages] == [
            (True, False, False),
            (False, True, False),
            (False, False, True),
        ]
        assert all("limit=500" in p for p in bounce_pages)
        assert report_rows(report)["sendgrid bounces"] == (1200, 1200, None)
        assert report.changes == {"unsubscribed": 1, "bounced": 1200, "complained": 1}
        assert fake.violations == []
        seen = states(root)
        assert seen["user0@example.org"] == "bounced"
        assert seen["user1500@example.org"] == "complained"
        assert seen["user1501@example.org"] == "unsubscribed"
        # One block is a soft bounce: below the limit, still active.
        assert seen["user1502@example.org"] == "active"

        fake.add("bounces", "user1599@example.org", 1_764_100_000, reason="550", status="5.1.1")
        fake.requests.clear()
        again = sync(Workspace(root), fake.env)
        rows = report_rows(again)
        # From the mark on: the newest old entry (the boundary, deduplicated) and the new one.
        assert rows["sendgrid bounces"] == (2, 1, None)
        assert "start_time=1764001199" in fake.paths()[0]
        assert again.changes["bounced"] == 1
        assert rows["sendgrid spam_reports"] == (1, 0, None)


def test_a_429_mid_paging_is_waited_out_on_the_providers_reset_time(tmp_path: Path) -> None:
    clock = FakeClock()
    with SendGridSuppressions() as fake:
        for i in range(600):
            fake.add("bounces", f"r{i}@example.org", 1_764_000_000 + i)
        root = sync_workspace(tmp_path / "ws", fake)
        reset = str(int(clock.now) + 7)
        fake.fault(
            2,
            json_reply(
                429,
                {"errors": [{"message": "too many requests"}]},
                {
                    "X-RateLimit-Limit": "600",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": reset,
                },
            ),
        )
        report = sync(Workspace(root), fake.env, sleep=clock.sleep, clock=clock)
        assert clock.sleeps == [7.0]
        assert report_rows(report)["sendgrid bounces"] == (600, 600, None)
        assert report.ok


def test_a_failing_list_is_reported_and_the_others_are_still_read(tmp_path: Path) -> None:
    clock = FakeClock()
    with SendGridSuppressions() as fake:
        fake.add("bounces", "gone@example.org", 1_764_000_000)
        fake.add("unsubscribes", "left@example.org", 1_764_000_000)
        fake.break_list("spam_reports")
        root = sync_workspace(tmp_path / "ws", fake)
        report = sync(Workspace(root), fake.env, sleep=clock.sleep, clock=clock)
        rows = report_rows(report)
        assert not report.ok
        error = rows["sendgrid spam_reports"][2]
        assert error is not None and "HTTP 500" in error and "digest sync" in error
        assert rows["sendgrid bounces"] == (1, 1, None)
        assert rows["sendgrid unsubscribes"] == (1, 1, None)
        assert states(root) == {"gone@example.org": "bounced", "left@example.org": "unsubscribed"}
        # Bounded: the 500 was retried a few times, waiting a little longer each time.
        assert clock.sleeps == [1.0, 2.0, 4.0, 8.0, 16.0]


def test_mailgun_lists_follow_paging_next_to_an_empty_page_and_skip_what_was_read(
    tmp_path: Path,
) -> None:
    with MailgunSuppressions() as fake:
        for i in range(2100):
            fake.add(
                "bounces",
                f"b{i:05}@example.org",
                T0 + dt.timedelta(seconds=i),
                code="550",
                error="No such mailbox",
            )
        fake.add("complaints", "c@example.org", T0)
        fake.add("unsubscribes", "u@example.org", T0, tags=["*"])
        root = sync_workspace(tmp_path / "ws", fake)
        report = sync(Workspace(root), fake.env)
        bounce_pages = [p for p in fake.paths() if "/bounces" in p]
        # 1,000 + 1,000 + 100, then the empty page that ends it.
        assert len(bounce_pages) == 4
        assert "limit=1000" in bounce_pages[0] and "page=next" in bounce_pages[1]
        assert report_rows(report) == {
            "mailgun bounces": (2100, 2100, None),
            "mailgun complaints": (1, 1, None),
            "mailgun unsubscribes": (1, 1, None),
        }
        assert report.changes == {"unsubscribed": 1, "bounced": 2100, "complained": 1}
        assert fake.violations == []

        fake.add("bounces", "new@example.org", T0 + dt.timedelta(days=1), code="550", error="gone")
        again = sync(Workspace(root), fake.env)
        # No time filter at Mailgun: every page is read again; entries older than the mark
        # are skipped, the boundary one is deduplicated, only the new one is applied.
        assert report_rows(again)["mailgun bounces"] == (2, 1, None)
        assert states(root)["new@example.org"] == "bounced"


def test_resend_suppressions_page_by_cursor_until_has_more_is_false(tmp_path: Path) -> None:
    with ResendSuppressions() as fake:
        origins = ("bounce", "complaint", "manual")
        for i in range(250):
            fake.add(f"s{i}@example.org", origins[i % 3], T0 + dt.timedelta(minutes=i))
        root = sync_workspace(tmp_path / "ws", fake)
        report = sync(Workspace(root), fake.env)
        paths = fake.paths()
        assert len(paths) == 3
        assert "after=" not in paths[0] and all("after=" in p for p in paths[1:])
        assert report_rows(report) == {"resend suppressions": (250, 250, None)}
        assert report.changes == {"unsubscribed": 83, "bounced": 84, "complained": 83}
        assert fake.violations == []

        fake.add("late@example.org", "bounce", T0 + dt.timedelta(days=2))
        again = sync(Workspace(root), fake.env)
        # The newest old entry (the mark's boundary) comes again and is deduplicated.
        assert report_rows(again) == {"resend suppressions": (2, 1, None)}


def test_postmark_dump_and_bounces_are_read_and_then_only_from_the_last_day(
    tmp_path: Path,
) -> None:
    with PostmarkSuppressions() as fake:
        fake.suppress("hard@example.org", "HardBounce", T0)
        fake.suppress("spam@example.org", "SpamComplaint", T0)
        fake.suppress("left@example.org", "ManualSuppression", T0, origin="Recipient")
        for i in range(700):
            fake.bounce(
                f"pb{i}@example.org", "HardBounce", T0 - dt.timedelta(days=30), inactive=True
            )
        fake.bounce("soft@example.org", "SoftBounce", T0)
        fake.bounce("auto@example.org", "AutoResponder", T0)
        root = sync_workspace(tmp_path / "ws", fake)
        report = sync(Workspace(root), fake.env)
        assert report_rows(report) == {
            "postmark suppressions": (3, 3, None),
            "postmark bounces": (701, 701, None),
        }
        bounce_pages = [p for p in fake.paths() if p.startswith("/bounces")]
        assert len(bounce_pages) == 2 and "offset=500" in bounce_pages[1]
        seen = states(root)
        assert (seen["hard@example.org"], seen["spam@example.org"], seen["left@example.org"]) == (
            "bounced",
            "complained",
            "unsubscribed",
        )
        assert "auto@example.org" not in seen

        fake.requests.clear()
        fake.bounce("later@example.org", "HardBounce", T0 + dt.timedelta(days=3), inactive=True)
        again = sync(Workspace(root), fake.env)
        assert all("fromdate=" in p for p in fake.paths())
        assert report_rows(again)["postmark bounces"][1] == 1
        assert states(root)["later@example.org"] == "bounced"


def test_after_sync_an_import_of_the_suppressed_addresses_does_not_reactivate_them(
    tmp_path: Path,
) -> None:
    with ResendSuppressions() as fake:
        fake.add("user1@example.org", "bounce", T0)
        fake.add("user2@example.org", "complaint", T0)
        fake.add("stranger@example.org", "manual", T0)
        root = sync_workspace(tmp_path / "ws", fake, subscribers=3)
        sync(Workspace(root), fake.env)
    csv = tmp_path / "again.csv"
    csv.write_text(
        "email\nuser0@example.org\nuser1@example.org\nuser2@example.org\nstranger@example.org\n",
        encoding="utf-8",
    )
    with opened(root / ".digest" / "digest.db") as db:
        import_csv(db, csv)
    seen = states(root)
    assert seen == {
        "user0@example.org": "active",
        "user1@example.org": "bounced",
        "user2@example.org": "complained",
        "stranger@example.org": "unsubscribed",
    }


def test_digest_sync_json_reports_sources_changes_and_uncertain_rows(
    tmp_path: Path, clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from digestcli.cli import app

    with MailgunSuppressions() as fake:
        fake.add("complaints", "user0@example.org", T0)
        fake.break_list("unsubscribes", 400)
        root = sync_workspace(tmp_path / "ws", fake, subscribers=2)
        monkeypatch.chdir(root)
        result = CliRunner().invoke(app, ["sync", "--json"], env=fake.env)
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    assert data["changes"] == {"unsubscribed": 0, "bounced": 0, "complained": 1}
    assert data["reconciled"] == {"sent": 0, "pending": 0, "uncertain": 0}
    assert [(s["source"], s["fetched"], s["applied"]) for s in data["sources"]] == [
        ("mailgun bounces", 0, 0),
        ("mailgun complaints", 1, 1),
        ("mailgun unsubscribes", 0, 0),
    ]
    assert [s["error"] is None for s in data["sources"]] == [True, True, False]


def test_digest_sync_with_the_outbox_says_there_is_nothing_to_pull(
    workspace: Path, clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from digestcli.cli import app

    monkeypatch.chdir(workspace)
    result = CliRunner().invoke(app, ["sync"])
    assert result.exit_code == 0, result.output
    assert "nothing to pull from" in result.stderr


def test_sendgrid_group_unsubscribes_come_home_when_the_group_is_configured(
    tmp_path: Path,
) -> None:
    # [unsubscribe] mode = "provider": readers leave through SendGrid's own group link.
    with SendGridSuppressions() as fake:
        for i in (3, 5):
            fake.lists["asm_group:7"].append({"email": f"user{i}@example.org"})
        root = sync_workspace(tmp_path / "ws", fake, subscribers=6, extra="\nasm_group_id = 7")
        first = sync(Workspace(root), fake.env)
        again = sync(Workspace(root), fake.env)
    assert report_rows(first)["sendgrid asm_group"] == (2, 2, None)
    assert report_rows(again)["sendgrid asm_group"] == (2, 0, None)  # re-read, deduplicated
    assert {k: v for k, v in states(root).items() if v != "active"} == {
        "user3@example.org": "unsubscribed",
        "user5@example.org": "unsubscribed",
    }
