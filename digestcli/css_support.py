"""The CSS that major mail clients ignore or strip, and a reader for a page's declarations."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from digestcli.scan import Page


@dataclass(frozen=True)
class CssRule:
    """A property (and value) some major client ignores, why, and what to do instead."""

    label: str
    matches: Callable[[str, str], bool]
    clients: str
    fix: str


@dataclass(frozen=True)
class AtRule:
    """An at-rule some major client ignores, why, and what to do instead."""

    keyword: str
    clients: str
    fix: str


def _prop(pattern: str, value: str | None = None) -> Callable[[str, str], bool]:
    prop_re = re.compile(pattern)
    value_re = re.compile(value, re.I) if value else None
    return lambda prop, val: bool(
        prop_re.fullmatch(prop) and (value_re is None or value_re.search(val))
    )


_TABLES = "lay it out with tables, as the default theme does"
#: Properties and values, in the order their findings are reported.
CSS_RULES: tuple[CssRule, ...] = (
    CssRule(
        "display: flex",
        _prop("display", r"\b(?:inline-)?flex\b"),
        "Outlook for Windows and some Gmail apps ignore it",
        _TABLES,
    ),
    CssRule(
        "display: grid",
        _prop("display", r"\b(?:inline-)?grid\b"),
        "Outlook and Gmail ignore it",
        _TABLES,
    ),
    CssRule(
        "position: absolute/fixed",
        _prop("position", r"\b(?:absolute|fixed)\b"),
        "Gmail removes it and Outlook ignores it",
        "place things with tables and padding",
    ),
    CssRule(
        "float",
        _prop("float", r"^\s*(?!none\b)\w"),
        "Outlook for Windows ignores it",
        'use align="left" or align="right" on a table or image',
    ),
    CssRule(
        "background-image",
        _prop("background(?:-image)?", r"url\("),
        "Outlook for Windows shows no CSS background images without VML",
        "add a background-color fallback and VML for Outlook, or use an <img>",
    ),
    CssRule(
        "CSS variables",
        lambda prop, value: prop.startswith("--") or bool(re.search(r"var\(\s*--", value)),
        "Gmail and Outlook drop them",
        "write the values out",
    ),
    CssRule(
        "transform",
        _prop(r"(?:-webkit-|-ms-)?transform"),
        "Outlook and Gmail ignore it",
        "use a plain layout or an image",
    ),
    CssRule(
        "animation/transition",
        _prop(r"(?:-webkit-)?(?:animation|transition)(?:-[\w-]+)?"),
        "Gmail and Outlook ignore it",
        "make the message read well without it",
    ),
)
#: At-rules, looked for in the <style> blocks.
AT_RULES: tuple[AtRule, ...] = (
    AtRule("@import", "Gmail and Outlook do not load imported stylesheets", "put the rules inline"),
    AtRule(
        "@font-face",
        "Gmail and Outlook for Windows ignore web fonts",
        "keep web-safe fonts in font-family",
    ),
)
_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_BLOCK = re.compile(r"\{([^{}]*)\}")


def _declarations(css: str) -> Iterator[tuple[str, str]]:
    for chunk in css.split(";"):
        prop, sep, value = chunk.partition(":")
        if sep and prop.strip():
            yield prop.strip().lower(), value.strip()


def declarations(page: Page) -> Iterator[tuple[str, str, str]]:
    """(where, property, value) for every style attribute and every <style> rule."""
    for where, style in page.styles:
        for prop, value in _declarations(style):
            yield f"{where} style", prop, value
    for block in page.style_blocks:
        for body in _BLOCK.findall(_COMMENT.sub("", block)):
            for prop, value in _declarations(body):
                yield "<style> block", prop, value


def style_block_css(page: Page) -> str:
    """The <style> blocks as one lower-case text without comments, to look for at-rules in."""
    return _COMMENT.sub("", "\n".join(page.style_blocks)).lower()
