"""Rendering an issue: the default theme, literal content, personalisation and the MIME files."""

from __future__ import annotations

import email
import email.policy
import re
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from digestcli.config import Publication, Settings, Unsubscribe
from digestcli.errors import TemplateError
from digestcli.message import build_message, recipient_values, to_bytes
from digestcli.models import Content, Image, Issue, Item, Link, Message, Recipient
from digestcli.render import (
    _nonce,
    inbox_snippet,
    issue_view,
    render_issue,
    sample_message,
    sample_recipient,
    write_files,
)

REPO = Path(__file__).resolve().parents[1]
THEME = REPO / "templates"
SAMPLE = REPO.parent / "shared" / "samples" / "china-digital-digest.txt"
SECRET_ENV = {"DIGEST_SECRET": "test-secret"}

HOSTILE_BODY = (
    "Template syntax {{ 7*7 }} and {% raw %} and %recipient.email% and -unsub- stay.\n\n"
    "<script>alert(1)</script>\n\n"
    'A <a href="javascript:x">x</a> link and <b onclick="alert(2)">bold</b>.'
)


def make_settings(tmp_path: Path, *, web_url: str | None = "https://example.org/web/") -> Settings:
    return Settings(
        path=tmp_path / "digest.toml",
        publication=Publication(
            name="The Test Digest",
            from_addr="The Test Digest <digest@example.org>",
            address="1 Example Street, Example City",
            reply_to="editor@example.org",
            web_url=web_url,
        ),
        unsubscribe=Unsubscribe(url="https://example.org/unsubscribe"),
    )


def make_issue(**changes: object) -> Issue:
    issue = Issue(
        title="Week 9",
        subject="Week 9: three stories",
        preheader="Three short reads for the week.",
        date="2026-03-02",
        number=9,
        intro="Hello *readers*, here is the week.",
        items=(
            Item(
                "First *story*",
                "First body.",
                Link("https://example.org/1", "Read the first"),
                Image("https://example.org/1.png", "A chart of the first story"),
            ),
            Item("Second story", "Second body.", Link("https://example.org/2")),
            Item("Third story", "Third body."),
        ),
        outro_title="Wrapping Up",
        outro="See you next week at [our site](https://example.org/).",
    )
    return replace(issue, **changes)  # type: ignore[arg-type]


def render(
    tmp_path: Path, issue: Issue | None = None, templates: Path = THEME, **settings: object
) -> Message:
    cfg = make_settings(tmp_path, **settings)  # type: ignore[arg-type]
    content = render_issue(issue or make_issue(), cfg, templates)
    return sample_message(content, cfg, tmp_path / ".digest", SECRET_ENV)


