"""`digest add --from URL`: an item from a web page's own metadata, fetched carefully."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from click.testing import Result
from conftest import REPO, Cli

from harness.web import HUGE, STALL, Page, WebServer

# Fetches give up after 5 s (a loaded test machine needs slack), the slow page's after 1 s.
LIMITS = "\n[feeds]\ntimeout = {timeout}\nmax_bytes = 1_000_000\n"

OPENGRAPH = b"""<!doctype html><html><head>
<meta charset="utf-8">
<title>Site | The headline, for browsers</title>
<meta property="og:title" content="Robots learn to fold laundry">
<meta property="og:description" content="A lab in Shenzhen taught
   two arms to fold   towels.">
<meta property="og:image" content="/img/towels.jpg">
<meta property="og:image:alt" content="Two robot arms and a towel">
<meta property="og:url" content="https://news.example.org/robots">
<meta name="description" content="The meta description loses to OpenGraph.">
</head><body><h1>Ignored</h1></body></html>"""

TWITTER = b"""<html><head>
<meta name="twitter:card" content="summary_large_image">
<meta name="twitter:title" content="Only a Twitter card here">
<meta name="twitter:description" content="Cards describe pages too.">
<meta name="twitter:image" content="https://cdn.example.org/card.png">
</head><body></body></html>"""

PLAIN = b"""<html><head><title>  Just a &lt;title&gt;   tag  </title>
<meta name="description" content="And a plain meta description &amp; nothing else.">
</head><body><p>Text.</p></body></html>"""

JSON_LD = b"""<html><head><title>Fallback title</title>
<script type="application/ld+json">{"@context": "https://schema.org", "@graph": [
 {"@type": "NewsArticle", "headline": "Headline from JSON-LD",
  "description": "Description from JSON-LD."}]}</script>
</head><body></body></html>"""

# Declared in a <meta http-equiv>, not in the Content-Type header: digest must find it.
WINDOWS_1252 = (
    "<html><head>"
    '<meta http-equiv="Content-Type" content="text/html; charset=windows-1252">'
    "<title>Caf\u00e9 culture in S\u00e3o Paulo \u2013 \u201cna\u00efve\u201d</title>"
    '<meta name="description" content="Cr\u00e8me br\u00fbl\u00e9e for \u20ac5.">'
    "</head><body></body></html>"
).encode("cp1252")

HOSTILE = b"""<html><head>
<title>ignored</title>
<meta property="og:title" content="&lt;script&gt;alert(1)&lt;/script&gt; {{ 7*7 }} **bold**">
<meta property="og:description" content="Click [here](javascript:alert(1)) or
 &lt;a href=&quot;javascript:alert(2)&quot;&gt;there&lt;/a&gt; {% if x %}{{ 7*7 }}{% endif %}
 &lt;img src=x onerror=alert(3)&gt; # not a heading">
