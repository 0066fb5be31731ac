"""Markdown to sanitised HTML, inline HTML for headlines, and plain text for the text part."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digestcli.markdown import safe_url, to_html, to_inline_html, to_inline_text, to_text

HOSTILE = (
    "Body {{ 7*7 }} {% raw %} %recipient.email% -unsub-\n\n"
    "<script>alert(1)</script>\n\n"
    'Inline <a href="javascript:x">x</a> and <img src="x.png" onerror="alert(2)"> '
    'and <span onclick="alert(3)" style="color:red">styled</span>.\n\n'
    '<iframe src="https://evil.example"></iframe><style>p { color: red }</style>'
)


# ----- HTML ---------------------------------------------------------------------------------


def test_html_renders_commonmark() -> None:
    html = to_html("Hello *there*, **reader**.\n\n- one\n- two\n\n3. three\n4. four")
    assert html == (
        "<p>Hello <em>there</em>, <strong>reader</strong>.</p>\n"
        "<ul>\n<li>one</li>\n<li>two</li>\n</ul>\n"
        '<ol start="3">\n<li>three</li>\n<li>four</li>\n</ol>'
    )


def test_html_keeps_template_syntax_literal() -> None:
    html = to_html("{{ 7*7 }} {% raw %} {% if x %} %recipient.email% -unsub-")
    assert html == "<p>{{ 7*7 }} {% raw %} {% if x %} %recipient.email% -unsub-</p>"


def test_html_sanitises_scripts_handlers_styles_and_frames() -> None:
    html = to_html(HOSTILE)
    for banned in ("<script", "alert(", "javascript:", "onerror", "onclick", "style=", "iframe"):
        assert banned not in html
    assert "<a>x</a>" in html  # the javascript: link keeps its words, loses its href
    assert '<img src="x.png">' in html
    assert "<span>styled</span>" in html


def test_html_keeps_safe_links_and_drops_other_schemes() -> None:
    html = to_html(
        "[web](https://example.org/a?b=1&c=2) [mail](mailto:ed@example.org) "
        '<a href="data:text/html,hi">data</a> <a href="vbscript:x">vb</a>'
    )
    assert '<a href="https://example.org/a?b=1&amp;c=2">web</a>' in html
    assert '<a href="mailto:ed@example.org">mail</a>' in html
    assert "<a>data</a>" in html
    assert "<a>vb</a>" in html


def test_html_allows_rtl_direction() -> None:
    assert to_html('<p dir="rtl">مرحبا</p>') == '<p dir="rtl">مرحبا</p>'


def test_html_of_empty_markdown_is_empty() -> None:
    assert to_html("") == ""
    assert to_html("  \n\n") == ""


def test_inline_html_has_no_paragraph_or_block_tags() -> None:
    assert to_inline_html("Canada *bans* [TikTok](https://example.org)") == (
        'Canada <em>bans</em> <a href="https://example.org">TikTok</a>'
    )
    assert to_inline_html("A <div>block</div> <script>x()</script>headline") == ("A block headline")


FRAGMENTS = [
    "<script>alert(1)</script>",
    '<a href="javascript:alert(1)">x</a>',
    '<a href="JaVaScRiPt:alert(1)">x</a>',
    '<a href=" javascript:alert(1)">x</a>',
    "<img src=x onerror=alert(1)>",
    '<div onmouseover="alert(1)">x</div>',
    "[x](javascript:alert(1))",
    "<svg onload=alert(1)>",
    "<style>*{}</style>",
    "<iframe src=x>",
    "*em*",
    "`code`",
    "\n\n",
    "- ",
    "> ",
    "text",
    "<",
    ">",
    '"',
]


class Tags(HTMLParser):
    """Every start tag and attribute as a browser would parse them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


@given(st.lists(st.sampled_from(FRAGMENTS), max_size=12))
def test_html_never_carries_script(parts: list[str]) -> None:
    parser = Tags()
    parser.feed(to_html("".join(parts)))
    for tag, attrs in parser.tags:
        assert tag not in ("script", "style", "iframe", "svg")
        for name, value in attrs:
            assert not name.startswith("on")
            assert name != "style"
            if name in ("href", "src"):
                assert value is not None
                assert value.strip().lower().startswith(("https:", "http:", "mailto:", "x"))


# ----- text ---------------------------------------------------------------------------------


def test_text_strips_emphasis_and_keeps_paragraphs() -> None:
    assert to_text("Hello *there*, **reader** and `code()`.\n\nSecond.") == (
        "Hello there, reader and code().\n\nSecond."
    )


def test_text_marks_lists() -> None:
    source = "- one\n- two\n  1. a\n  2. b\n\n7) seven\n8) eight"
    assert to_text(source) == "- one\n- two\n  1. a\n  2. b\n\n7. seven\n8. eight"


def test_text_loose_list_items_are_separated() -> None:
    assert to_text("- one\n\n- two\n  more") == "- one\n\n- two\n  more"


def test_text_links_as_label_and_url() -> None:
    source = (
        "Read [the story](https://example.org/s), see <https://example.org/bare> "
        "or write to <mailto:ed@example.org>."
    )
    assert to_text(source) == (
        "Read the story (https://example.org/s), see https://example.org/bare "
        "or write to ed@example.org."
    )


def test_text_link_with_unsafe_scheme_keeps_only_its_label() -> None:
    assert to_text('<a href="javascript:x">x</a> [y](ftp://example.org/y)') == "x y"
    assert to_html("[y](ftp://example.org/y)") == "<p><a>y</a></p>"


def test_text_images_as_alt_and_url() -> None:
    assert to_text("![A chart](https://example.org/c.png)") == "A chart (https://example.org/c.png)"


def test_text_of_hostile_input_has_no_markup_and_literal_templates() -> None:
    text = to_text(HOSTILE)
    assert text.startswith("Body {{ 7*7 }} {% raw %} %recipient.email% -unsub-\n\n")
    for banned in ("<", "alert(", "javascript:", "color: red"):
        assert banned not in text
    assert "Inline x and  and styled." in text


def test_text_decodes_entities_and_escapes() -> None:
    assert to_text(r"Fish &amp; chips \*not emphasis\* &lt;tag&gt;") == (
        "Fish & chips *not emphasis* <tag>"
    )


def test_text_keeps_code_blocks_indented() -> None:
    assert to_text("Run:\n\n```sh\ndigest render\n  --out x\n```") == (
        "Run:\n\n    digest render\n      --out x"
    )


def test_text_quotes_blockquotes() -> None:
    assert to_text("> first\n>\n> second") == "> first\n>\n> second"


def test_text_keeps_unicode() -> None:
    source = "中文 😀 *مرحبا* שלום"
    assert to_text(source) == "中文 😀 مرحبا שלום"


def test_inline_text_of_a_headline() -> None:
    assert to_inline_text("Canada *bans* [TikTok](https://x.org) <b>now</b>") == (
        "Canada bans TikTok (https://x.org) now"
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.org/a", "https://example.org/a"),
        ("  http://example.org  ", "http://example.org"),
        ("mailto:ed@example.org", "mailto:ed@example.org"),
        ("/relative/path", "/relative/path"),
        ("javascript:alert(1)", None),
        ("JAVASCRIPT:alert(1)", None),
        ("data:text/html,x", None),
        ("java\tscript:alert(1)", None),
    ],
)
def test_safe_url(url: str, expected: str | None) -> None:
    assert safe_url(url) == expected