def parse(raw: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def body_of(parsed: EmailMessage, kind: str) -> str:
    part = parsed.get_body((kind,))
    assert part is not None
    # The parser keeps the wire's CRLF line ends; the message's own text uses LF.
    return str(part.get_content()).replace("\r\n", "\n")


# ----- the default theme --------------------------------------------------------------------


def test_content_carries_subject_sender_and_reply_to(tmp_path: Path) -> None:
    cfg = make_settings(tmp_path)
    content = render_issue(make_issue(), cfg, THEME)
    assert content.subject == "Week 9: three stories"
    assert content.from_addr == "The Test Digest <digest@example.org>"
    assert content.reply_to == "editor@example.org"


def test_css_is_inlined_and_the_media_query_stays(tmp_path: Path) -> None:
    html = render(tmp_path).html()
    body = html.split("<body", 1)[1]
    styles = re.findall(r"<style[^>]*>(.*?)</style>", html, re.DOTALL)
    assert len(styles) == 1
    assert styles[0].lstrip().startswith("@media (max-width: 620px)")
    assert "!important" in styles[0]  # or the inline styles would win on small screens
    assert ".headline {" not in styles[0].split("@media", 1)[0]
    assert 'style="' in body
    assert re.search(r'<h2 class="headline" style="[^"]*font-size:22px', body)
    assert re.search(r'<table role="presentation" class="sheet" width="600"', body)


def test_items_are_numbered_in_order(tmp_path: Path) -> None:
    message = render(tmp_path)
    html, text = message.html(), message.text()
    positions = [
        html.index(f">{n}.</span> {title}")
        for n, title in enumerate(("First <em>story</em>", "Second story", "Third story"), start=1)
    ]
    assert positions == sorted(positions)
    assert "1. First story\n\nFirst body.\n\n   Read the first: https://example.org/1\n" in text
    assert "2. Second story\n\nSecond body.\n\n   Read more: https://example.org/2\n" in text
    assert text.index("1. First") < text.index("2. Second") < text.index("3. Third")


def test_html_has_header_preheader_intro_items_closing_and_footer(tmp_path: Path) -> None:
    message = render(tmp_path)
    html = message.html()
    assert "<title>Week 9: three stories</title>" in html
    assert ">The Test Digest</h1>" in html
    assert "Issue 9 · 2026-03-02" in html
    preheader = re.search(r'<div class="preheader" style="display: ?none[^"]*">([^<]*)</div>', html)
    assert preheader is not None
    assert preheader.group(1).startswith("Three short reads for the week.\u200c\u00a0\u200c")
    assert "Hello <em>readers</em>, here is the week." in html
    assert re.search(
        r'<img class="item-image" src="https://example.org/1.png" '
        r'alt="A chart of the first story" width="512"',
        html,
    )
    assert re.search(r'<a href="https://example.org/1"[^>]*>Read the first\u00a0→</a>', html)
    assert re.search(r'<a href="https://example.org/2"[^>]*>Read more\u00a0→</a>', html)
    assert re.search(r'<h2 class="closing-title"[^>]*>Wrapping Up</h2>', html)
    assert "1 Example Street, Example City" in html
    assert re.search(r'<a href="https://example.org/web/"[^>]*>View in your browser</a>', html)
    url = message.values["unsubscribe_url"]
    assert url.startswith("https://example.org/unsubscribe?token=")
    assert re.search(rf'<a href="{re.escape(url)}"[^>]*>Unsubscribe</a>', html)
    assert "reader@example.org subscribed to The Test Digest" in html


def test_text_part_mirrors_the_theme(tmp_path: Path) -> None:
    message = render(tmp_path)
    url = message.values["unsubscribe_url"]
    assert message.text() == (
        "The Test Digest\n"
        "Issue 9 · 2026-03-02\n"
        "Week 9\n"
        "\n"
        "Hello readers, here is the week.\n"
        "\n\n"
        "1. First story\n\nFirst body.\n\n   Read the first: https://example.org/1\n"
        "\n\n"
        "2. Second story\n\nSecond body.\n\n   Read more: https://example.org/2\n"
        "\n\n"
        "3. Third story\n\nThird body.\n"
        "\n\n"
        "Wrapping Up\n\nSee you next week at our site (https://example.org/).\n"
        "\n\n"
        "--\n"
        "The Test Digest\n"
        "1 Example Street, Example City\n"
        "View online: https://example.org/web/\n"
        f"Unsubscribe: {url}\n"
    )


def test_no_web_url_hides_the_web_version_link(tmp_path: Path) -> None:
    message = render(tmp_path, web_url=None)
    assert "View in your browser" not in message.html()
    assert "View online" not in message.text()
    assert "Unsubscribe" in message.html()


def test_empty_sections_leave_no_trace(tmp_path: Path) -> None:
    issue = make_issue(preheader="", intro="", outro="", outro_title="", number=None, date="")
    message = render(tmp_path, issue)
    html, text = message.html(), message.text()
    assert 'class="preheader"' not in html
    assert 'class="kicker"' not in html
    assert 'class="closing' not in html
    assert text.startswith("The Test Digest\nWeek 9\n\n\n1. First story\n")


def test_unsafe_item_urls_are_dropped(tmp_path: Path) -> None:
    item = Item(
        "Bad", "Body.", Link("javascript:alert(1)", "Click"), Image("data:image/png,xx", "alt")
    )
    message = render(tmp_path, make_issue(items=(item,)))
    for part in (message.html(), message.text()):
        assert "javascript:" not in part
        assert "data:image" not in part
        assert "Click" not in part


# ----- content is data, never code ----------------------------------------------------------


def test_draft_content_is_literal_in_html_and_text(tmp_path: Path) -> None:
    issue = make_issue(
        title="{{ 7*7 }} title",
        items=(Item("Headline {{ 7*7 }} %recipient.email%", HOSTILE_BODY),),
        outro="Bye {% raw %} -unsub-",
    )
    message = render(tmp_path, issue)
    for part in (message.html(), message.text()):
        assert (
            "Template syntax {{ 7*7 }} and {% raw %} and %recipient.email% and -unsub- stay."
            in (part)
        )
        assert "{{ 7*7 }} title" in part
        assert "Headline {{ 7*7 }} %recipient.email%" in part
        assert "Bye {% raw %} -unsub-" in part
        assert "49" not in part
        assert "<script" not in part
        assert "alert(" not in part
        assert "javascript:" not in part
        assert "onclick" not in part
    assert "A <a" in message.html()  # the link keeps its words, without an href
    assert re.search(r"A <a( style=\"[^\"]*\")?>x</a> link", message.html())


def test_sentinel_shaped_content_stays_literal(tmp_path: Path) -> None:
    lookalike = "digest_0123456789abcdef_0_"
    message = render(tmp_path, make_issue(items=(Item(lookalike, lookalike),)))
    assert message.html().count(lookalike) == 2
    assert message.text().count(lookalike) == 2


def test_nonce_is_regenerated_when_content_holds_it(tmp_path: Path) -> None:
    taken = iter(["aaaa", "bbbb", "cccc"])
    issue = make_issue(intro="aaaa and BBBB")
    assert _nonce(issue, make_settings(tmp_path), lambda _: next(taken)) == "cccc"


# ----- personalisation ----------------------------------------------------------------------


PERSONAL_HTML = """<!DOCTYPE html>
<html><head><style>p { color: #333333; }</style></head>
<body><p>Hi {{ subscriber.name }} ({{ subscriber.email }}) of {{ subscriber.fields.company }}
and {{ subscriber.fields["first name"] }}.</p>
<a href="{{ unsubscribe_url }}">Unsubscribe</a></body></html>
"""
PERSONAL_TEXT = """Hi {{ subscriber.name }} of {{ subscriber.fields.company }}.
Unsubscribe: {{ unsubscribe_url }}
"""


@pytest.fixture
def personal_templates(tmp_path: Path) -> Path:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "email.html.j2").write_text(PERSONAL_HTML, encoding="utf-8")
    (folder / "email.txt.j2").write_text(PERSONAL_TEXT, encoding="utf-8")
    return folder