<meta property="og:image" content="javascript:alert(4)">
<meta property="og:url" content="javascript:alert(5)">
</head><body></body></html>"""


def pages() -> dict[str, Any]:
    """The fixture site: every kind of page `add --from` meets."""
    return {
        "/og": Page(OPENGRAPH),
        "/twitter": Page(TWITTER),
        "/plain": Page(PLAIN, content_type="text/html"),
        "/ld": Page(JSON_LD),
        "/cp1252": Page(WINDOWS_1252, content_type="text/html"),
        "/hostile": Page(HOSTILE),
        "/moved": Page(b"", status=301, headers={"Location": "/plain"}),
        "/slow": STALL,
        "/huge": HUGE,
        "/pdf": Page(b"%PDF-1.4", content_type="application/pdf"),
        "/untitled": Page(b"<html><body><p>No head at all.</p></body></html>"),
    }


@pytest.fixture
def site() -> Iterator[WebServer]:
    with WebServer(pages()) as server:
        yield server


@pytest.fixture
def draft(cli: Cli, workspace: Path) -> Path:
    config = workspace / "digest.toml"
    config.write_text(
        config.read_text(encoding="utf-8") + LIMITS.format(timeout=5), encoding="utf-8"
    )
    result = cli("new", "Week 9", "--date", "2026-03-02")
    assert result.exit_code == 0, result.output
    return Path(result.stdout.strip())


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    return result


def items(cli: Cli) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = json.loads(ok(cli("items", "--json")).stdout)
    return result


def one_error(result: Result, status: int) -> str:
    assert result.exit_code == status, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output
    return lines[0]


def test_add_from_an_opengraph_page_fills_every_field(
    cli: Cli, draft: Path, site: WebServer
) -> None:
    ok(cli("add", "--from", f"{site.url}/og"))
    assert items(cli) == [
        {
            "position": 1,
            "title": "Robots learn to fold laundry",
            "body": "A lab in Shenzhen taught two arms to fold towels.",
            "link": "https://news.example.org/robots",
            "link_label": None,
            "image": {"url": f"{site.url}/img/towels.jpg", "alt": "Two robot arms and a towel"},
        }
    ]
    (seen,) = site.requests_to("/og")
    assert seen.headers["user-agent"].startswith("digest/")


def test_add_from_a_page_with_only_a_twitter_card(cli: Cli, draft: Path, site: WebServer) -> None:
    ok(cli("add", "--from", f"{site.url}/twitter"))
    (item,) = items(cli)
    assert item["title"] == "Only a Twitter card here"
    assert item["body"] == "Cards describe pages too."
    assert item["link"] == f"{site.url}/twitter"
    # No alt text in the card: the headline describes the picture rather than nothing.
    assert item["image"] == {
        "url": "https://cdn.example.org/card.png",
        "alt": "Only a Twitter card here",
    }


def test_add_from_a_page_with_only_title_and_description(
    cli: Cli, draft: Path, site: WebServer
) -> None:
    ok(cli("add", "--from", f"{site.url}/plain"))
    (item,) = items(cli)
    # Escaped for Markdown, so the <title> in the text stays text.
    assert item["title"] == r"Just a \<title> tag"
    assert item["body"] == "And a plain meta description & nothing else."
    assert item["image"] is None


def test_add_from_reads_json_ld_headline_and_description(
    cli: Cli, draft: Path, site: WebServer
) -> None:
    ok(cli("add", "--from", f"{site.url}/ld"))
    (item,) = items(cli)
    assert (item["title"], item["body"]) == ("Headline from JSON-LD", "Description from JSON-LD.")


def test_add_from_follows_a_redirect_and_links_where_it_landed(
    cli: Cli, draft: Path, site: WebServer
) -> None:
    ok(cli("add", "--from", f"{site.url}/moved"))
    (item,) = items(cli)
    assert item["link"] == f"{site.url}/plain"


def test_flags_and_title_override_the_page(cli: Cli, draft: Path, site: WebServer) -> None:
    ok(
        cli(
            "add",
            "--from",
            f"{site.url}/og",
            "My own *headline*",
            "--body",
            "My summary.",
            "--link",
            "https://example.org/elsewhere",
            "--label",
            "Read it",
            "--image",
            "https://example.org/mine.png",
            "--alt",
            "My picture",
            "--at",
            "1",
        )
    )
    assert items(cli) == [
        {
            "position": 1,
            "title": "My own *headline*",
            "body": "My summary.",
            "link": "https://example.org/elsewhere",
            "link_label": "Read it",
            "image": {"url": "https://example.org/mine.png", "alt": "My picture"},
        }
    ]


def test_a_label_alone_names_the_pages_link(cli: Cli, draft: Path, site: WebServer) -> None:
    ok(cli("add", "--from", f"{site.url}/og", "--label", "Read the story"))
    (item,) = items(cli)
    assert (item["link"], item["link_label"]) == (
        "https://news.example.org/robots",
        "Read the story",
    )


def test_accented_text_in_windows_1252_comes_out_right(
    cli: Cli, draft: Path, site: WebServer
) -> None:
    ok(cli("add", "--from", f"{site.url}/cp1252"))
    (item,) = items(cli)
    assert item["title"] == "Caf\u00e9 culture in S\u00e3o Paulo \u2013 \u201cna\u00efve\u201d"
    assert item["body"] == "Cr\u00e8me br\u00fbl\u00e9e for \u20ac5."
    assert "Caf\u00e9 culture" in draft.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/missing", "answered 404 Not Found"),
        ("/slow", "did not answer within 1 s"),
        ("/huge", "is larger than 1,000,000 bytes"),
        ("/pdf", "is application/pdf, not a web page"),
    ],
    ids=["404", "slow", "huge", "not-html"],
)
def test_a_page_that_cannot_be_read_is_one_error_and_the_draft_is_untouched(
    cli: Cli, draft: Path, site: WebServer, workspace: Path, path: str, words: str
) -> None:
    if path == "/slow":  # waiting out the default would cost seconds
        config = workspace / "digest.toml"
        config.write_text(
            config.read_text(encoding="utf-8").replace("timeout = 5", "timeout = 1"),
            encoding="utf-8",
        )
    ok(cli("add", "Already here", "--body", "Kept."))
    before = draft.read_bytes()
    line = one_error(cli("add", "--from", f"{site.url}{path}"), 1)
    assert f"{site.url}{path}" in line
    assert words in line
    assert draft.read_bytes() == before


def test_a_page_without_a_title_needs_one_from_the_editor(
    cli: Cli, draft: Path, site: WebServer
) -> None:
    before = draft.read_bytes()
    line = one_error(cli("add", "--from", f"{site.url}/untitled"), 2)
    assert "has no title in its metadata; give one: `digest add --from URL TITLE`" in line
    assert draft.read_bytes() == before
    ok(cli("add", "--from", f"{site.url}/untitled", "Named by hand"))
    assert [(i["title"], i["link"]) for i in items(cli)] == [
        ("Named by hand", f"{site.url}/untitled")
    ]


def test_add_without_title_or_from_is_a_usage_error(cli: Cli, draft: Path) -> None:
    before = draft.read_bytes()
    line = one_error(cli("add"), 2)
    assert "--from URL" in line
    assert draft.read_bytes() == before


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "http://", "http://[::1", "http://a..b/", "http://xn--/"]
)
def test_add_from_refuses_what_is_not_a_web_address(cli: Cli, draft: Path, url: str) -> None:
    before = draft.read_bytes()
    line = one_error(cli("add", "--from", url), 1)
    assert "not a web address" in line or "not a valid web address" in line
    assert draft.read_bytes() == before


class Tags(HTMLParser):
    """The real tags and attributes of an HTML page (text that looks like tags is not one)."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()
        self.attributes: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.names.add(tag)
        self.attributes += [(name, value or "") for name, value in attrs]

    def hostile(self) -> list[tuple[str, str]]:
        """Script tags, event handlers and javascript: URLs: what must never come through."""
        found = [("tag", "script")] if "script" in self.names else []
        return found + [
            (name, value)
            for name, value in self.attributes
            if name.startswith("on") or value.strip().lower().startswith("javascript")
        ]


