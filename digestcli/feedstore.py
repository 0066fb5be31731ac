"""The store's curating tables (schema v7): feeds' fetch state, their cached entries, the list."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from digestcli.db import now, transaction
from digestcli.feedformat import FeedEntry


@dataclass(frozen=True)
class FeedState:
    """What digest remembers of fetching one feed."""

    url: str
    title: str = ""
    etag: str | None = None
    last_modified: str | None = None
    last_checked: str | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        """The stable JSON shape of `feeds list --json`."""
        return {
            "url": self.url,
            "title": self.title,
            "last_checked": self.last_checked,
            "error": self.error,
        }

    def checked(self, **changes: Any) -> FeedState:
        """This state after a fetch just now, with these changes."""
        return replace(self, last_checked=now(), **changes)


@dataclass(frozen=True)
class Collected:
    """One numbered entry of the last collect, as `collect --json` shows it."""

    number: int
    source: str
    title: str
    link: str
    summary: str
    published: str | None

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON shape of `collect --json`."""
        return {
            "number": self.number,
            "source": self.source,
            "title": self.title,
            "link": self.link,
            "summary": self.summary,
            "published": self.published,
        }


def states(db: sqlite3.Connection) -> dict[str, FeedState]:
    """The remembered state of every feed, by URL."""
    rows = db.execute("SELECT url, title, etag, last_modified, last_checked, error FROM feed_state")
    return {row[0]: FeedState(*row) for row in rows}


def save_states(db: sqlite3.Connection, fetched: Iterable[FeedState]) -> None:
    """Remember each feed's state after a fetch, in one transaction."""
    with transaction(db):
        db.executemany(
            "INSERT INTO feed_state (url, title, etag, last_modified, last_checked, error)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (url) DO UPDATE SET title = excluded.title,"
            " etag = excluded.etag, last_modified = excluded.last_modified,"
            " last_checked = excluded.last_checked, error = excluded.error",
            [(s.url, s.title, s.etag, s.last_modified, s.last_checked, s.error) for s in fetched],
        )


def set_titles(db: sqlite3.Connection, titles: Mapping[str, str]) -> None:
    """Keep the titles of feeds just followed (from the feed itself or an OPML outline)."""
    with transaction(db):
        db.executemany(
            "INSERT INTO feed_state (url, title) VALUES (?, ?)"
            " ON CONFLICT (url) DO UPDATE SET title = excluded.title",
            list(titles.items()),
        )


def forget(db: sqlite3.Connection, url: str) -> None:
    """Drop what is known of a feed no longer followed."""
    with transaction(db):
        db.execute("DELETE FROM feed_state WHERE url = ?", (url,))
        db.execute("DELETE FROM feed_cache WHERE url = ?", (url,))


def cache_entries(db: sqlite3.Connection, entries: Mapping[str, Sequence[FeedEntry]]) -> None:
    """Keep each feed's latest entries: what a later 304 from it stands for."""
    with transaction(db):
        db.executemany(
            "INSERT OR REPLACE INTO feed_cache (url, entries) VALUES (?, ?)",
            [
                (url, json.dumps([e.as_dict() for e in each], ensure_ascii=False))
                for url, each in entries.items()
            ],
        )


def cached_urls(db: sqlite3.Connection) -> set[str]:
    """The feeds whose entries are cached."""
    return {str(row[0]) for row in db.execute("SELECT url FROM feed_cache")}


def cached_entries(db: sqlite3.Connection, urls: Sequence[str]) -> dict[str, list[FeedEntry]]:
    """The last entries each of these feeds gave."""
    marks = ",".join("?" * len(urls))
    rows = db.execute(f"SELECT url, entries FROM feed_cache WHERE url IN ({marks})", list(urls))
    return {url: [FeedEntry.from_dict(each) for each in json.loads(text)] for url, text in rows}


def keep_collected(db: sqlite3.Connection, entries: Sequence[Collected]) -> None:
    """Replace the numbered list `digest pick` reads."""
    with transaction(db):
        db.execute("DELETE FROM feed_entries")
        db.executemany(
            "INSERT INTO feed_entries (number, source, title, link, summary, published)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [(e.number, e.source, e.title, e.link, e.summary, e.published) for e in entries],
        )


def collected(db: sqlite3.Connection) -> list[Collected]:
    """The numbered list the last collect made."""
    rows = db.execute(
        "SELECT number, source, title, link, summary, published FROM feed_entries ORDER BY number"
    )
    return [Collected(*row) for row in rows]