def test_merge_keys_are_those_recipient_values_gives(
    tmp_path: Path, personal_templates: Path
) -> None:
    content = render_issue(make_issue(), make_settings(tmp_path), personal_templates)
    recipient = Recipient("a@example.org", "A", {"company": "ACME", "first name": "Ann"})
    available = set(recipient_values(recipient, "https://u"))
    assert content.html.keys == {
        "name",
        "email",
        "fields.company",
        "fields.first name",
        "unsubscribe_url",
    }
    assert content.html.keys <= available
    assert content.text.keys == {"name", "fields.company", "unsubscribe_url"}


def test_each_recipient_gets_their_own_values(tmp_path: Path, personal_templates: Path) -> None:
    cfg = make_settings(tmp_path)
    content = render_issue(make_issue(), cfg, personal_templates)
    ann = Recipient("ann@example.org", "Ann", {"company": "ACME", "first name": "Ann"})
    bob = Recipient("bob@example.org", "Bob", {"company": "Bobco"})
    for who, token in ((ann, "t1"), (bob, "t2")):
        message = build_message(content, who, token=token, unsubscribe=cfg.unsubscribe)
        assert f"Hi {who.name} ({who.email}) of {who.fields['company']}" in message.html()
        assert f'href="https://example.org/unsubscribe?token={token}"' in message.html()
        assert message.text() == (
            f"Hi {who.name} of {who.fields['company']}.\n"
            f"Unsubscribe: https://example.org/unsubscribe?token={token}\n"
        )
    bob_message = build_message(content, bob, token="t", unsubscribe=cfg.unsubscribe)
    assert "and ." in bob_message.html()  # a field the reader lacks is empty


def test_personal_values_are_escaped_in_html_and_literal_in_text(
    tmp_path: Path, personal_templates: Path
) -> None:
    cfg = make_settings(tmp_path)
    content = render_issue(make_issue(), cfg, personal_templates)
    hostile = Recipient(
        "x@example.org", "<b>{{x}}</b>", {"company": '"><script>alert(1)</script>{% raw %}'}
    )
    message = build_message(content, hostile, token="t", unsubscribe=cfg.unsubscribe)
    html = message.html()
    assert "Hi &lt;b&gt;{{x}}&lt;/b&gt; (x@example.org)" in html
    assert "of &quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;{% raw %}" in html
    assert "<b>" not in html
    assert "<script" not in html
    assert message.text().startswith('Hi <b>{{x}}</b> of "><script>alert(1)</script>{% raw %}.\n')


def test_a_filtered_personal_value_is_a_template_error(
    tmp_path: Path, personal_templates: Path
) -> None:
    (personal_templates / "email.txt.j2").write_text("Hi {{ subscriber.name|upper }}\n")
    with pytest.raises(TemplateError, match=r"email\.txt\.j2: a per-recipient value"):
        render_issue(make_issue(), make_settings(tmp_path), personal_templates)


# ----- template errors ----------------------------------------------------------------------


@pytest.fixture
def theme_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "theme"
    shutil.copytree(THEME, folder)
    return folder


