"""A web page's own description of itself: OpenGraph, Twitter card, JSON-LD, <title>, feeds."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any

from digestcli.errors import UsageError
from digestcli.fetch import FetchError, FetchOptions
from digestcli.models import Image, Item, Link
from digestcli.plaintext import markdown_literal, one_line, shorten, web_url

if TYPE_CHECKING:
    import httpx

#: <link rel="alternate"> types that name a feed.
FEED_TYPES = frozenset(
    {"application/rss+xml", "application/atom+xml", "application/feed+json", "application/json"}
)
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})


@dataclass(frozen=True)
class PageMeta:
    """What a page says about itself, as plain text and absolute http(s) URLs."""

    url: str
    title: str = ""
    description: str = ""
    image: str | None = None
    image_alt: str = ""
    site_name: str = ""
    feeds: tuple[str, ...] = ()


@dataclass
class _Found:
    meta: dict[str, str] = field(default_factory=dict)  # first value of each property/name
    title: str = ""
    canonical: str = ""
    feeds: list[str] = field(default_factory=list)
    json_ld: list[str] = field(default_factory=list)


class _MetaParser(HTMLParser):
    """Collects <meta>, <title>, <link> and JSON-LD scripts; reads no further than <body>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found = _Found()
        self._in: str | None = None  # "title" or "ld" while inside one
        self._buffer: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name.lower(): (value or "") for name, value in attrs}
        if tag == "meta":
            key = (values.get("property") or values.get("name") or "").strip().lower()
            if key and "content" in values:
                self.found.meta.setdefault(key, values["content"])
        elif tag == "title" and not self.found.title and self._in is None:
            self._in, self._buffer = "title", []
        elif tag == "script" and values.get("type", "").strip().lower() == "application/ld+json":
            self._in, self._buffer = "ld", []
        elif tag == "link":
            rel = values.get("rel", "").lower().split()
            href = values.get("href", "").strip()
            kind = values.get("type", "").split(";")[0].strip().lower()
            if "alternate" in rel and kind in FEED_TYPES and href:
                self.found.feeds.append(href)
            elif "canonical" in rel and href and not self.found.canonical:
                self.found.canonical = href

    def handle_endtag(self, tag: str) -> None:
        if self._in == "title" and tag == "title":
            self.found.title = "".join(self._buffer)
            self._in = None
        elif self._in == "ld" and tag == "script":
            self.found.json_ld.append("".join(self._buffer))
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in is not None:
            self._buffer.append(data)


def parse_page(html: str, url: str) -> PageMeta:
    """The metadata of an HTML page fetched from url (the final URL, after redirects)."""
    parser = _MetaParser()
    parser.feed(html)
    parser.close()
    found = parser.found
    meta = found.meta
    ld = _json_ld(found.json_ld)
    title = _first(meta.get("og:title"), meta.get("twitter:title"), ld.get("headline"), found.title)
    description = _first(
        meta.get("og:description"),
        meta.get("twitter:description"),
        ld.get("description"),
        meta.get("description"),
    )
    image = web_url(_first(meta.get("og:image"), meta.get("twitter:image")), url)
    alt = _first(meta.get("og:image:alt"), meta.get("twitter:image:alt"))
    canonical = web_url(_first(meta.get("og:url"), found.canonical), url)
    feeds = tuple(dict.fromkeys(u for href in found.feeds if (u := web_url(href, url))))
    return PageMeta(
        url=canonical or url,
        title=title,
        description=description,
        image=image,
        image_alt=alt,
        site_name=_first(meta.get("og:site_name")),
        feeds=feeds,
    )


def _first(*values: str | None) -> str:
    """The first value with words in it, as one line.

    Attribute values and <title> are text already (the parser decoded their entities): a
    `<script>` in them is words the page shows, kept as such and escaped later, not stripped.
    """
    for value in values:
        if value and (text := one_line(value)):
            return text
    return ""


def _json_ld(blocks: list[str]) -> dict[str, str]:
    """headline and description from the page's JSON-LD, read as data (never run)."""
    found: dict[str, str] = {}
    for block in blocks:
        try:
            data = json.loads(block)
        except ValueError:
            continue
        for node in _nodes(data):
            for key in ("headline", "description"):
                value = node.get(key)
                if isinstance(value, str) and key not in found:
                    found[key] = value
    return found


def _nodes(data: Any, depth: int = 0) -> list[dict[str, Any]]:
    """The objects of a JSON-LD document: itself, a list of them, or an @graph."""
    if depth > 3:
        return []
    if isinstance(data, list):
        return [node for entry in data for node in _nodes(entry, depth + 1)]
    if isinstance(data, dict):
        graph = data.get("@graph")
        return [data, *(_nodes(graph, depth + 1) if graph is not None else [])]
    return []


def fetch_page(
    url: str, options: FetchOptions, transport: httpx.BaseTransport | None = None
) -> PageMeta:
    """Fetch url (redirects followed, timeouts, size cap) and read its metadata."""
    from digestcli.fetch import client, get

    with client(options, transport) as session:
        fetched = get(session, url, options)
    if fetched.content_type and fetched.content_type not in HTML_TYPES:
        raise FetchError(
            f"{url} is {fetched.content_type}, not a web page; "
            "give the page's address, or write the item with `digest add TITLE`."
        )
    return parse_page(fetched.text(), fetched.url)


@dataclass(frozen=True)
class Overrides:
    """What the editor gave on the command line; each one beats the page's own metadata."""

    title: str | None = None
    body: str | None = None
    link: str | None = None
    label: str | None = None
    image: str | None = None
    alt: str | None = None


def page_item(meta: PageMeta, given: Overrides, *, summary_limit: int = 600) -> Item:
    """An item from a page's metadata: fetched text escaped to stay literal, the editor's wins."""
    title = given.title or markdown_literal(shorten(meta.title, 200))
    if not title:
        raise UsageError(
            f"{meta.url} has no title in its metadata; give one: `digest add --from URL TITLE`."
        )
    body = (
        given.body
        if given.body is not None
        else markdown_literal(shorten(meta.description, summary_limit))
    )
    image_url = given.image or meta.image
    # The page's alt text describes the page's image only; without one, its headline does.
    alt = given.alt or (meta.image_alt if not given.image else "") or shorten(meta.title, 200)
    return Item(
        title=title,
        body=body,
        link=Link(given.link or meta.url, given.label or None),
        image=Image(image_url, alt) if image_url and alt else None,
    )
