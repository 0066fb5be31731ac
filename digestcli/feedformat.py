"""A feed's bytes to its title and entries: RSS and Atom through feedparser, JSON Feed by hand."""

from __future__ import annotations

import calendar
import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from digestcli.errors import DigestError
from digestcli.plaintext import one_line, strip_html, summary, web_url

SUMMARY_LIMIT = 300
JSON_TYPES = frozenset({"application/feed+json", "application/json"})


class NotAFeed(DigestError):
    """The bytes are not RSS, Atom or JSON Feed."""


@dataclass(frozen=True)
class FeedEntry:
    """One entry of a feed, as plain text: title, absolute link, summary, published (UTC ISO)."""

    title: str
    link: str
    summary: str
    published: str | None

    def as_dict(self) -> dict[str, str | None]:
        """The entry as JSON-ready data."""
        return {
            "title": self.title,
            "link": self.link,
            "summary": self.summary,
            "published": self.published,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeedEntry:
        """The entry as_dict gave."""
        return cls(data["title"], data["link"], data["summary"], data.get("published"))


@dataclass(frozen=True)
class ParsedFeed:
    """A feed's title and its entries, in the feed's order."""

    title: str
    entries: tuple[FeedEntry, ...]


def parse_feed(body: bytes, url: str, content_type: str = "") -> ParsedFeed:
    """Parse RSS 0.9x-2.0, Atom or JSON Feed fetched from url; NotAFeed when it is none."""
    if content_type in JSON_TYPES or body.lstrip()[:1] == b"{":
        return _json_feed(body, url)
    import feedparser  # here: only fetching commands need it, and it costs start-up time

    parsed = feedparser.parse(
        body,
        response_headers={
            "content-type": content_type or "application/xml",
            "content-location": url,
        },
        sanitize_html=False,  # the summary is reduced to plain text below anyway
        resolve_relative_uris=False,
    )
    if not parsed.get("version"):
        reason = parsed.get("bozo_exception")
        raise NotAFeed(
            f"{url} is not an RSS, Atom or JSON feed"
            + (f" ({one_line(str(reason))[:120]})" if reason else "")
        )
    entries = []
    for raw in parsed.entries:
        link = web_url(raw.get("link") or "", url)
        title = one_line(_as_text(raw.get("title"), raw.get("title_detail")))
        if not link or not title:
            continue
        if raw.get("summary"):
            content = _as_text(raw["summary"], raw.get("summary_detail"))
        elif raw.get("content"):
            content = _as_text(raw["content"][0].get("value"), raw["content"][0])
        else:
            content = ""
        published = _stamp(raw.get("published_parsed") or raw.get("updated_parsed"))
        entries.append(FeedEntry(title, link, summary(content, SUMMARY_LIMIT), published))
    title = one_line(_as_text(parsed.feed.get("title"), parsed.feed.get("title_detail")))
    return ParsedFeed(title, tuple(entries))


def _as_text(value: Any, detail: Any) -> str:
    """A feed field as plain text: HTML (Atom type="html", RSS descriptions) loses its tags;
    plain text (Atom type="text", RSS titles) stays as written, a `<b>` in it being words."""
    text = value if isinstance(value, str) else ""
    kind = detail.get("type", "") if hasattr(detail, "get") else ""
    return strip_html(text) if "html" in str(kind) else text


def _json_feed(body: bytes, url: str) -> ParsedFeed:
    """JSON Feed 1.0 and 1.1 (feedparser 6 does not read it): title, url, content, dates."""
    try:
        data = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError):
        raise NotAFeed(f"{url} is not an RSS, Atom or JSON feed (not valid JSON)") from None
    version = data.get("version") if isinstance(data, dict) else None
    if not isinstance(version, str) or "jsonfeed.org/version/" not in version:
        raise NotAFeed(f"{url} is JSON but not a JSON Feed (no jsonfeed.org version)")
    entries = []
    items = data.get("items")
    for raw in items if isinstance(items, list) else []:
        if not isinstance(raw, dict):
            continue
        link = web_url(_text(raw.get("url")) or _text(raw.get("external_url")), url)
        title = one_line(strip_html(_text(raw.get("title"))))
        if not link or not title:
            continue
        content = (
            _text(raw.get("summary"))
            or _text(raw.get("content_text"))
            or _text(raw.get("content_html"))
        )
        published = _date(_text(raw.get("date_published")) or _text(raw.get("date_modified")))
        entries.append(FeedEntry(title, link, summary(content, SUMMARY_LIMIT), published))
    return ParsedFeed(one_line(strip_html(_text(data.get("title")))), tuple(entries))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _stamp(stamp: Any) -> str | None:
    """feedparser's parsed date (a UTC struct_time) as UTC ISO text; None when it has none."""
    if not stamp:
        return None
    try:
        return _iso(dt.datetime.fromtimestamp(calendar.timegm(stamp), dt.UTC))
    except (OverflowError, OSError, ValueError, TypeError):  # year 0 or 99999: no usable date
        return None


def _date(text: str) -> str | None:
    """An RFC 3339 date (JSON Feed) as UTC ISO text; None when absent or unreadable."""
    if not text:
        return None
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return _iso(when if when.tzinfo else when.replace(tzinfo=dt.UTC))


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat(timespec="seconds")
