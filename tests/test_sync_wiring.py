"""`digest sync` brings home every kind of answer: uncertain sends settled, a remote serve read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from digestcli import journal, subscribers
from digestcli.db import opened
from digestcli.events import Event, record
from digestcli.sync import sync
from digestcli.tokens import events_key
from digestcli.workspace import Workspace
from fakes import store
from harness.workspaces import copy_workspace

SECRET = "wiring-secret"
ENV = {"DIGEST_POSTMARK_TOKEN": "pm-token", "DIGEST_SECRET": SECRET}


def workspace(tmp_path: Path, *, serve: bool = False) -> Path:
    """A Postmark workspace (answered by an httpx.MockTransport), maybe with a remote serve."""
    config = (Path(__file__).resolve().parents[1] / "digest.toml").read_text(encoding="utf-8")
    config = config.replace(
        '[transport]\nkind = "outbox"',
        '[transport]\nkind = "postmark"\nbase_url = "https://api.postmark.test"',
    )
    if serve:
        config += '\n[serve]\nurl = "https://news.example.org"\n'
    root = copy_workspace(tmp_path / "ws", config=config)
    store(root / ".digest" / "digest.db", 6).close()
    return root


def postmark(found: set[str]) -> httpx.MockTransport:
    """Postmark with empty suppression lists whose message search knows `found`."""

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/suppressions/dump"):
            return httpx.Response(200, json={"Suppressions": []})
        if path == "/bounces":
            return httpx.Response(200, json={"TotalCount": 0, "Bounces": []})
        if path == "/messages/outbound":
            email = request.url.params["recipient"]
            tag = request.url.params["tag"]
            messages = [{"MessageID": f"pm-{email}", "Tag": tag}] if email in found else []
            return httpx.Response(200, json={"TotalCount": len(messages), "Messages": messages})
        return httpx.Response(404, json={"ErrorCode": 404, "Message": "Not found"})

    return httpx.MockTransport(handler)


def test_sync_settles_uncertain_sends_by_the_providers_record(tmp_path: Path) -> None:
    root = workspace(tmp_path)
    with opened(root / ".digest" / "digest.db") as db:
        campaign = journal.create_campaign(
            db,
            key="d.md:default",
            draft="d.md",
            content_hash="h",
            list_name="default",
            transport="postmark",
        )
        rows = journal.claim(db, campaign.id, 1, 3)
        journal.set_state(db, campaign.id, rows, "uncertain", "the connection dropped")
        db.execute("UPDATE deliveries SET updated_at = '2026-01-01T00:00:00+00:00'")
    report = sync(Workspace(root), ENV, http=postmark({"user0@example.org"}))
    assert report.ok, report.as_dict()
    assert report.as_dict()["reconciled"] == {"sent": 1, "pending": 2, "uncertain": 0}
    with opened(root / ".digest" / "digest.db") as db:
        counts = journal.counts(db, campaign.id)
        ids = db.execute("SELECT provider_id FROM deliveries WHERE state = 'sent'").fetchall()
    assert (counts.sent, counts.pending, counts.uncertain) == (1, 5, 0)
    assert ids == [("pm-user0@example.org",)]


def test_sync_reads_a_remote_serves_events_once(tmp_path: Path) -> None:
    root = workspace(tmp_path, serve=True)
    key = events_key(SECRET.encode())
    served: list[dict[str, Any]] = [
        {
            "id": 1,
            "source": "serve",
            "kind": "unsubscribe",
            "email": "user1@example.org",
            "list": "default",
            "at": "2026-11-30T08:00:00+00:00",
            "detail": "",
            "source_id": "t1",
        },
        {
            "id": 2,
            "source": "mailgun",
            "kind": "complaint",
            "email": "user2@example.org",
            "list": None,
            "at": "2026-11-30T08:01:00+00:00",
            "detail": "",
            "source_id": "m7",
        },
    ]
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers.get("authorization") != f"Bearer {key}":
            return httpx.Response(401)
        after = int(request.url.params["after"])
        asked.append(str(after))
        page = [event for event in served if event["id"] > after][:1]  # one a page
        cursor = page[-1]["id"] if page else after
        return httpx.Response(200, json={"events": page, "cursor": cursor, "more": bool(page)})

    serve = httpx.MockTransport(handler)
    first = sync(Workspace(root), ENV, http=postmark(set()), serve_http=serve)
    assert first.ok, first.as_dict()
    (remote,) = [s for s in first.as_dict()["sources"] if s["source"] == "serve events"]
    assert (remote["fetched"], remote["applied"]) == (2, 2)
    assert first.changes == {"unsubscribed": 1, "bounced": 0, "complained": 1}
    again = sync(Workspace(root), ENV, http=postmark(set()), serve_http=serve)
    assert asked[-1] == "2"  # the second sync starts after the last event read
    (remote,) = [s for s in again.as_dict()["sources"] if s["source"] == "serve events"]
    assert remote["applied"] == 0
    with opened(root / ".digest" / "digest.db") as db:
        assert subscribers.get(db, "user2@example.org").state == "complained"  # type: ignore[union-attr]
        # An event this store recorded itself (a serve on this workspace) is a duplicate.
        own = record(
            db, [Event("serve", "unsubscribe", "user1@example.org", "default", source_id="t1")]
        )
    assert own.duplicates == 1


def test_a_remote_serve_with_another_secret_is_one_failing_source(tmp_path: Path) -> None:
    root = workspace(tmp_path, serve=True)
    refuse = httpx.MockTransport(lambda request: httpx.Response(401))
    report = sync(Workspace(root), ENV, http=postmark(set()), serve_http=refuse)
    sources = {s["source"]: s["error"] for s in report.as_dict()["sources"]}
    assert "another DIGEST_SECRET" in str(sources["serve events"])
    assert not report.ok
    assert json.dumps(report.as_dict())  # still a whole report