def test_missing_template_names_the_file(tmp_path: Path, theme_copy: Path) -> None:
    (theme_copy / "email.txt.j2").unlink()
    with pytest.raises(TemplateError) as caught:
        render_issue(make_issue(), make_settings(tmp_path), theme_copy)
    message = str(caught.value)
    assert message.startswith(str(theme_copy / "email.txt.j2"))
    assert "does not exist" in message
    assert "\n" not in message


def test_syntax_error_names_file_and_line(tmp_path: Path, theme_copy: Path) -> None:
    (theme_copy / "email.txt.j2").write_text("line one\n{{ issue.title }}\n{% if %}\n")
    with pytest.raises(TemplateError) as caught:
        render_issue(make_issue(), make_settings(tmp_path), theme_copy)
    assert str(caught.value).startswith(f"{theme_copy / 'email.txt.j2'}, line 3: ")
    assert "fix the template syntax there" in str(caught.value)


def test_undefined_variable_names_file_and_line(tmp_path: Path, theme_copy: Path) -> None:
    (theme_copy / "email.txt.j2").write_text("{{ issue.title }}\n\n{{ issue.headline }}\n")
    with pytest.raises(TemplateError) as caught:
        render_issue(make_issue(), make_settings(tmp_path), theme_copy)
    message = str(caught.value)
    assert message.startswith(
        f"{theme_copy / 'email.txt.j2'}, line 3: issue has no attribute 'headline'; fix that line"
    )
    assert "templates may use issue, publication, subscriber" in message


def test_error_in_a_partial_names_the_partial(tmp_path: Path, theme_copy: Path) -> None:
    partial = theme_copy / "partials" / "item.html.j2"
    partial.write_text(partial.read_text() + "{{ item.no_such_field }}\n")
    with pytest.raises(TemplateError) as caught:
        render_issue(make_issue(), make_settings(tmp_path), theme_copy)
    lines = len(partial.read_text().splitlines())
    assert str(caught.value).startswith(f"{partial}, line {lines}: ")


def test_missing_partial_names_the_including_line(tmp_path: Path, theme_copy: Path) -> None:
    (theme_copy / "partials" / "footer.html.j2").unlink()
    with pytest.raises(TemplateError) as caught:
        render_issue(make_issue(), make_settings(tmp_path), theme_copy)
    message = str(caught.value)
    assert re.match(
        rf"{re.escape(str(theme_copy / 'email.html.j2'))}, line \d+: includes ", message
    )
    assert str(theme_copy / "partials" / "footer.html.j2") in message


# ----- Unicode and the files ----------------------------------------------------------------


UNICODE_ISSUE = make_issue(
    subject="Weekly 中文 digest 😀 — مرحبا שלום",
    preheader="预览 😀",
    items=(
        Item("中国数字 😀", "正文 **加粗** 😀", Link("https://example.org/zh", "阅读全文")),
        Item("مرحبا بالعالم", "نص عربي"),
        Item("שלום עולם", "טקסט בעברית"),
    ),
)
UNICODE_WORDS = ("中国数字 😀", "正文", "加粗", "阅读全文", "مرحبا بالعالم", "نص عربي", "שלום עולם")


def test_unicode_survives_into_html_text_and_eml(tmp_path: Path) -> None:
    message = render(tmp_path, UNICODE_ISSUE)
    files = write_files(message, tmp_path / "out")
    html = files.html.read_text(encoding="utf-8")
    text = files.text.read_text(encoding="utf-8")
    raw = files.eml.read_bytes()
    parsed = parse(raw)
    for word in UNICODE_WORDS:
        assert word in html
        assert word in text
        assert word in body_of(parsed, "html")
        assert word in body_of(parsed, "plain")
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")  # headers are 7-bit on the wire
    subject = re.search(r"^Subject: (.*(?:\r\n[ \t].*)*)", head, re.MULTILINE)
    assert subject is not None
    assert "=?utf-8?" in subject.group(1)  # RFC 2047 encoded words
    assert parsed["Subject"] == "Weekly 中文 digest 😀 — مرحبا שלום"
    assert 'dir="auto"' in html


def test_eml_is_multipart_alternative_text_then_html(tmp_path: Path) -> None:
    message = render(tmp_path)
    files = write_files(message, tmp_path / "out")
    assert [p.name for p in (files.html, files.text, files.eml)] == [
        "issue.html",
        "issue.txt",
        "issue.eml",
    ]
    parsed = parse(files.eml.read_bytes())
    assert parsed.get_content_type() == "multipart/alternative"
    parts = list(parsed.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in parts)
    assert body_of(parsed, "plain") == message.text()
    assert body_of(parsed, "html") == message.html()
    assert files.html.read_text(encoding="utf-8") == message.html()
    assert files.text.read_text(encoding="utf-8") == message.text()
    assert parsed["To"] == "Sample Reader <reader@example.org>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_sample_recipient() -> None:
    assert sample_recipient() == Recipient("reader@example.org", "Sample Reader")


