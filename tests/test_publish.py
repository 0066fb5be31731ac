"""`digest publish` driven as an editor would: send issues, publish them, read the site back."""

from __future__ import annotations

import email
import email.policy
import html
import re
import shutil
import sqlite3
from html.parser import HTMLParser
from pathlib import Path

import feedparser
import pytest
from conftest import REPO, Cli
from test_cli_compose import SAMPLE, parse_sample

SECRET = {"DIGEST_SECRET": "publish-secret"}
SITE_URL = "https://example.org/dispatch/"
# Three readers whose every value is distinctive: none of it may reach the site.
READERS = (
    "email,name,city,code\n"
    "quintessa.marlowe@example.org,Quintessa Marlowe-Vance,Vexillopolis,QX-7731-ZETA\n"
    "bartholomew.oyelaran@example.net,Bartholomew Oyelaran,Ulaanbaatar-North,KV-4410-OMEGA\n"
    "meiling.zhou@example.com,周美玲,乌鲁木齐西区,MZ-9052-SIGMA\n"
)
READER_VALUES = [
    value for line in READERS.splitlines()[1:] for value in line.split(",") if value.strip()
] + ["quintessa", "bartholomew", "meiling"]


@pytest.fixture
def ws(cli: Cli, workspace: Path) -> Path:
    """The example theme, no drafts, and three readers on the default list."""
    shutil.copytree(REPO / "templates", workspace / "templates")
    (workspace / "readers.csv").write_text(READERS, encoding="utf-8")
    ok(cli("subscribers", "import", "readers.csv"))
    return workspace


def ok(result: object) -> str:
    assert getattr(result, "exit_code", None) == 0, getattr(result, "output", result)
    return str(getattr(result, "stdout", ""))


def new_issue(cli: Cli, title: str, date: str, preheader: str, *items: tuple[str, str]) -> Path:
    """A draft made through the CLI: a title, a preheader, an intro and some items."""
    path = Path(ok(cli("new", title, "--date", date, "--preheader", preheader)).strip())
    ok(cli("intro", f"Hello, this is {title}.", "-d", path.name))
    for headline, body in items or (("A story", "Its body."),):
        ok(cli("add", headline, "--body", body, "-d", path.name))
    return path


def send(cli: Cli, draft: Path) -> None:
    ok(cli("send", "--yes", "-d", draft.name, env=SECRET))


def publish(cli: Cli, *args: str) -> str:
    return ok(cli("publish", *args))


def site_files(ws: Path) -> dict[str, bytes]:
    root = ws / "site"
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def slug_of(draft: Path) -> str:
    return draft.stem


def page_url(draft: Path) -> str:
    return f"{SITE_URL}issues/{slug_of(draft)}/"


