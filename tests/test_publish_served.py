"""The published site through real processes: `digest serve` on loopback, `preview --browser`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import feedparser
import httpx
import pytest
from conftest import Cli
from test_publish import SECRET, SITE_URL, new_issue, ok, send, ws

from harness.serving import serving
from harness.workspaces import digest_env, run_digest

__all__ = ["ws"]  # the fixture, shared with test_publish


@pytest.fixture
def published(cli: Cli, ws: Path) -> tuple[Path, Path]:
    """A workspace with one issue sent and published; its draft."""
    draft = new_issue(cli, "Week one", "2026-03-02", "The first week.")
    send(cli, draft)
    ok(cli("publish"))
    return ws, draft


@pytest.fixture
def served(published: tuple[Path, Path]) -> Iterator[str]:
    """`digest serve --port 0` in the published workspace; its base URL."""
    with serving(published[0], SECRET["DIGEST_SECRET"]) as process:
        yield process.url


def test_serve_serves_the_published_site_beside_its_own_routes(
    served: str, published: tuple[Path, Path]
) -> None:
    root, draft = published
    site = root / "site"
    with httpx.Client(base_url=served, timeout=10) as http:
        front = http.get("/")
        assert front.status_code == 200
        assert front.content == (site / "index.html").read_bytes()
        page = http.get(f"/issues/{draft.stem}/")
        assert page.status_code == 200
        assert page.content == (site / "issues" / draft.stem / "index.html").read_bytes()
        assert page.headers["content-type"].startswith("text/html")
        feed = http.get("/feed.xml")
        assert feed.status_code == 200
        parsed = feedparser.parse(feed.content)
        assert not parsed.bozo
        assert [e.link for e in parsed.entries] == [f"{SITE_URL}issues/{draft.stem}/"]
        assert http.get("/healthz").text == "ok"
        # The site never shadows digest's own routes.
        assert http.get("/unsubscribe?token=forged").status_code == 400
        assert http.get("/events").status_code == 401
        assert http.post("/webhooks/nosuchprovider", content=b"{}").status_code == 404
        assert http.get("/issues/no-such-issue/").status_code == 404


def test_preview_in_the_browser_opens_the_published_page_once_there_is_one(
    published: tuple[Path, Path], tmp_path: Path
) -> None:
    root, draft = published
    opened = tmp_path / "opened.txt"
    # webbrowser runs $BROWSER with the URL in place of %s.
    browser = f"sh -c 'echo \"$0\" >> {opened}' %s"
    env = digest_env(SECRET["DIGEST_SECRET"], BROWSER=browser, TMPDIR=str(tmp_path))
    result = run_digest(root, env, "preview", "--browser", "-d", draft.name)
    assert result.returncode == 0, result.stderr
    page = root / "site" / "issues" / draft.stem / "index.html"
    assert opened.read_text(encoding="utf-8").splitlines() == [page.as_uri()]
    assert "published web version" in result.stderr

    (page).unlink()
    result = run_digest(root, env, "preview", "--browser", "-d", draft.name)
    assert result.returncode == 0, result.stderr
    second = opened.read_text(encoding="utf-8").splitlines()[1]
    assert second.startswith("file://") and "digest-preview-" in second