class Rendered(NamedTuple):
    """`digest render` of a workspace's draft: the HTML, the text and the HTML's real tags."""

    page: str
    text: str
    tags: Tags


def rendered(cli: Cli, workspace: Path) -> Rendered:
    """Render the current draft with the default templates, as an editor would."""
    shutil.copytree(REPO / "templates", workspace / "templates")
    ok(cli("render", "--out", "out", env={"DIGEST_SECRET": "s"}))
    page = (workspace / "out" / "issue.html").read_text(encoding="utf-8")
    text = (workspace / "out" / "issue.txt").read_text(encoding="utf-8")
    tags = Tags()
    tags.feed(page)
    return Rendered(page, text, tags)


def test_hostile_text_stays_literal_through_render(
    cli: Cli, draft: Path, site: WebServer, workspace: Path
) -> None:
    ok(cli("add", "--from", f"{site.url}/hostile"))
    (item,) = items(cli)
    assert item["link"] == f"{site.url}/hostile"  # og:url javascript: is not a link
    assert item["image"] is None  # nor is og:image javascript:
    page, text, tags = rendered(cli, workspace)
    assert tags.hostile() == []
    assert "&lt;img src=x onerror=alert(3)&gt;" in page
    shown = page.replace(site.url, "") + text.replace(site.url, "")
    assert not re.search(r"\b49\b", shown)  # 7*7 never evaluated
    # What the page said shows to readers as the text it was, in HTML and in plain text.
    assert "&lt;script&gt;alert(1)&lt;/script&gt; {{ 7*7 }} **bold**" in page
    assert "{% if x %}{{ 7*7 }}{% endif %}" in page
    assert "Click [here](javascript:alert(1)) or" in page
    assert "<script>alert(1)</script> {{ 7*7 }} **bold**" in text
    assert "# not a heading" in text
