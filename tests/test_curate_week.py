"""An editor's week, as the README tells it, in real `digest` processes against a local site."""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.feeds import feed_routes
from harness.web import Page, WebServer
from harness.workspaces import copy_workspace, digest_env, run_digest

STORY = b"""<!doctype html><html><head><meta charset="utf-8">
<meta property="og:title" content="Ports go quiet as the season turns">
<meta property="og:description" content="Container traffic fell for a third week.">
<meta property="og:image" content="/ship.jpg">
<meta property="og:image:alt" content="A container ship at anchor">
<title>Ports | Example News</title></head><body></body></html>"""


@pytest.fixture
def site() -> Iterator[WebServer]:
    with WebServer({"/story": Page(STORY)}) as server:
        server.routes.update(feed_routes(server.url))
        yield server


def test_an_editors_week(tmp_path: Path, site: WebServer) -> None:
    root = copy_workspace(tmp_path / "news")
    env = digest_env("week-secret")

    def digest(*args: str) -> str:
        done = run_digest(root, env, *args)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout

    assert digest("feeds", "add", f"{site.url}/blog") == f"{site.url}/feeds/atom\n"
    digest("feeds", "add", f"{site.url}/feeds/json")
    draft = Path(digest("new", "Week 49", "--date", "2026-12-07").strip())
    table = digest("collect")
    assert "Atom Weekly" in table and "JSON Journal" in table
    numbers = {e["title"]: e["number"] for e in json.loads(digest("collect", "--json"))}
    digest("pick", str(numbers["JSON newest"]), str(numbers["Atom newest"]))
    digest("add", "--from", f"{site.url}/story")
    script = tmp_path / "editor.py"
    script.write_text(
        "import pathlib, sys\npath = pathlib.Path(sys.argv[1])\n"
        "path.write_text(path.read_text().rstrip() + ' In my own words.\\n')\n",
        encoding="utf-8",
    )
    env["EDITOR"] = f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}"
    digest("edit", "3")
    items = json.loads(digest("items", "--json", "--draft", str(draft)))
    assert [item["title"] for item in items] == [
        "JSON newest",
        "Atom newest",
        "Ports go quiet as the season turns",
    ]
    assert items[2]["body"] == "Container traffic fell for a third week. In my own words."
    assert items[2]["image"] == {"url": f"{site.url}/ship.jpg", "alt": "A container ship at anchor"}
    preview = digest("preview", "--text")
    assert "1. JSON newest" in preview
    assert "Container traffic fell for a third week. In my own words." in preview
    digest("send", "--test", "editor@example.org")
    sent = list((root / ".digest" / "outbox").rglob("*.eml"))
    assert len(sent) == 1
    assert "Ports go quiet as the season turns" in sent[0].read_text(encoding="utf-8")
