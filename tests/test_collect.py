"""`digest collect` and `digest pick`: the week's entries from every feed, then items."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from conftest import Cli
from test_curate_pages import rendered

from digestcli import journal
from digestcli.db import opened
from harness.feeds import ETAG, feed_routes
from harness.web import STALL, WebServer


@pytest.fixture
def site() -> Iterator[WebServer]:
    with WebServer() as server:
        server.routes.update(feed_routes(server.url))
        server.routes["/feeds/stalled"] = STALL
        yield server


def follow(workspace: Path, site: WebServer, *names: str, timeout: float = 5) -> None:
    """digest.toml follows these feeds of the site (slack in the timeout for a busy machine)."""
    urls = ", ".join(f'"{site.url}/feeds/{name}"' for name in names)
    config = workspace / "digest.toml"
    config.write_text(
        config.read_text(encoding="utf-8") + f"\n[feeds]\nurls = [{urls}]\ntimeout = {timeout:g}\n",
        encoding="utf-8",
    )


@pytest.fixture
def draft(cli: Cli) -> Path:
    result = ok(cli("new", "Week 48", "--date", "2026-11-30"))
    return Path(result.stdout.strip())


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    return result


def collected(result: Result, status: int = 0) -> list[dict[str, Any]]:
    assert result.exit_code == status, (result.exit_code, result.stdout, result.stderr)
    entries: list[dict[str, Any]] = json.loads(result.stdout)
    return entries


def titles(entries: list[dict[str, Any]]) -> list[str]:
    return [entry["title"] for entry in entries]


ALL = [
    "RSS newest: chips & tariffs",  # 28 Nov
    "Atom newest",  # 27 Nov
    "JSON newest",  # 26 Nov 07:00 UTC
    "JSON old",  # 22 Nov
    "Atom old",  # 21 Nov
    "RSS old",  # 20 Nov
]


def test_collect_numbers_the_entries_of_rss_atom_and_json_feed_newest_first(
    cli: Cli, workspace: Path, draft: Path, site: WebServer
) -> None:
    follow(workspace, site, "rss", "atom", "json")
    entries = collected(cli("collect", "--json"))
    assert titles(entries) == ALL
    assert [entry["number"] for entry in entries] == [1, 2, 3, 4, 5, 6]
    assert entries[0] == {
        "number": 1,
        "source": "Rising Tide (RSS)",
        "title": "RSS newest: chips & tariffs",
        "link": f"{site.url}/a/rss-1",
        # HTML stripped (the script with it), white space collapsed.
        "summary": "Export rules tighten again.",
        "published": "2026-11-28T10:00:00+00:00",
    }
    assert entries[2]["published"] == "2026-11-26T07:00:00+00:00"
    assert entries[2]["summary"] == "JSON content."
    assert entries[4]["summary"] == "Content, not a summary."
    assert {entry["source"] for entry in entries} == {
        "Rising Tide (RSS)",
        "Atom Weekly",
        "JSON Journal",
    }
    # The entry whose link was javascript: is not offered.
    assert "A link that is not one" not in titles(entries)
    (seen,) = site.requests_to("/feeds/json")
    assert seen.headers["user-agent"].startswith("digest/")


def test_a_broken_feed_is_one_line_and_the_others_still_come(
    cli: Cli, workspace: Path, draft: Path, site: WebServer
) -> None:
    follow(workspace, site, "rss", "broken", "atom", "json")
    result = cli("collect", "--json")
    assert titles(collected(result, status=1)) == ALL
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"warning: feed {site.url}/feeds/broken failed: ")
    assert "is not an RSS, Atom or JSON feed" in line
    listed = json.loads(ok(cli("feeds", "list", "--json")).stdout)
    assert [feed["error"] is not None for feed in listed] == [False, True, False, False]


def test_a_stalled_feed_is_cut_off_at_the_timeout_and_reported(
    cli: Cli, workspace: Path, draft: Path, site: WebServer
) -> None:
    follow(workspace, site, "stalled", "atom", timeout=1)
    result = cli("collect", "--json")
    assert titles(collected(result, status=1)) == ["Atom newest", "Atom old"]
    assert "did not answer within 1 s" in result.stderr


def test_the_second_collect_asks_conditionally_and_keeps_what_a_304_means(
    cli: Cli, workspace: Path, draft: Path, site: WebServer
) -> None:
    follow(workspace, site, "rss")
    first = collected(cli("collect", "--json"))
    second = collected(cli("collect", "--json"))
    assert second == first
    requests = site.requests_to("/feeds/rss")
    assert len(requests) == 2
    assert "if-none-match" not in requests[0].headers
    assert requests[1].headers["if-none-match"] == ETAG
    assert requests[1].headers["if-modified-since"] == "Sat, 28 Nov 2026 10:00:00 GMT"


def test_links_already_in_the_draft_are_not_offered(
    cli: Cli, workspace: Path, draft: Path, site: WebServer
) -> None:
    follow(workspace, site, "rss", "atom", "json")
    ok(cli("add", "Already picked", "--link", f"{site.url}/a/atom-1"))
    entries = collected(cli("collect", "--json"))
    assert titles(entries) == [title for title in ALL if title != "Atom newest"]


def sent_issue(workspace: Path, finished_at: str, link: str) -> None:
    """A sent issue in drafts/ with one item linking to `link`, finished at `finished_at`."""
    name = "2026-11-23-week-47.md"
    (workspace / "drafts" / name).write_text(
        "---\ntitle: Week 47\ndate: 2026-11-23\nnumber: 47\n---\n\nHi.\n\n"
        f"## Sent last week\nlink: {link}\n\nBody.\n",
        encoding="utf-8",
    )
    with opened(workspace / ".digest" / "digest.db") as db:
        campaign = journal.create_campaign(
            db,
            key=journal.campaign_key(name, "default"),
            draft=name,
            content_hash="x",
            list_name="default",
            transport="outbox",
        )
        db.execute("UPDATE campaigns SET finished_at = ? WHERE id = ?", (finished_at, campaign.id))


def test_nothing_older_than_the_last_sent_issue_nor_anything_it_linked(
    cli: Cli, workspace: Path, draft: Path, site: WebServer
) -> None:
    follow(workspace, site, "rss", "atom", "json")
    sent_issue(workspace, "2026-11-23T12:00:00+00:00", f"{site.url}/a/json-1")
    entries = collected(cli("collect", "--json"))
    assert titles(entries) == ["RSS newest: chips & tariffs", "Atom newest"]


def test_since_overrides_the_last_sent_issue(
    cli: Cli, workspace: Path, draft: Path, site: WebServer
) -> None:
    follow(workspace, site, "rss", "atom", "json")
    sent_issue(workspace, "2026-11-29T00:00:00+00:00", "https://example.org/elsewhere")
    assert collected(cli("collect", "--json")) == []
    entries = collected(cli("collect", "--json", "--since", "2026-11-22"))
    assert titles(entries) == ALL[:4]


def test_a_bad_since_is_a_usage_error(cli: Cli, workspace: Path, site: WebServer) -> None:
    follow(workspace, site, "rss")
    result = cli("collect", "--since", "last week")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --since must be a date (YYYY-MM-DD)")


def test_collect_without_feeds_says_how_to_follow_one(cli: Cli, workspace: Path) -> None:
    result = cli("collect")
    assert result.exit_code == 2
    assert "`digest feeds add URL`" in result.stderr


def test_collect_shows_a_table_grouped_by_source(
    cli: Cli, workspace: Path, draft: Path, site: WebServer
) -> None:
    follow(workspace, site, "rss", "atom", "json")
    result = ok(cli("collect", env={"COLUMNS": "120"}))
    lines = result.stdout.splitlines()
    order = [
        next(i for i, line in enumerate(lines) if text in line)
        for text in ("Rising Tide (RSS)", "RSS newest", "RSS old", "Atom Weekly", "Atom newest")
    ]
    assert order == sorted(order)
    rss_old = next(line for line in lines if "RSS old" in line)
    assert "6" in rss_old.split() or "│ 6" in rss_old
    assert "2026-11-20" in rss_old
    assert "6 entries; add some with `digest pick N [N...]`." in result.stderr


def test_pick_adds_the_entries_in_the_order_given(
    cli: Cli, workspace: Path, draft: Path, site: WebServer
) -> None:
    follow(workspace, site, "rss", "atom", "json")
    ok(cli("collect", "--json"))
    ok(cli("pick", "3", "1"))
    items = json.loads(ok(cli("items", "--json")).stdout)
    assert items == [
        {
            "position": 1,
            "title": "JSON newest",
            "body": "JSON content.",
            "link": f"{site.url}/a/json-1",
            "link_label": "JSON Journal",
            "image": None,
        },
        {
            "position": 2,
            "title": "RSS newest: chips & tariffs",
            "body": "Export rules tighten again.",
            "link": f"{site.url}/a/rss-1",
            "link_label": "Rising Tide (RSS)",
            "image": None,
        },
    ]
    # Picked, so the next collect leaves them out.
    entries = collected(cli("collect", "--json"))
    assert titles(entries) == [t for t in ALL if t not in ("JSON newest", ALL[0])]


def test_pick_of_an_unknown_number_changes_nothing(
    cli: Cli, workspace: Path, draft: Path, site: WebServer
) -> None:
    follow(workspace, site, "rss")
    ok(cli("collect", "--json"))
    before = draft.read_bytes()
    result = cli("pick", "1", "9")
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert line == (
        "error: no collected entry numbered 9; the last `digest collect` numbered 1 to 2."
    )
    assert draft.read_bytes() == before
    twice = cli("pick", "2", "1", "2")
    assert (twice.exit_code, twice.stderr) == (
        2,
        "error: 2 given more than once; name each entry once.\n",
    )
    assert draft.read_bytes() == before


def test_pick_before_any_collect(cli: Cli, workspace: Path, draft: Path) -> None:
    result = cli("pick", "1")
    assert result.exit_code == 2
    assert "run `digest collect` first" in result.stderr


def test_hostile_entries_stay_literal_from_pick_to_render(
    cli: Cli, workspace: Path, draft: Path, site: WebServer
) -> None:
    follow(workspace, site, "hostile")
    (entry,) = collected(cli("collect", "--json"))
    assert entry["title"] == "<script>alert(1)</script> {{ 7*7 }} [x](javascript:alert(2))"
    # The description is HTML: its tags are gone (feedparser reads the escaped <a> as a tag
    # too), its words and template syntax stay as they were.
    assert entry["summary"] == "click {% if x %}{{ 7*7 }}{% endif %} %recipient.email% *loud*"
    ok(cli("pick", "1"))
    page, text, tags = rendered(cli, workspace)
    assert tags.hostile() == []
    shown = page.replace(site.url, "") + text.replace(site.url, "")
    assert not re.search(r"\b49\b", shown)  # 7*7 never evaluated
    assert "&lt;script&gt;alert(1)&lt;/script&gt; {{ 7*7 }} [x](javascript:alert(2))" in page
    assert "{% if x %}{{ 7*7 }}{% endif %} %recipient.email% *loud*" in page
    assert "<script>alert(1)</script> {{ 7*7 }} [x](javascript:alert(2))" in text
    assert "<em>" not in page  # *loud* stays asterisks
