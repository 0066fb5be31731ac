"""The Atom 1.0 feed of the sent issues, built with ElementTree: same entries, same bytes."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass

ATOM = "http://www.w3.org/2005/Atom"
# The updated time of a feed without entries: fixed, so an empty archive is deterministic too.
EPOCH = "1970-01-01T00:00:00+00:00"
# Characters XML 1.0 cannot carry at all, even escaped; a draft could hold one.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True)
class Entry:
    """One issue in the feed."""

    id: str
    title: str
    url: str
    updated: str
    summary: str
    content_html: str


@dataclass(frozen=True)
class Feed:
    """The feed's own data: who, where, and its entries newest first."""

    title: str
    site_url: str
    feed_url: str
    author: str
    entries: Sequence[Entry]

    @property
    def updated(self) -> str:
        """The newest entry's time: a feed changes when an issue does, never on its own."""
        return max((entry.updated for entry in self.entries), default=EPOCH)


def _text(value: str) -> str:
    return _NOT_XML.sub("", value)


def _add(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, {k: _text(v) for k, v in attrs.items()})
    if text is not None:
        element.text = _text(text)
    return element


def atom(feed: Feed) -> bytes:
    """The feed as Atom 1.0 XML, UTF-8, indented; every URL absolute."""
    root = ET.Element("feed", {"xmlns": ATOM})
    _add(root, "id", feed.site_url)
    _add(root, "title", feed.title)
    _add(root, "updated", feed.updated)
    _add(root, "link", rel="self", type="application/atom+xml", href=feed.feed_url)
    _add(root, "link", rel="alternate", type="text/html", href=feed.site_url)
    _add(_add(root, "author"), "name", feed.author)
    _add(root, "generator", "digest")
    for entry in feed.entries:
        node = _add(root, "entry")
        _add(node, "id", entry.id)
        _add(node, "title", entry.title)
        _add(node, "updated", entry.updated)
        _add(node, "published", entry.updated)
        _add(node, "link", rel="alternate", type="text/html", href=entry.url)
        if entry.summary:
            _add(node, "summary", entry.summary)
        _add(node, "content", entry.content_html, type="html")
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="utf-8"?>\n{body}\n'.encode()
