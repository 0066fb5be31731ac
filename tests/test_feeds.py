"""`digest feeds`: following feeds in digest.toml (comments kept), discovery, OPML."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from conftest import REPO, Cli
from hypothesis import given, settings
from hypothesis import strategies as st
from test_startup import HEAVY, imported

from digestcli import feeds
from digestcli.workspace import Workspace
from harness.feeds import feed_routes
from harness.web import WebServer

# A digest.toml with a [feeds] table an editor already wrote by hand, comments and all.
HAND_WRITTEN = """
[feeds]   # what `digest collect` follows
# the chip-policy blogs first
urls = ["https://example.org/one.xml"]  # keep this one
timeout = 5   # seconds
"""

OPML = """<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0">
  <head><title>My subscriptions</title></head>
  <body>
    <outline text="Policy" title="Policy">
      <outline type="rss" text="Rising Tide" title="Rising Tide"
               xmlUrl="https://tide.example.org/rss" htmlUrl="https://tide.example.org/"/>
      <outline type="rss" text="Atom &amp; Eve" xmlUrl="https://eve.example.org/atom.xml"/>
    </outline>
    <outline type="rss" text="JSON Journal" xmlUrl="https://journal.example.org/feed.json"/>
    <outline type="rss" text="Not a web feed" xmlUrl="javascript:alert(1)"/>
  </body>
