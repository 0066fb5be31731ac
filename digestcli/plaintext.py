"""Fetched text made safe for a draft: tags stripped, one line, Markdown-escaped; links http(s)."""

from __future__ import annotations

import re
from functools import cache
from typing import Any
from urllib.parse import urljoin, urlsplit

# What makes inline Markdown or raw HTML in a line: emphasis, code, links and images, a
# tag or autolink (`<` before a letter, `/`, `!` or `?`), an entity (`&name;`). Escaping
# just these (CommonMark allows a backslash before any ASCII punctuation) keeps fetched text
# literal, `<script>` stays text and `[x](javascript:…)` never becomes a link, while the
# draft stays readable: "R&D < 5%" is written as it is. `{{ 7*7 }}` needs nothing more:
# draft text is never a template.
_INLINE = re.compile(r"[\\`*_\[\]]|<(?=[A-Za-z/!?])|&(?=#?[A-Za-z0-9]+;)")
# What starts a block at the beginning of a line: a heading, a quote, a list, a rule, a fence.
_BLOCK_START = re.compile(r"^(#|>|~|[-+=]|\d{1,9}[.)])")
_SPACE = re.compile(r"\s+")
# Control characters other than tab and newline, which nothing should carry into a draft.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")
_BLOCK_TAG = re.compile(r"</?(?:p|br|div|li|h[1-6]|tr|td|th|blockquote|pre|ul|ol)\b", re.I)


@cache
def _text_only() -> Any:
    """An nh3 cleaner that keeps no tag at all, and drops what script and style hold."""
    # nh3 is a real HTML parser (html5ever); on feed summaries it is four times faster than
    # html.parser, which was a fifth of a 50-feed collect's CPU time.
    import nh3

    return nh3.Cleaner(
        tags=set(), clean_content_tags={"script", "style", "template", "noscript", "title"}
    )


def strip_html(fragment: str) -> str:
    """The visible words of an HTML fragment, as plain text (script and style dropped)."""
    if "<" not in fragment and "&" not in fragment:
        return fragment
    import html

    # A space where a block starts or ends, so "one.</p><p>Two" reads "one. Two".
    spaced = _BLOCK_TAG.sub(r" \g<0>", fragment)
    return html.unescape(_text_only().clean(spaced))


def one_line(text: str) -> str:
    """Text with control characters dropped and every run of white space made one space."""
    return _SPACE.sub(" ", _CONTROL.sub("", text)).strip()


def shorten(text: str, limit: int) -> str:
    """Text cut to at most `limit` characters at a word boundary, with an ellipsis if cut."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:.-") + "…"


def markdown_literal(text: str) -> str:
    """Plain one-line text escaped so that Markdown shows it as written, never as markup."""
    escaped = _INLINE.sub(lambda found: "\\" + found.group(0), text)
    return _BLOCK_START.sub(_escape_start, escaped, count=1)


def _escape_start(found: re.Match[str]) -> str:
    mark = found.group(1)
    # A backslash escapes punctuation, not digits: `1984\.` keeps a number from being a list.
    return mark[:-1] + "\\" + mark[-1] if mark[0].isdigit() else "\\" + mark


def summary(fragment: str, limit: int = 400) -> str:
    """A short plain-text summary of an HTML or text fragment: tags gone, one line, cut."""
    # Markup is rarely more than three quarters of a fragment: reading the first few times
    # `limit` characters finds enough words, and a feed of long full-text entries costs no
    # more to summarise than a feed of short ones.
    return shorten(one_line(strip_html(fragment[: limit * 8])), limit)


def web_url(value: str | None, base: str) -> str | None:
    """value made absolute against base, if it is an http(s) URL (javascript: and data: are not)."""
    if not value:
        return None
    absolute = urljoin(base, value.strip())
    parts = urlsplit(absolute)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    if any(c.isspace() or ord(c) < 0x20 for c in absolute):
        return None
    return absolute
