"""Fetched text in a draft: shown exactly as written, never as markup (properties)."""

from __future__ import annotations

import html

from hypothesis import given
from hypothesis import strategies as st

from digestcli import markdown
from digestcli.fetch import decode, sniff_charset
from digestcli.plaintext import markdown_literal, one_line, shorten, summary, web_url

# Any text, with Markdown's and HTML's special characters made likely.
TEXT = st.text(
    st.characters(codec="utf-8", categories=["L", "N", "P", "S", "Zs"])
    | st.sampled_from(list("<>&;#*_`[]()!\\-+=.:/ 0123456789abcxyz{}%|~\"'")),
    max_size=60,
)


@given(TEXT)
def test_escaped_text_renders_as_itself_in_a_headline(text: str) -> None:
    line = one_line(text)
    assert html.unescape(markdown.to_inline_html(markdown_literal(line))) == line
    assert markdown.to_inline_text(markdown_literal(line)) == line


@given(TEXT)
def test_escaped_text_renders_as_one_paragraph_of_itself_in_a_body(text: str) -> None:
    line = one_line(text)
    rendered = markdown.to_html(markdown_literal(line))
    assert html.unescape(rendered) == (f"<p>{line}</p>" if line else "")
    assert markdown.to_text(markdown_literal(line)) == line


def test_escaping_leaves_ordinary_text_alone() -> None:
    assert markdown_literal("R&D spending < 5% in 2026: why?") == "R&D spending < 5% in 2026: why?"
    assert markdown_literal("1984. A year") == r"1984\. A year"
    assert markdown_literal("<b>&amp; [x](y)") == r"\<b>\&amp; \[x\](y)"


def test_summary_strips_html_and_cuts_at_a_word() -> None:
    fragment = "<p>One <b>two</b>\n\n three.</p><script>var x = 1;</script><style>p{}</style>"
    assert summary(fragment) == "One two three."
    assert shorten("alpha beta gamma delta", 15) == "alpha beta…"
    assert len(summary("word " * 200, 300)) <= 300


def test_charset_from_meta_or_header() -> None:
    page = '<meta charset="windows-1252"><title>Caf\u00e9</title>'.encode("cp1252")
    assert sniff_charset(page) == "windows-1252"
    assert "Caf\u00e9" in decode(page, None)
    assert "Caf\u00e9" in decode("Caf\u00e9".encode("cp1252"), "iso-8859-1")
    assert decode("\ufeffCaf\u00e9".encode(), "windows-1252") == "Caf\u00e9"


def test_links_from_pages_and_feeds_are_absolute_http_or_nothing() -> None:
    base = "https://example.org/feed/"
    assert web_url("/2026/story", base) == "https://example.org/2026/story"
    assert web_url(" next ", base) == "https://example.org/feed/next"
    for bad in (
        "javascript:alert(1)",
        "data:text/html,x",
        "https://exa mple.org/",
        "mailto:a@example.org",
        "",
    ):
        assert web_url(bad, base) is None
    assert web_url("https://example.org/a\x01b", base) is None
    assert web_url(None, base) is None