</opml>
"""


@pytest.fixture
def site() -> Iterator[WebServer]:
    with WebServer() as server:
        server.routes.update(feed_routes(server.url))
        yield server


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    return result


def listed(cli: Cli) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = json.loads(ok(cli("feeds", "list", "--json")).stdout)
    return result


def test_feeds_add_follows_a_feed_and_keeps_the_rest_of_digest_toml(
    cli: Cli, workspace: Path, site: WebServer
) -> None:
    config = workspace / "digest.toml"
    before = config.read_text(encoding="utf-8")
    result = ok(cli("feeds", "add", f"{site.url}/feeds/rss"))
    assert result.stdout == f"{site.url}/feeds/rss\n"
    assert "Following Rising Tide (RSS)" in result.stderr
    after = config.read_text(encoding="utf-8")
    assert after.startswith(before)
    assert after[len(before) :] == f'\n[feeds]\nurls = ["{site.url}/feeds/rss"]\n'
    assert listed(cli) == [
        {
            "url": f"{site.url}/feeds/rss",
            "title": "Rising Tide (RSS)",
            "last_checked": None,
            "error": None,
        }
    ]


def test_feeds_add_and_remove_keep_an_edited_feeds_table_s_comments(
    cli: Cli, workspace: Path, site: WebServer
) -> None:
    config = workspace / "digest.toml"
    config.write_text(config.read_text(encoding="utf-8") + HAND_WRITTEN, encoding="utf-8")
    ok(cli("feeds", "add", f"{site.url}/feeds/json"))
    text = config.read_text(encoding="utf-8")
    for line in ("[feeds]   # what `digest collect` follows", "# the chip-policy blogs first"):
        assert line in text
    assert "timeout = 5   # seconds" in text
    assert [feed["url"] for feed in listed(cli)] == [
        "https://example.org/one.xml",
        f"{site.url}/feeds/json",
    ]
    ok(cli("feeds", "remove", f"{site.url}/feeds/json"))
    assert [feed["url"] for feed in listed(cli)] == ["https://example.org/one.xml"]
    assert "# the chip-policy blogs first" in config.read_text(encoding="utf-8")


def test_feeds_add_finds_the_feed_a_web_page_names(
    cli: Cli, workspace: Path, site: WebServer
) -> None:
    result = ok(cli("feeds", "add", f"{site.url}/blog"))
    assert result.stdout == f"{site.url}/feeds/atom\n"
    assert f"(found on {site.url}/blog)" in result.stderr
    assert [(f["url"], f["title"]) for f in listed(cli)] == [
        (f"{site.url}/feeds/atom", "Atom Weekly")
    ]


def test_feeds_add_takes_a_feed_served_as_html(cli: Cli, workspace: Path, site: WebServer) -> None:
    result = ok(cli("feeds", "add", f"{site.url}/feeds/as-html"))
    assert result.stdout == f"{site.url}/feeds/as-html\n"
    assert [f["title"] for f in listed(cli)] == ["Atom Weekly"]


def test_feeds_add_twice_follows_once(cli: Cli, workspace: Path, site: WebServer) -> None:
    ok(cli("feeds", "add", f"{site.url}/feeds/atom"))
    result = ok(cli("feeds", "add", f"{site.url}/blog"))
    assert "Already following" in result.stderr
    assert len(listed(cli)) == 1


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/nofeed", "is a web page that names no working feed"),
        ("/feeds/broken", "is not an RSS, Atom or JSON feed"),
        ("/gone", "answered 404 Not Found"),
    ],
)
def test_feeds_add_refuses_what_is_not_a_feed_and_changes_nothing(
    cli: Cli, workspace: Path, site: WebServer, path: str, words: str
) -> None:
    config = workspace / "digest.toml"
    before = config.read_bytes()
    result = cli("feeds", "add", f"{site.url}{path}")
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: {site.url}{path} ")
    assert words in line
    assert config.read_bytes() == before


def test_feeds_remove_of_a_feed_not_followed_is_a_usage_error(cli: Cli) -> None:
    result = cli("feeds", "remove", "https://example.org/never.xml")
    assert result.exit_code == 2
    assert "is not among the feeds" in result.stderr


def test_opml_round_trip(cli: Cli, workspace: Path, tmp_path: Path) -> None:
    source = tmp_path / "reader.opml"
    source.write_text(OPML, encoding="utf-8")
    result = ok(cli("feeds", "import", str(source)))
    assert "Following 3 new feeds from reader.opml (0 already followed)." in result.stderr
    first = listed(cli)
    assert [(f["url"], f["title"]) for f in first] == [
        ("https://tide.example.org/rss", "Rising Tide"),
        ("https://eve.example.org/atom.xml", "Atom & Eve"),
        ("https://journal.example.org/feed.json", "JSON Journal"),
    ]
    exported = tmp_path / "digest.opml"
    exported.write_text(ok(cli("feeds", "export")).stdout, encoding="utf-8")
    assert 'xmlUrl="https://eve.example.org/atom.xml"' in exported.read_text(encoding="utf-8")
    assert 'text="Atom &amp; Eve"' in exported.read_text(encoding="utf-8")
    # Into a fresh workspace: the same feeds, with the same titles.
    (workspace / "digest.toml").write_text(
        (workspace / "digest.toml").read_text(encoding="utf-8").split("\n[feeds]")[0],
        encoding="utf-8",
    )
    (workspace / ".digest" / "digest.db").unlink()
    ok(cli("feeds", "import", str(exported)))
    assert listed(cli) == first
    again = ok(cli("feeds", "import", str(exported)))
    assert "Following 0 new feeds from digest.opml (3 already followed)." in again.stderr


@pytest.mark.parametrize(
    ("text", "words"),
    [("<opml><body>", "not valid OPML"), ("<html/>", "not an OPML file")],
)
def test_feeds_import_of_a_bad_file_is_one_clear_error(
    cli: Cli, tmp_path: Path, text: str, words: str
) -> None:
    path = tmp_path / "bad.opml"
    path.write_text(text, encoding="utf-8")
    result = cli("feeds", "import", str(path))
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert words in line


def test_a_bad_feeds_table_is_a_config_error(cli: Cli, workspace: Path) -> None:
    config = workspace / "digest.toml"
    config.write_text(
        config.read_text(encoding="utf-8") + '\n[feeds]\nurls = "https://x.org/f"\n',
        encoding="utf-8",
    )
    result = cli("feeds", "list")
    assert result.exit_code == 3
    assert "[feeds] urls must be a list of strings" in result.stderr


def test_adding_an_item_by_hand_still_imports_no_fetching_stack(
    workspace: Path, tmp_path: Path
) -> None:
    (workspace / "drafts" / "2026-03-02-week-9.md").write_text(
        "---\ntitle: Week 9\ndate: 2026-03-02\nnumber: 9\n---\n\nHi.\n", encoding="utf-8"
    )
    modules = imported(workspace, tmp_path, "add", "By hand", "--body", "Text.")
    assert "digestcli" in modules
    assert sorted(modules.intersection({*HEAVY, "feedparser", "tomlkit"})) == []


def test_a_store_from_before_curating_gains_its_tables(tmp_path: Path) -> None:
    import sqlite3
    from contextlib import closing

    from digestcli import db

    path = tmp_path / "digest.db"
    with closing(db.connect(path)):
        pass
    with closing(sqlite3.connect(path)) as old:
        old.executescript(
            "DROP TABLE feed_state; DROP TABLE feed_entries; DROP TABLE feed_cache;"
            f"PRAGMA user_version={db.SCHEMA_VERSION - 1};"
        )
    with closing(db.connect(path)) as store:
        tables = {row[0] for row in store.execute("SELECT name FROM sqlite_master")}
        version = store.execute("PRAGMA user_version").fetchone()[0]
    assert {"feed_state", "feed_entries", "feed_cache"} <= tables
    assert version == db.SCHEMA_VERSION


URL = st.builds(
    "https://{}.example.org/{}".format,
    st.text("abcdefghij", min_size=1, max_size=6),
    st.text("abcxyz0123/-_.", max_size=10),
)


@settings(max_examples=40)
@given(first=st.lists(URL, max_size=5), second=st.lists(URL, max_size=5))
def test_editing_the_feeds_keeps_every_other_line_of_digest_toml(
    tmp_path_factory: pytest.TempPathFactory, first: list[str], second: list[str]
) -> None:
    root = tmp_path_factory.mktemp("ws")
    original = (REPO / "digest.toml").read_text(encoding="utf-8") + HAND_WRITTEN
    (root / "digest.toml").write_text(original, encoding="utf-8")
    workspace = Workspace(root)
    feeds.add_urls(workspace, first)
    feeds.add_urls(workspace, second)
    expected = list(dict.fromkeys(["https://example.org/one.xml", *first, *second]))
    assert feeds.followed(workspace) == expected
    for url in expected[1:]:
        feeds.remove_url(workspace, url)
    assert feeds.followed(workspace) == ["https://example.org/one.xml"]
    text = (root / "digest.toml").read_text(encoding="utf-8")
    outside = [line for line in original.splitlines() if not line.startswith("urls")]
    assert [line for line in text.splitlines() if not line.startswith("urls")] == outside