def test_inbox_snippet_is_the_preheader_or_the_start_of_the_body(tmp_path: Path) -> None:
    assert inbox_snippet(render(tmp_path).html()) == "Three short reads for the week."
    bare = render(tmp_path, make_issue(preheader=""))
    assert inbox_snippet(bare.html()).startswith("Issue 9 · 2026-03-02 The Test Digest Week 9")


def test_issue_view_renders_markdown_once_for_both_parts() -> None:
    view = issue_view(make_issue())
    assert [item.number for item in view.items] == [1, 2, 3]
    assert view.items[0].title_html == "First <em>story</em>"
    assert view.items[0].title_text == "First story"
    assert view.intro_html == "<p>Hello <em>readers</em>, here is the week.</p>"


def test_rendering_is_once_per_issue_and_cheap_per_recipient(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import jinja2
    import premailer

    # Spies that count and pass through: the rendering itself stays real.
    calls: Counter[str] = Counter()

    def counting(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            calls[name] += 1
            return original(*args, **kwargs)

        return counted

    monkeypatch.setattr(jinja2.Template, "render", counting("jinja", jinja2.Template.render))
    monkeypatch.setattr(
        premailer.Premailer, "transform", counting("premailer", premailer.Premailer.transform)
    )
    cfg = make_settings(tmp_path)
    content = render_issue(make_issue(), cfg, THEME)
    assert isinstance(content, Content)
    once = {"jinja": 2, "premailer": 1}  # the HTML and text templates; the HTML inlined once
    assert calls == once
    messages = [
        build_message(
            content,
            Recipient(f"reader{n}@example.org", f"Reader {n}"),
            token=f"t{n}",
            unsubscribe=cfg.unsubscribe,
        )
        for n in range(25)
    ]
    for message in messages:
        assert message.html() and message.text() and to_bytes(message, date=0)
    # Per recipient, the slots are filled: no template runs and no CSS is inlined again.
    assert calls == once
    # Same literals for everyone: the per-recipient step only fills the slots.
    first, second = messages[:2]
    assert first.html().replace("reader0", "").replace("Reader 0", "").replace("token=t0", "") == (
        second.html().replace("reader1", "").replace("Reader 1", "").replace("token=t1", "")
    )


# ----- the real sample ----------------------------------------------------------------------


def sample_issue() -> Issue:
    """The sample newsletter as an Issue: intro, numbered items, 'Wrapping Up' closing."""
    if not SAMPLE.is_file():
        pytest.skip(f"{SAMPLE} is not available")
    lines = [line for line in SAMPLE.read_text(encoding="utf-8").splitlines() if line.strip()]
    intro, rest = lines[0], lines[1:]
    items: list[Item] = []
    outro: list[str] = []
    for line in rest:
        heading = re.match(r"^(\d+)\. (.+)$", line)
        if outro or line == "Wrapping Up":
            outro.append(line)
        elif heading:
            items.append(Item(heading.group(2)))
        else:
            last = items[-1]
            items[-1] = replace(last, body=f"{last.body}\n\n{line}".strip())
    return Issue(
        title="China's Digital Digest",
        subject="China\u2019s Digital Digest: TikTok bans, Alibaba Cloud and more",
        preheader="Nine updates from China's social media landscape.",
        intro=intro,
        items=tuple(items),
        outro_title=outro[0],
        outro="\n\n".join(outro[1:]),
    )


def test_the_sample_newsletter_renders_end_to_end(tmp_path: Path) -> None:
    issue = sample_issue()
    assert len(issue.items) == 9
    message = render(tmp_path, issue)
    html, text = message.html(), message.text()
    for number, item in enumerate(issue.items, start=1):
        assert f">{number}.</span> {item.title}</h2>" in html
        assert f"{number}. {item.title}\n" in text
    assert html.index("Canada Bans TikTok") < html.index("EU Officials Told")
    assert re.search(r"<p[^>]*>Hi folks, we are back with our weekly edition", html)
    assert re.search(r'<h2 class="closing-title"[^>]*>Wrapping Up</h2>', html)
    assert "“an unacceptable level of risk to privacy and security.”" in text
    assert len(html.encode()) < 102 * 1024
    parsed = parse(to_bytes(message))
    assert parsed["Subject"] == issue.subject
