"""The pre-send checks, each with a passing and a failing case, on rendered or hand-made mail."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from digestcli.checks import (
    CLIP_WARNING_BYTES,
    PREHEADER_MAX,
    SUBJECT_MAX,
    Finding,
    error_checks,
    format_finding,
    raise_for_errors,
    run_checks,
    summary,
)
from digestcli.config import Publication, Settings, Unsubscribe
from digestcli.errors import DraftError
from digestcli.linkcheck import LinkOptions
from digestcli.message import build_message
from digestcli.models import Content, Image, Issue, Item, Link, MergeText, Message
from digestcli.render import GMAIL_CLIP_BYTES, render_issue, sample_message, sample_recipient

REPO = Path(__file__).resolve().parents[1]
THEME = REPO / "templates"
SECRET_ENV = {"DIGEST_SECRET": "checks-secret"}
ADDRESS = "1 Harbour Lane, Port Town"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        path=tmp_path / "digest.toml",
        publication=Publication(
            name="The Test Digest",
            from_addr="The Test Digest <digest@dispatch.news>",
            address=ADDRESS,
            web_url="https://dispatch.news/web/",
        ),
        unsubscribe=Unsubscribe(url="https://dispatch.news/unsubscribe", mailto="u@dispatch.news"),
    )


def make_issue(**changes: object) -> Issue:
    """A draft with nothing to complain about."""
    issue = Issue(
        title="Week 9",
        subject="Week 9: three stories",
        preheader="Three short reads for the week.",
        date="2026-03-02",
        number=9,
        intro="Hello *readers*, here is the week.",
        items=(
            Item(
                "First story",
                "First body with [a source](https://papers.dispatch.news/a).",
                Link("https://dispatch.news/1", "Read the first"),
                Image("https://dispatch.news/1.png", "A chart of the first story"),
            ),
            Item("Second story", "Second body.", Link("https://dispatch.news/2")),
            Item("Third story", "Third body."),
        ),
        outro_title="Wrapping Up",
        outro="See you next week at [our site](https://dispatch.news/).",
    )
    return replace(issue, **changes)  # type: ignore[arg-type]


def with_item(number: int, **changes: object) -> Issue:
    """The clean draft with item `number` changed."""
    items = list(make_issue().items)
    items[number - 1] = replace(items[number - 1], **changes)  # type: ignore[arg-type]
    return make_issue(items=tuple(items))


def rendered(issue: Issue, settings: Settings, tmp_path: Path, theme: Path = THEME) -> Message:
    content = render_issue(issue, settings, theme)
    return sample_message(content, settings, tmp_path / ".digest", SECRET_ENV)


def check(issue: Issue, settings: Settings, tmp_path: Path, theme: Path = THEME) -> list[Finding]:
    return run_checks(issue, rendered(issue, settings, tmp_path, theme), settings)


def codes(findings: list[Finding]) -> list[tuple[str, str, str]]:
    return [(f.level, f.code, f.where) for f in findings]


FOOTER_HTML = f'<p>{ADDRESS}</p><p><a href="{{{{unsubscribe_url}}}}">Unsubscribe</a></p>'
FOOTER_TEXT = f"{ADDRESS}\nUnsubscribe: {{{{unsubscribe_url}}}}\n"


def merge(text: str) -> MergeText:
    """MergeText from a string with {{key}} slots."""
    return MergeText(tuple(re.split(r"\{\{([\w.]+)\}\}", text)))


def handmade(
    settings: Settings,
    body: str,
    *,
    head: str = "",
    footer: str = FOOTER_HTML,
    text: str = FOOTER_TEXT,
) -> Message:
    """A message as a custom template could render it: preheader, body, footer."""
    html = (
        f"<!DOCTYPE html><html><head>{head}</head><body>"
        f"<div>Three short reads for the week.{chr(0x200C) * 4}</div>{body}{footer}</body></html>"
    )
    content = Content("Week 9", settings.publication.from_addr, merge(html), merge(text))
    token = "tok"
    return build_message(content, sample_recipient(), token=token, unsubscribe=settings.unsubscribe)


def check_handmade(settings: Settings, body: str, **parts: str) -> list[Finding]:
    return run_checks(make_issue(), handmade(settings, body, **parts), settings)


# ----- the clean draft -----------------------------------------------------------------------


def test_a_clean_draft_with_the_default_theme_has_no_findings(
    settings: Settings, tmp_path: Path
) -> None:
    assert check(make_issue(), settings, tmp_path) == []


def test_findings_print_as_one_line_with_their_code() -> None:
    finding = Finding("warning", "subject-long", "The subject is long; shorten it.", "subject")
    assert format_finding(finding) == "warning: The subject is long; shorten it. [subject-long]"
    assert finding.as_dict() == {
        "level": "warning",
        "code": "subject-long",
        "message": "The subject is long; shorten it.",
        "where": "subject",
    }
    error = Finding("error", "x", "y.", "z")
    assert summary([]) == "0 errors, 0 warnings"
    assert summary([error, finding, finding]) == "1 error, 2 warnings"


# ----- size ----------------------------------------------------------------------------------


def big_body(size: int) -> str:
    """About `size` bytes of Markdown paragraphs."""
    return "\n\n".join(["word " * 199 + "word."] * (size // 1000 + 1))


def test_a_message_above_gmails_clipping_is_an_error(settings: Settings, tmp_path: Path) -> None:
    issue = with_item(2, body=big_body(110 * 1024))
    message = rendered(issue, settings, tmp_path)
    assert len(message.html().encode()) > GMAIL_CLIP_BYTES
    findings = run_checks(issue, message, settings)
    [size] = [f for f in findings if f.code == "html-size"]
    assert size.level == "error" and size.where == "HTML part"
    assert "above the 102 KB at which Gmail clips" in size.message
    assert findings[0] == size  # errors come first


def test_a_message_near_the_clipping_is_a_warning(settings: Settings, tmp_path: Path) -> None:
    base = len(rendered(make_issue(), settings, tmp_path).html().encode())
    middle = (CLIP_WARNING_BYTES + GMAIL_CLIP_BYTES) // 2
    issue = with_item(2, body=big_body(middle - base))
    size = len(rendered(issue, settings, tmp_path).html().encode())
    assert CLIP_WARNING_BYTES < size <= GMAIL_CLIP_BYTES
    findings = check(issue, settings, tmp_path)
    assert [(f.level, f.code) for f in findings] == [("warning", "html-size")]
    assert "close to the 102 KB" in findings[0].message


# ----- subject and preheader -----------------------------------------------------------------


def test_a_long_subject_is_a_warning(settings: Settings, tmp_path: Path) -> None:
    exact = make_issue(subject="S" * SUBJECT_MAX)
    assert check(exact, settings, tmp_path) == []
    findings = check(make_issue(subject="S" * (SUBJECT_MAX + 1)), settings, tmp_path)
    assert codes(findings) == [("warning", "subject-long", "subject")]
    assert f"The subject is {SUBJECT_MAX + 1} characters" in findings[0].message


def test_an_empty_subject_is_an_error(settings: Settings, tmp_path: Path) -> None:
    findings = check(make_issue(subject="  "), settings, tmp_path)
    assert codes(findings) == [("error", "subject-empty", "subject")]
    assert "`digest set subject TEXT`" in findings[0].message


def test_a_missing_preheader_shows_what_inboxes_will_show(
    settings: Settings, tmp_path: Path
) -> None:
    findings = check(make_issue(preheader=""), settings, tmp_path)
    assert codes(findings) == [("warning", "preheader-empty", "preheader")]
    assert "inboxes show “Issue 9 · 2026-03-02 The Test Digest" in findings[0].message


def test_a_long_preheader_is_a_warning(settings: Settings, tmp_path: Path) -> None:
    assert check(make_issue(preheader="p" * PREHEADER_MAX), settings, tmp_path) == []
    findings = check(make_issue(preheader="p" * (PREHEADER_MAX + 1)), settings, tmp_path)
    assert codes(findings) == [("warning", "preheader-long", "preheader")]


def test_a_template_that_hides_the_preheader_is_a_warning(settings: Settings) -> None:
    message = handmade(settings, "<p>Body first.</p>")
    issue = make_issue(preheader="Something else entirely.")
    findings = run_checks(issue, message, settings)
    assert codes(findings) == [("warning", "preheader-hidden", "preheader")]


# ----- images --------------------------------------------------------------------------------


def test_an_item_image_without_alt_text_is_a_warning(settings: Settings, tmp_path: Path) -> None:
    issue = with_item(1, image=Image("https://dispatch.news/1.png", ""))
    findings = check(issue, settings, tmp_path)
    assert codes(findings) == [("warning", "image-alt", "item 1")]
    assert findings[0].message.startswith("The image of item 1 “First story” has no alt text")


def test_a_body_image_needs_alt_text_and_a_width(settings: Settings, tmp_path: Path) -> None:
    issue = with_item(3, body="Look: ![](https://dispatch.news/chart.png)")
    findings = check(issue, settings, tmp_path)
    assert codes(findings) == [
        ("warning", "image-alt", "item 3"),
        ("warning", "image-width", "item 3"),
    ]
    assert "https://dispatch.news/chart.png in item 3 “Third story”" in findings[0].message
    described = '<img src="https://dispatch.news/chart.png" alt="A chart" width="600">'
    assert check(with_item(3, body=described), settings, tmp_path) == []


def test_template_images_need_alt_text_and_a_width(settings: Settings) -> None:
    findings = check_handmade(settings, '<img src="https://dispatch.news/logo.png">')
    assert codes(findings) == [
        ("warning", "image-alt", "template"),
        ("warning", "image-width", "template"),
    ]
    assert "in the template" in findings[0].message
    good = '<img src="https://dispatch.news/logo.png" alt="Logo" width="120">'
    assert check_handmade(settings, good) == []


def test_a_repeated_template_image_is_reported_once(settings: Settings) -> None:
    logo = '<img src="https://dispatch.news/logo.png" alt="Logo">'
    findings = check_handmade(settings, logo * 3)
    assert codes(findings) == [("warning", "image-width", "template")]


# ----- footer: unsubscribe link and postal address -------------------------------------------


def test_the_default_theme_has_both_unsubscribe_links_and_the_address(
    settings: Settings,
) -> None:
    assert check_handmade(settings, "<p>Body.</p>") == []


def test_no_unsubscribe_link_in_the_html_is_an_error(settings: Settings) -> None:
    findings = check_handmade(settings, "<p>Body.</p>", footer=f"<p>{ADDRESS}</p>")
    assert codes(findings) == [("error", "no-unsubscribe", "email.html.j2")]
    assert error_checks(make_issue(), handmade(settings, "", footer=""), settings)


def test_an_unsubscribe_url_that_is_not_a_link_is_an_error(settings: Settings) -> None:
    footer = f"<p>{ADDRESS}</p><p>Unsubscribe: {{{{unsubscribe_url}}}}</p>"
    findings = check_handmade(settings, "<p>Body.</p>", footer=footer)
    assert codes(findings) == [("error", "no-unsubscribe", "email.html.j2")]
    assert "but not as a link" in findings[0].message


def test_another_personal_link_is_not_the_unsubscribe_link(settings: Settings) -> None:
    footer = f'<p>{ADDRESS}</p><a href="mailto:{{{{email}}}}">You</a> {{{{unsubscribe_url}}}}'
    findings = check_handmade(settings, "<p>Body.</p>", footer=footer)
    assert codes(findings) == [("error", "no-unsubscribe", "email.html.j2")]


def test_no_unsubscribe_link_in_the_text_is_an_error(settings: Settings) -> None:
    findings = check_handmade(settings, "<p>Body.</p>", text=f"{ADDRESS}\n")
    assert codes(findings) == [("error", "no-unsubscribe", "email.txt.j2")]


def test_no_postal_address_is_an_error_in_each_part(settings: Settings) -> None:
    footer = '<p><a href="{{unsubscribe_url}}">Unsubscribe</a></p>'
    findings = check_handmade(settings, "", footer=footer, text="Unsubscribe: {{unsubscribe_url}}")
    assert codes(findings) == [
        ("error", "no-address", "email.html.j2"),
        ("error", "no-address", "email.txt.j2"),
    ]


def test_an_address_split_over_markup_and_lines_still_counts(settings: Settings) -> None:
    footer = (
        '<p>1 Harbour <b>Lane</b>,\n   Port&nbsp;Town</p><a href="{{unsubscribe_url}}">Stop</a>'
    )
    text = "1 Harbour Lane,\nPort Town\nUnsubscribe: {{unsubscribe_url}}"
    assert check_handmade(settings, "", footer=footer, text=text) == []


def test_no_address_in_the_settings_is_an_error(settings: Settings) -> None:
    blank = replace(settings, publication=replace(settings.publication, address=" "))
    findings = run_checks(make_issue(), handmade(blank, "<p>Body.</p>"), blank)
    assert codes(findings) == [("error", "no-address", "digest.toml")]


# ----- unsupported CSS -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("style", "label"),
    [
        ("display: flex", "display: flex"),
        ("display:inline-grid", "display: grid"),
        ("position: absolute; top: 0", "position: absolute/fixed"),
        ("float: left", "float"),
        ("background: #fff url('https://dispatch.news/bg.png')", "background-image"),
        ("color: var(--accent)", "CSS variables"),
        ("--accent: red", "CSS variables"),
        ("transform: rotate(2deg)", "transform"),
        ("animation: spin 1s", "animation/transition"),
    ],
)
def test_unsupported_css_in_a_style_attribute_is_a_warning(
    settings: Settings, style: str, label: str
) -> None:
    findings = check_handmade(settings, f'<div class="row" style="{style}">x</div>')
    assert codes(findings) == [("warning", "unsupported-css", '<div class="row"> style')]
    assert f'The template\'s CSS uses `{label}` (<div class="row"> style):' in findings[0].message


@pytest.mark.parametrize(
    ("css", "label"),
    [
        ("@media (max-width: 600px) { .a { display: flex !important; } }", "display: flex"),
        ("@import url('https://fonts.dispatch.news/a.css');", "@import"),
        ("@font-face { font-family: Brand; src: url(brand.woff); }", "@font-face"),
    ],
)
def test_unsupported_css_in_a_style_block_is_a_warning(
    settings: Settings, css: str, label: str
) -> None:
    findings = check_handmade(settings, "<p>x</p>", head=f"<style>{css}</style>")
    assert codes(findings) == [("warning", "unsupported-css", "<style> block")]
    assert f"`{label}`" in findings[0].message


def test_css_findings_are_counted_not_repeated(settings: Settings) -> None:
    body = '<div style="float: left">a</div><p style="float:right">b</p><i style="float:none">c</i>'
    findings = check_handmade(settings, body)
    assert [f.message for f in findings] == [
        "The template's CSS uses `float` (<div> style and 1 more place): Outlook for "
        'Windows ignores it; use align="left" or align="right" on a table or image.'
    ]


def test_an_external_stylesheet_is_a_warning(settings: Settings) -> None:
    head = '<link rel="stylesheet" href="https://dispatch.news/mail.css">'
    findings = check_handmade(settings, "<p>x</p>", head=head)
    assert codes(findings) == [("warning", "unsupported-css", "<head>")]


def test_supported_css_and_comments_pass(settings: Settings) -> None:
    head = "<style>/* display: flex */ @media (max-width: 600px) { .a { width: 100% } }</style>"
    body = '<td style="display: block; max-width: 600px; background-color: #fff">x</td>'
    assert check_handmade(settings, body, head=head) == []


# ----- placeholders and structure ------------------------------------------------------------


@pytest.mark.parametrize(
    ("issue", "where", "found"),
    [
        (with_item(2, body="TODO: write this. Lorem ipsum dolor."), "item 2", "TODO, Lorem ipsum"),
        (with_item(3, title="TK headline"), "item 3", "TK"),
        (with_item(1, body="See [link] for more."), "item 1", "[link]"),
        (make_issue(intro="Hello XXX,"), "intro", "XXX"),
        (make_issue(subject="FIXME subject"), "subject", "FIXME"),
        (make_issue(outro="Bye [insert link here]."), "outro", "[insert link here]"),
    ],
)
def test_placeholder_text_is_a_warning(
    settings: Settings, tmp_path: Path, issue: Issue, where: str, found: str
) -> None:
    findings = check(issue, settings, tmp_path)
    assert codes(findings) == [("warning", "placeholder", where)]
    assert f"still has placeholder text ({found})" in findings[0].message


def test_words_that_merely_contain_placeholders_pass(settings: Settings, tmp_path: Path) -> None:
    issue = with_item(2, body="A todo app, TKO in the fourth, XXXL shirts and Tk widgets.")
    assert check(issue, settings, tmp_path) == []


@pytest.mark.parametrize(
    ("issue", "where", "url"),
    [
        (
            with_item(2, link=Link("https://example.com/story")),
            "item 2",
            "https://example.com/story",
        ),
        (
            with_item(3, body="[Source](http://www.example.org/x)"),
            "item 3",
            "http://www.example.org/x",
        ),
        (with_item(3, body="[Source](#)"), "item 3", "#"),
        (make_issue(outro="[Archive](https://archive.test/)"), "outro", "https://archive.test/"),
    ],
)
def test_placeholder_links_are_warnings(
    settings: Settings, tmp_path: Path, issue: Issue, where: str, url: str
) -> None:
    findings = check(issue, settings, tmp_path)
    assert codes(findings) == [("warning", "placeholder", where)]
    assert f"points to `{url}`, a placeholder address" in findings[0].message


def test_an_empty_link_target_is_a_warning(settings: Settings, tmp_path: Path) -> None:
    findings = check(with_item(3, body="[Source]() here."), settings, tmp_path)
    assert codes(findings) == [("warning", "placeholder", "item 3")]
    assert "points to an empty address" in findings[0].message


def test_a_relative_link_is_a_warning(settings: Settings, tmp_path: Path) -> None:
    findings = check(with_item(3, body="[Source](/story/3)"), settings, tmp_path)
    assert codes(findings) == [("warning", "relative-link", "item 3")]
    assert "`/story/3`" in findings[0].message


def test_items_without_titles_or_bodies(settings: Settings, tmp_path: Path) -> None:
    issue = make_issue(items=(Item("First", "Body."), Item("  ", "Body."), Item("Third", "")))
    findings = check(issue, settings, tmp_path)
    assert codes(findings) == [
        ("error", "item-untitled", "item 2"),
        ("warning", "item-empty", "item 3"),
    ]
    assert findings[1].message == (
        "Item 3 “Third” has no body text; write one with `digest edit 3` or remove it with "
        "`digest remove 3`."
    )


def test_a_draft_without_items_is_an_error(settings: Settings, tmp_path: Path) -> None:
    findings = check(make_issue(items=()), settings, tmp_path)
    assert codes(findings) == [("error", "no-items", "items")]


def test_a_draft_without_intro_or_outro_gets_warnings(settings: Settings, tmp_path: Path) -> None:
    findings = check(make_issue(intro="", outro="", outro_title=""), settings, tmp_path)
    assert codes(findings) == [("warning", "no-intro", "intro"), ("warning", "no-outro", "outro")]


def test_a_draft_without_a_title_is_an_error(settings: Settings, tmp_path: Path) -> None:
    findings = check(make_issue(title=""), settings, tmp_path)
    assert ("error", "no-title", "title") in codes(findings)


# ----- links (network) -----------------------------------------------------------------------


def test_links_are_resolved_once_each_without_per_recipient_or_mailto_urls(
    settings: Settings, tmp_path: Path
) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(404 if request.url.path == "/2" else 200)

    issue = with_item(2, body="Also [here](https://dispatch.news/2) and [mail](mailto:a@b.news).")
    options = LinkOptions(transport=httpx.MockTransport(handler))
    findings = run_checks(issue, rendered(issue, settings, tmp_path), settings, links=options)
    assert sorted(seen) == [
        "https://dispatch.news/",
        "https://dispatch.news/1",
        "https://dispatch.news/1.png",
        "https://dispatch.news/2",
        "https://dispatch.news/web/",
        "https://papers.dispatch.news/a",
    ]
    assert codes(findings) == [("warning", "broken-link", "item 2")]
    assert findings[0].message == (
        "The link https://dispatch.news/2 in item 2 “Second story” answered 404 Not Found; "
        "fix or remove it."
    )


def test_an_items_link_is_checked_even_when_the_template_leaves_it_out(
    settings: Settings,
) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200)

    options = LinkOptions(transport=httpx.MockTransport(handler))
    run_checks(make_issue(), handmade(settings, "<p>x</p>"), settings, links=options)
    assert sorted(seen) == [
        "https://dispatch.news/1",
        "https://dispatch.news/1.png",
        "https://dispatch.news/2",
    ]


# ----- what `digest send` calls --------------------------------------------------------------


def test_error_checks_keep_only_errors(settings: Settings, tmp_path: Path) -> None:
    issue = with_item(2, body=big_body(110 * 1024) + "\n\nTODO")
    findings = error_checks(issue, rendered(issue, settings, tmp_path), settings)
    assert codes(findings) == [("error", "html-size", "HTML part")]


def test_raise_for_errors_names_the_draft_and_the_first_error() -> None:
    warning = Finding("warning", "subject-long", "Long.", "subject")
    raise_for_errors([warning], Path("drafts/week-9.md"))
    errors = [
        Finding("error", "no-items", "The draft has no items; add one with `digest add`.", "items"),
        Finding("error", "no-address", "No address.", "digest.toml"),
    ]
    with pytest.raises(DraftError) as caught:
        raise_for_errors([warning, *errors], Path("drafts/week-9.md"))
    assert str(caught.value) == (
        "week-9.md is not ready to send: The draft has no items; add one with `digest add` "
        "(and 1 more error); `digest check` lists every problem."
    )
    assert caught.value.status == 4