class _Text(HTMLParser):
    """The text of a page (outside <style>), and every image's attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.images: list[dict[str, str | None]] = []
        self._style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._style = tag == "style"
        if tag == "img":
            self.images.append(dict(attrs))

    def handle_endtag(self, tag: str) -> None:
        self._style = False

    def handle_data(self, data: str) -> None:
        if not self._style:
            self.parts.append(data)


def page_text(markup: str) -> str:
    parser = _Text()
    parser.feed(markup)
    return " ".join(" ".join(parser.parts).split())


def parts(eml: Path) -> tuple[str, str]:
    """The HTML and text parts of a sent message."""
    message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    found = {}
    for part in message.walk():
        if part.get_content_type() in ("text/html", "text/plain"):
            found[part.get_content_type()] = part.get_content()
    return found["text/html"], found["text/plain"]


def test_the_sample_issue_sent_to_three_readers_is_published_without_their_data(
    cli: Cli, ws: Path
) -> None:
    if not SAMPLE.is_file():
        pytest.skip(f"the sample newsletter is not at {SAMPLE}")
    intro, items, outro = parse_sample(SAMPLE.read_text(encoding="utf-8"))
    preheader = "Nine stories from China's digital economy this week."
    draft = Path(
        ok(
            cli("new", "China's Digital Digest", "--date", "2023-03-03", "--preheader", preheader)
        ).strip()
    )
    ok(cli("intro", intro))
    for headline, body in items:
        ok(cli("add", headline, "--body", body))
    ok(cli("outro", outro))
    send(cli, draft)

    stdout = publish(cli)
    url = page_url(draft)
    page = ws / "site" / "issues" / slug_of(draft) / "index.html"
    assert str(page) in stdout.splitlines()
    index = (ws / "site" / "index.html").read_text(encoding="utf-8")
    assert f'href="issues/{slug_of(draft)}/"' in index
    assert "China&#39;s Digital Digest" in index and preheader.replace("'", "&#39;") in index
    text = page_text(page.read_text(encoding="utf-8"))
    assert [h for h, _ in items if h not in text] == []
    assert f'<link rel="canonical" href="{url}">' in page.read_text(encoding="utf-8")

    feed = feedparser.parse((ws / "site" / "feed.xml").read_bytes())
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.feed.title == "The Terminal Dispatch"
    assert [link.href for link in feed.feed.links] == [f"{SITE_URL}feed.xml", SITE_URL]
    (entry,) = feed.entries
    assert (entry.title, entry.link, entry.id, entry.summary) == (
        "China's Digital Digest",
        url,
        url,
        preheader,
    )
    assert items[0][0] in entry.content[0].value

    # Every reader's message links to the page publish wrote, in both parts.
    messages = sorted((ws / ".digest" / "outbox").rglob("*.eml"))
    assert len(messages) == 3
    for eml in messages:
        html_part, text_part = parts(eml)
        assert f'<a href="{url}"' in html_part
        assert f"View online: {url}\r\n" in text_part

    # Nothing personal, no template syntax left behind, no script.
    for name, data in site_files(ws).items():
        content = data.decode("utf-8")
        unescaped = html.unescape(html.unescape(content)).casefold()
        for value in READER_VALUES:
            assert value.casefold() not in unescaped, (name, value)
        for needle in ("token=", "{{", "{%", "%recipient", "<script", "unsubscribe"):
            assert needle not in unescaped, (name, needle)


HOSTILE_TITLE = "数字周报 — עדכון שבועי 🚀 {{ 7*7 }}"
HOSTILE_PREHEADER = "مرحبا بالعالم · 你好 · 🎉 {% if x %}no{% endif %} & <b>bold</b>"
HOSTILE_BODY = (
    "Literal {{ 7*7 }} and {% raw %}{{ x }}{% endraw %} and %recipient.email% stay as typed.\n\n"
    "עברית מימין לשמאל, العربية أيضا, 中文内容, emoji 🧧🐉.\n\n"
    "<script>alert('x')</script><img src=x onerror=alert(1)> & <b>fine</b> 5 < 6"
)


def test_hostile_and_international_content_survives_into_page_and_feed_exactly(
    cli: Cli, ws: Path
) -> None:
    draft = new_issue(
        cli, HOSTILE_TITLE, "2026-03-02", HOSTILE_PREHEADER, ("标题 {{ item }} 🐉", HOSTILE_BODY)
    )
    send(cli, draft)
    publish(cli)

    page = (ws / "site" / "issues" / slug_of(draft) / "index.html").read_text(encoding="utf-8")
    text = page_text(page)
    for literal in (
        HOSTILE_TITLE,
        "标题 {{ item }} 🐉",
        "Literal {{ 7*7 }} and {% raw %}{{ x }}{% endraw %} and %recipient.email% stay as typed.",
        "עברית מימין לשמאל, العربية أيضا, 中文内容, emoji 🧧🐉.",
    ):
        assert literal in text, literal
    assert f'<meta property="og:title" content="{html.escape(HOSTILE_TITLE)}">' in page
    assert f'<meta property="og:description" content="{html.escape(HOSTILE_PREHEADER)}">' in page
    assert "49" not in text
    index = page_text((ws / "site" / "index.html").read_text(encoding="utf-8"))
    assert HOSTILE_TITLE in index and HOSTILE_PREHEADER in index

    raw = (ws / "site" / "feed.xml").read_bytes()
    feed = feedparser.parse(raw)
    assert not feed.bozo, feed.get("bozo_exception")
    (entry,) = feed.entries
    assert entry.title == HOSTILE_TITLE
    assert entry.summary == HOSTILE_PREHEADER
    content = page_text(entry.content[0].value)
    assert "Literal {{ 7*7 }} and {% raw %}{{ x }}{% endraw %} and %recipient.email%" in content
    for name, data in site_files(ws).items():
        unescaped = html.unescape(html.unescape(data.decode("utf-8")))
        assert "<script" not in unescaped and "onerror" not in unescaped, name


def test_publishing_again_rewrites_nothing_and_new_issues_come_first(cli: Cli, ws: Path) -> None:
    first = new_issue(cli, "Week one", "2026-03-02", "The first week.")
    send(cli, first)
    unsent = new_issue(cli, "Never sent", "2026-03-05", "A draft only.")
    publish(cli)
    before = site_files(ws)
    assert set(before) == {"index.html", "feed.xml", f"issues/{first.stem}/index.html"}
    stamps = {name: (ws / "site" / name).stat().st_mtime_ns for name in before}

    assert publish(cli) == ""
    assert site_files(ws) == before
    assert {name: (ws / "site" / name).stat().st_mtime_ns for name in before} == stamps
    ok(cli("publish", "--check"))

    second = new_issue(cli, "Week two", "2026-03-09", "The second week.")
    send(cli, second)
    stale = cli("publish", "--check")
    assert stale.exit_code == 1
    assert sorted(stale.stdout.splitlines()) == sorted(
        str(ws / "site" / name)
        for name in ("index.html", "feed.xml", f"issues/{second.stem}/index.html")
    )
    assert "out of date" in stale.stderr
    assert site_files(ws) == before  # --check writes nothing

    publish(cli)
    ok(cli("publish", "--check"))
    after = site_files(ws)
    assert after[f"issues/{first.stem}/index.html"] == before[f"issues/{first.stem}/index.html"]
    index = after["index.html"].decode("utf-8")
    assert index.index("Week two") < index.index("Week one")
    assert "Never sent" not in index and unsent.stem not in " ".join(after)
    feed = feedparser.parse(after["feed.xml"])
    assert [e.title for e in feed.entries] == ["Week two", "Week one"]
    assert feed.feed.updated == feed.entries[0].updated

    # A later title change moves nothing: the page stays where the emails point.
    ok(cli("set", "title", "Week one, revised", "-d", first.name))
    publish(cli)
    assert "Week one, revised" in (ws / "site" / "issues" / first.stem / "index.html").read_text(
        encoding="utf-8"
    )
    assert {e.link for e in feedparser.parse((ws / "site" / "feed.xml").read_bytes()).entries} == {
        page_url(first),
        page_url(second),
    }


def test_files_the_editor_put_in_the_site_folder_are_left_alone(cli: Cli, ws: Path) -> None:
    send(cli, new_issue(cli, "Week one", "2026-03-02", "The first week."))
    (ws / "site" / "issues" / "hand-made").mkdir(parents=True)
    (ws / "site" / "issues" / "hand-made" / "index.html").write_text("mine", encoding="utf-8")
    (ws / "site" / "CNAME").write_text("news.example.org\n", encoding="utf-8")
    publish(cli)
    publish(cli)
    assert (ws / "site" / "CNAME").read_text(encoding="utf-8") == "news.example.org\n"
    assert (ws / "site" / "issues" / "hand-made" / "index.html").read_text() == "mine"


def test_the_page_url_is_fixed_by_the_first_send_for_every_list(cli: Cli, ws: Path) -> None:
    draft = new_issue(cli, "Week one", "2026-03-02", "The first week.")
    send(cli, draft)
    config = ws / "digest.toml"
    config.write_text(
        config.read_text(encoding="utf-8").replace(SITE_URL, "https://news.example.net/"),
        encoding="utf-8",
    )
    ok(cli("subscribers", "add", "late@example.org", "--list", "late"))
    ok(cli("send", "--yes", "--list", "late", "-d", draft.name, env=SECRET))
    db = sqlite3.connect(ws / ".digest" / "digest.db")
    try:
        rows = db.execute("SELECT list, slug, web_url FROM campaigns ORDER BY id").fetchall()
    finally:
        db.close()
    assert rows == [
        ("default", draft.stem, page_url(draft)),
        ("late", draft.stem, page_url(draft)),
    ]
    late = [p for p in (ws / ".digest" / "outbox").rglob("*.eml") if "late@" in p.name]
    assert f"View online: {page_url(draft)}\r\n" in parts(late[0])[1]
    publish(cli)
    feed = feedparser.parse((ws / "site" / "feed.xml").read_bytes())
    # The page moved with web_url; the entry keeps the id it had, so readers see no new entry.
    assert [(e.id, e.link) for e in feed.entries] == [
        (page_url(draft), f"https://news.example.net/issues/{draft.stem}/")
    ]


def test_without_web_url_publish_says_so_and_writes_nothing(cli: Cli, ws: Path) -> None:
    send(cli, new_issue(cli, "Week one", "2026-03-02", "The first week."))
    config = ws / "digest.toml"
    config.write_text(
        re.sub(r"(?m)^web_url = .*\n", "", config.read_text(encoding="utf-8")), encoding="utf-8"
    )
    for args in ((), ("--check",), ("--out", "elsewhere")):
        result = cli("publish", *args)
        assert result.exit_code == 3, result.output
        (line,) = result.stderr.splitlines()
        assert line.startswith(f"error: {config}: [publication] web_url is missing; add ")
        assert result.stdout == ""
    assert not (ws / "site").exists() and not (ws / "elsewhere").exists()


def test_out_and_the_archive_setting_choose_the_folder(cli: Cli, ws: Path) -> None:
    send(cli, new_issue(cli, "Week one", "2026-03-02", "The first week."))
    publish(cli, "--out", "public")
    assert (ws / "public" / "feed.xml").is_file() and not (ws / "site").exists()
    config = ws / "digest.toml"
    config.write_text(
        config.read_text(encoding="utf-8") + '\n[archive]\nout = "www"\n', encoding="utf-8"
    )
    publish(cli)
    assert (ws / "www" / "index.html").is_file() and not (ws / "site").exists()


def test_an_empty_archive_is_a_valid_site(cli: Cli, ws: Path) -> None:
    new_issue(cli, "Never sent", "2026-03-05", "A draft only.")
    publish(cli)
    assert set(site_files(ws)) == {"index.html", "feed.xml"}
    assert "No issues yet." in (ws / "site" / "index.html").read_text(encoding="utf-8")
    feed = feedparser.parse((ws / "site" / "feed.xml").read_bytes())
    assert not feed.bozo and feed.entries == []


def test_a_hand_edited_page_a_new_theme_or_a_lost_cache_are_handled(cli: Cli, ws: Path) -> None:
    first = new_issue(cli, "Week one", "2026-03-02", "The first week.")
    send(cli, first)
    second = new_issue(cli, "Week two", "2026-03-09", "The second week.")
    send(cli, second)
    publish(cli)
    before = site_files(ws)
    page = ws / "site" / "issues" / first.stem / "index.html"

    page.write_text("edited by hand", encoding="utf-8")
    stale = cli("publish", "--check")
    assert (stale.exit_code, stale.stdout) == (1, f"{page}\n")
    assert publish(cli) == f"{page}\n"
    assert site_files(ws) == before

    (ws / ".digest" / "publish.json").write_text("{not json", encoding="utf-8")
    assert publish(cli) == ""
    ok(cli("publish", "--check"))

    head = ws / "templates" / "web" / "head.html.j2"
    head.write_text(head.read_text(encoding="utf-8") + '<meta name="x-theme" content="2">\n')
    assert sorted(publish(cli).splitlines()) == sorted(
        str(ws / "site" / "issues" / draft.stem / "index.html") for draft in (first, second)
    )
    assert b'<meta name="x-theme" content="2">' in page.read_bytes()
    assert site_files(ws)["index.html"] == before["index.html"]


def test_issues_sent_before_schema_6_are_published_under_their_file_name(
    cli: Cli, ws: Path
) -> None:
    from digestcli import db as store
    from digestcli.campaigns import issue_link
    from digestcli.workspace import Workspace

    draft = new_issue(cli, "Week one", "2026-03-02", "The first week.")
    path = ws / ".digest" / "digest.db"
    old = store.SCHEMA.replace(
        "nonce TEXT NOT NULL DEFAULT '',\n    slug TEXT,\n    web_url TEXT",
        "nonce TEXT NOT NULL DEFAULT ''",
    )
    assert old != store.SCHEMA
    path.unlink()
    legacy = sqlite3.connect(path)
    legacy.executescript(old + "PRAGMA user_version=5;")
    legacy.execute(
        "INSERT INTO campaigns (key, draft, content_hash, list, transport, created_at,"
        " finished_at) VALUES (?, ?, 'h', 'default', 'outbox', ?, ?)",
        (
            f"{draft.name}:default",
            draft.name,
            "2026-03-02T09:00:00+00:00",
            "2026-03-02T09:01:00+00:00",
        ),
    )
    legacy.commit()
    legacy.close()

    workspace = Workspace(ws)
    # A resume of that campaign renders the link its emails had: web_url itself.
    assert issue_link(workspace, draft.name, workspace.settings()).web_url == SITE_URL
    publish(cli)
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == store.SCHEMA_VERSION == 7
    finally:
        db.close()
    feed = feedparser.parse((ws / "site" / "feed.xml").read_bytes())
    assert [(e.id, e.link, e.updated) for e in feed.entries] == [
        (page_url(draft), page_url(draft), "2026-03-02T09:01:00+00:00")
    ]


def test_a_broken_sent_draft_stops_publish_before_anything_is_written(cli: Cli, ws: Path) -> None:
    draft = new_issue(cli, "Week one", "2026-03-02", "The first week.")
    send(cli, draft)
    draft.write_text("---\ntitle: [unclosed\n---\n", encoding="utf-8")
    result = cli("publish")
    assert result.exit_code == 4, result.output
    assert result.stderr.startswith(f"error: {draft}") and len(result.stderr.splitlines()) == 1
    assert not (ws / "site").exists()


def test_render_and_test_sends_link_the_page_the_send_will_fix(cli: Cli, ws: Path) -> None:
    draft = new_issue(cli, "Week one", "2026-03-02", "The first week.")
    ok(cli("render", "--out", "out", env=SECRET))
    assert f'<a href="{page_url(draft)}"' in (ws / "out" / "issue.html").read_text("utf-8")
    assert f"View online: {page_url(draft)}\n" in (ws / "out" / "issue.txt").read_text("utf-8")
    ok(cli("send", "--test", "me@example.org", env=SECRET))
    (test_copy,) = (ws / ".digest" / "outbox").rglob("*.eml")
    assert f"View online: {page_url(draft)}\r\n" in parts(test_copy)[1]


def test_a_sent_draft_deleted_later_keeps_its_page_and_is_named_in_a_warning(
    cli: Cli, ws: Path
) -> None:
    draft = new_issue(cli, "Week one", "2026-03-02", "The first week.")
    send(cli, draft)
    publish(cli)
    page = ws / "site" / "issues" / draft.stem / "index.html"
    kept = page.read_bytes()
    draft.unlink()
    result = cli("publish")
    assert result.exit_code == 0, result.output
    assert f"warning: {draft.name} was sent but is not in {ws / 'drafts'}" in result.stderr
    assert page.read_bytes() == kept
    assert "Week one" not in (ws / "site" / "index.html").read_text(encoding="utf-8")
