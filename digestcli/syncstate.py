"""How far `digest sync` has read each source: one high-water mark per source."""

from __future__ import annotations

import sqlite3

from digestcli.db import now


def mark(db: sqlite3.Connection, source: str) -> str | None:
    """The stored high-water mark of a source, or None before its first sync."""
    row = db.execute("SELECT mark FROM sync_marks WHERE source = ?", (source,)).fetchone()
    return None if row is None else str(row[0])


def set_mark(db: sqlite3.Connection, source: str, value: str) -> None:
    """Remember how far a source has been read (call inside the caller's transaction)."""
    db.execute(
        "INSERT INTO sync_marks (source, mark, updated_at) VALUES (?, ?, ?)"
        " ON CONFLICT (source) DO UPDATE SET mark = excluded.mark,"
        " updated_at = excluded.updated_at",
        (source, value, now()),
    )
