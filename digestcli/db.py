"""The SQLite store in .digest/digest.db: connections, transactions, schema and migrations."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from digestcli.errors import ConfigError, DigestError

SCHEMA_VERSION = 7

# Readers' answers (events.py): one row per event, a replay is refused by the UNIQUE key.
EVENTS = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    source_id TEXT NOT NULL,
    kind TEXT NOT NULL
        CHECK (kind IN ('unsubscribe', 'bounce', 'soft_bounce', 'complaint', 'delivery')),
    email TEXT NOT NULL COLLATE NOCASE,
    list TEXT,
    at TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    recorded_at TEXT NOT NULL,
    UNIQUE (source, source_id)
);
CREATE INDEX IF NOT EXISTS events_email ON events(email, id);
"""

# An unsubscribe whose link names a send, not an address: resolved to one where the send is known.
EVENT_REFS = "ALTER TABLE events ADD COLUMN ref TEXT NOT NULL DEFAULT '';"

# Where a campaign's issue lives on the web, fixed when it starts (publish.py): the folder name
# under issues/ and the page URL its emails link to. NULL for campaigns started before.
ISSUE_LINKS = (
    "ALTER TABLE campaigns ADD COLUMN slug TEXT;ALTER TABLE campaigns ADD COLUMN web_url TEXT;"
)

# How far `digest sync` has read each source (syncstate.py): its high-water mark, in the
# source's own terms (a unix time, a date, a cursor).
SYNC_MARKS = """
CREATE TABLE IF NOT EXISTS sync_marks (
    source TEXT PRIMARY KEY,
    mark TEXT NOT NULL,
    updated_at TEXT NOT NULL
) WITHOUT ROWID;
"""

# Curating (§12), schema v7: each followed feed's fetch state (conditional GET, last error),
# its entries as last fetched (what a 304 stands for), and the entries the last
# `digest collect` numbered, kept for `digest pick`; feedstore.py owns their SQL. IF NOT
# EXISTS throughout, so this step is safe in whatever order it lands beside other migrations.
CURATING = """
CREATE TABLE IF NOT EXISTS feed_state (
    url TEXT PRIMARY KEY,
    title TEXT NOT NULL DEFAULT '',
    etag TEXT,
    last_modified TEXT,
    last_checked TEXT,
    error TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS feed_entries (
    number INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    title TEXT NOT NULL,
    link TEXT NOT NULL,
    summary TEXT NOT NULL DEFAULT '',
    published TEXT
);
CREATE TABLE IF NOT EXISTS feed_cache (
    url TEXT PRIMARY KEY,
    entries TEXT NOT NULL
) WITHOUT ROWID;
"""

SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS subscribers (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL UNIQUE COLLATE NOCASE,
    name TEXT NOT NULL DEFAULT '',
    fields TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL DEFAULT 'active'
        CHECK (state IN ('active', 'unsubscribed', 'bounced', 'complained')),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    soft_bounces INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS lists (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS memberships (
    list_id INTEGER NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
    subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    unsubscribed_at TEXT,
    PRIMARY KEY (list_id, subscriber_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS memberships_subscriber ON memberships(subscriber_id);
CREATE TABLE IF NOT EXISTS campaigns (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    draft TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    list TEXT NOT NULL,
    transport TEXT NOT NULL,
    created_at TEXT NOT NULL,
    finished_at TEXT,
    nonce TEXT NOT NULL DEFAULT '',
    slug TEXT,
    web_url TEXT
);
CREATE TABLE IF NOT EXISTS deliveries (
    campaign_id INTEGER NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    subscriber_id INTEGER,
    email TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    fields TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'in_flight', 'sent', 'failed', 'uncertain', 'skipped')),
    batch INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    provider_id TEXT,
    error TEXT,
    updated_at TEXT,
    PRIMARY KEY (campaign_id, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS deliveries_state ON deliveries(campaign_id, state, seq);
"""
    + EVENTS
    + SYNC_MARKS
    + EVENT_REFS
    + CURATING
)

# MIGRATIONS[v - 1] takes a store from schema v to v + 1.
MIGRATIONS = (
    # 2: a random id per campaign, so idempotency keys never collide across campaigns.
    "ALTER TABLE campaigns ADD COLUMN nonce TEXT NOT NULL DEFAULT '';",
    # 3: readers' answers, soft bounces in a row, and unsubscribing from one list.
    EVENTS
    + "ALTER TABLE subscribers ADD COLUMN soft_bounces INTEGER NOT NULL DEFAULT 0;"
    + "ALTER TABLE memberships ADD COLUMN unsubscribed_at TEXT;",
    # 4: the high-water mark of each source `digest sync` reads.
    SYNC_MARKS,
    # 5: unsubscribe links that name a send (campaign and row), not the reader's address.
    EVENT_REFS,
    # 6: the web page of each campaign's issue, fixed at send time (digest publish).
    ISSUE_LINKS,
    # 7: feeds' fetch state, their cached entries and the numbered list of `digest collect`.
    CURATING,
)


def now() -> str:
    """The current UTC time as ISO 8601 text."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def connect(path: Path, *, create: bool = True) -> sqlite3.Connection:
    """Open the store (WAL, foreign keys on) and make sure the schema exists."""
    if not create and not path.exists():
        raise ConfigError(f"{path}: no store yet; add subscribers first.")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise ConfigError(
                f"{path}: made by a newer digest (schema {version}); upgrade digest to use it."
            )
        if version < SCHEMA_VERSION:
            steps = SCHEMA if version == 0 else "".join(MIGRATIONS[version - 1 :])
            db.executescript("BEGIN;" + steps + f"PRAGMA user_version={SCHEMA_VERSION};COMMIT;")
    except sqlite3.DatabaseError as exc:
        raise ConfigError(
            f"{path}: cannot open the store ({exc}); is it a digest database?"
        ) from None
    return db


@contextmanager
def opened(path: Path) -> Iterator[sqlite3.Connection]:
    """The store at path, closed on the way out."""
    with closing(connect(path)) as db:
        yield db


@contextmanager
def read_only(path: Path) -> Iterator[sqlite3.Connection]:
    """An existing store opened read-only, closed on the way out; it creates and locks nothing."""
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        yield db


@contextmanager
def for_reading(path: Path) -> Iterator[sqlite3.Connection]:
    """The store, or an empty one in memory when there is none yet: reading must not create it."""
    if path.exists():
        with opened(path) as db:
            yield db
        return
    with closing(sqlite3.connect(":memory:", isolation_level=None)) as scratch:
        scratch.executescript(SCHEMA)
        yield scratch


def begin(db: sqlite3.Connection, *, write: bool = True) -> None:
    """Start a transaction; a store locked by another writer for too long is a clear error."""
    try:
        # IMMEDIATE takes the write lock up front, so a concurrent writer waits at BEGIN
        # instead of failing half-way through when a read transaction tries to upgrade.
        db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
    except sqlite3.OperationalError as exc:
        raise DigestError(
            f"the store is busy ({exc}): another digest command is writing to it; "
            "try again when it has finished."
        ) from None


@contextmanager
def transaction(db: sqlite3.Connection, *, commit: bool = True) -> Iterator[None]:
    """One transaction: all of it is committed or none of it (commit=False: a consistent read)."""
    begin(db, write=commit)
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT" if commit else "ROLLBACK")
