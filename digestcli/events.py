"""Readers' answers: each event recorded once, and applied to the subscriber store by one rule."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from digestcli import journal, subscribers
from digestcli.db import now, transaction
from digestcli.subscribers import Subscriber

# unsubscribe: from one list (or every list when `list` is None); bounce: hard, the address
# is dead; soft_bounce: a temporary failure, counted; complaint: marked as spam; delivery:
# the provider delivered a message, which resets the soft-bounce count.
KINDS = ("unsubscribe", "bounce", "soft_bounce", "complaint", "delivery")
# Where events come from: `digest serve` (its own pages), the providers (webhooks and
# suppression lists), a remote serve's /events, or the command line.
SOURCES = ("serve", "postmark", "sendgrid", "mailgun", "resend", "remote", "cli")


@dataclass(frozen=True)
class Event:
    """One answer from a reader or a provider, as recorded."""

    source: str
    kind: str
    email: str
    list: str | None = None
    at: str = field(default_factory=now)
    detail: str = ""
    # The source's own id of the event; with source, it makes a replay a duplicate.
    source_id: str = ""
    # For an unsubscribe whose link names a send, not an address: that send's reference
    # (journal.reference); resolved to the address by a store that holds the send.
    ref: str = ""

    def key(self) -> str:
        """The id the event is deduplicated by: the source's own, or one made from its content."""
        if self.source_id:
            return self.source_id
        text = "\n".join((self.kind, self.email.lower(), self.list or "", self.at, self.detail))
        return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


@dataclass
class Applied:
    """What recording a batch of events did."""

    recorded: int = 0
    duplicates: int = 0
    # Subscribers whose state changed, by the state they moved to.
    changes: dict[str, int] = field(
        default_factory=lambda: {"unsubscribed": 0, "bounced": 0, "complained": 0}
    )


def record(db: sqlite3.Connection, events: Iterable[Event], *, soft_limit: int = 3) -> Applied:
    """Record each new event and apply it, in one transaction; a replayed event does nothing."""
    applied = Applied()
    stamp = now()
    with transaction(db):
        for given in events:
            if given.kind not in KINDS:
                raise ValueError(f"unknown event kind {given.kind!r}")
            event = given
            if not given.email and given.ref:
                event = replace(given, email=journal.recipient_by_ref(db, given.ref) or "")
            cursor = db.execute(
                "INSERT OR IGNORE INTO events"
                " (source, source_id, kind, email, list, at, detail, recorded_at, ref)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    event.source,
                    event.key(),
                    event.kind,
                    event.email.strip(),
                    event.list,
                    event.at,
                    event.detail,
                    stamp,
                    event.ref,
                ),
            )
            if cursor.rowcount != 1:
                applied.duplicates += 1
                continue
            applied.recorded += 1
            moved = _apply(db, event, soft_limit, stamp)
            if moved:
                applied.changes[moved] += 1
    return applied


def _apply(db: sqlite3.Connection, event: Event, soft_limit: int, stamp: str) -> str | None:
    """The one rule: change the subscriber an event is about; return the state it moved to."""
    email = event.email.strip()
    if not email:
        return None  # a send this store does not hold: kept for the store that does (sync)
    row = db.execute("SELECT id, state FROM subscribers WHERE email = ?", (email,)).fetchone()
    if row is None:
        if event.kind in ("delivery", "soft_bounce"):
            return None
        # Remember the address, on no list, so that a later import cannot make it active.
        db.execute(
            "INSERT INTO subscribers (email, created_at, updated_at) VALUES (?, ?, ?)",
            (email, stamp, stamp),
        )
        row = db.execute("SELECT id, state FROM subscribers WHERE email = ?", (email,)).fetchone()
    subscriber_id, state = int(row[0]), str(row[1])
    if event.kind == "delivery":
        db.execute("UPDATE subscribers SET soft_bounces = 0 WHERE id = ?", (subscriber_id,))
        return None
    if event.kind == "soft_bounce":
        count = db.execute(
            "UPDATE subscribers SET soft_bounces = soft_bounces + 1 WHERE id = ?"
            " RETURNING soft_bounces",
            (subscriber_id,),
        ).fetchone()[0]
        if int(count) < soft_limit:
            return None
        target = "bounced"
    elif event.kind == "unsubscribe" and event.list is not None:
        return _leave_list(db, subscriber_id, event.list, stamp)
    else:
        target = {"unsubscribe": "unsubscribed", "bounce": "bounced", "complaint": "complained"}[
            event.kind
        ]
    # Never back to active, and a bounce or complaint says more than an unsubscribe does.
    if state == target or (state != "active" and target == "unsubscribed"):
        return None
    if state == "complained":
        return None
    db.execute(
        "UPDATE subscribers SET state = ?, updated_at = ? WHERE id = ?",
        (target, stamp, subscriber_id),
    )
    return target


def _leave_list(
    db: sqlite3.Connection, subscriber_id: int, list_name: str, stamp: str
) -> str | None:
    """Unsubscribe from one list: the membership stays, marked, so no import renews it."""
    row = db.execute("SELECT id FROM lists WHERE name = ?", (list_name,)).fetchone()
    if row is None:
        db.execute("INSERT INTO lists (name, created_at) VALUES (?, ?)", (list_name, stamp))
        row = db.execute("SELECT id FROM lists WHERE name = ?", (list_name,)).fetchone()
    list_id = int(row[0])
    db.execute(
        "INSERT OR IGNORE INTO memberships (list_id, subscriber_id, created_at) VALUES (?, ?, ?)",
        (list_id, subscriber_id, stamp),
    )
    cursor = db.execute(
        "UPDATE memberships SET unsubscribed_at = ? WHERE list_id = ? AND subscriber_id = ?"
        " AND unsubscribed_at IS NULL",
        (stamp, list_id, subscriber_id),
    )
    return "unsubscribed" if cursor.rowcount == 1 else None


def after(db: sqlite3.Connection, cursor: int, limit: int = 1000) -> list[tuple[int, Event]]:
    """Recorded events with an id above cursor, oldest first (for a remote editor's sync)."""
    rows = db.execute(
        "SELECT id, source, kind, email, list, at, detail, source_id, ref FROM events"
        " WHERE id > ? ORDER BY id LIMIT ?",
        (cursor, limit),
    )
    return [
        (int(i), Event(str(s), str(k), str(e), lst, str(a), str(d), str(sid), str(r)))
        for i, s, k, e, lst, a, d, sid, r in rows
    ]


def last_for(db: sqlite3.Connection, email: str) -> Event | None:
    """The latest event recorded about an address (why its state is what it is)."""
    row = db.execute(
        "SELECT source, kind, email, list, at, detail, source_id FROM events"
        " WHERE email = ? AND kind != 'delivery' ORDER BY id DESC LIMIT 1",
        (email.strip(),),
    ).fetchone()
    if row is None:
        return None
    source, kind, address, list_name, at, detail, source_id = row
    return Event(str(source), str(kind), str(address), list_name, str(at), str(detail), source_id)


@dataclass(frozen=True)
class Standing:
    """Where a subscriber stands, and why: `digest subscribers show`."""

    subscriber: Subscriber
    lists_left: list[str]
    last_event: Event | None

    def to_json(self) -> dict[str, object]:
        """The subscriber's JSON shape, with the lists left and the last event."""
        last = self.last_event
        return {
            **self.subscriber.to_json(),
            "lists_left": self.lists_left,
            "last_event": None
            if last is None
            else {
                "source": last.source,
                "kind": last.kind,
                "list": last.list,
                "at": last.at,
                "detail": last.detail,
            },
        }


def standing(db: sqlite3.Connection, email: str) -> Standing:
    """A subscriber's state with the lists they left and the last answer recorded about them."""
    found = subscribers.get(db, email)
    if found is None:
        raise subscribers.SubscriberNotFound(email.strip())
    return Standing(found, subscribers.lists_left(db, found.email), last_for(db, found.email))


@dataclass(frozen=True)
class Unsubscribed:
    """What an unsubscribe did: to whom (as stored), from which list, and whether it changed."""

    email: str
    list: str | None
    # "unsubscribed", "already" (left that list, or inactive) or "unknown" (no such subscriber)
    outcome: str
    state: str = ""


def unsubscribe(
    db: sqlite3.Connection,
    email: str,
    list_name: str | None,
    *,
    source: str = "cli",
    source_id: str = "",
    ref: str = "",
) -> Unsubscribed:
    """Record an unsubscribe from one list (None: every list) and apply it; repeats are fine.

    `ref` names the send a link came from, instead of the address (journal.reference).
    """
    if not email and ref:
        email = journal.recipient_by_ref(db, ref) or ""
        if not email:
            return Unsubscribed("the reader of that link", list_name, "unknown")
    found = subscribers.get(db, email)
    if found is None and not email.isascii():
        # The token folds with str.lower(), the store with ASCII-only NOCASE.
        found = subscribers.get(db, subscribers.find_lowercased(db, email.lower()) or "")
    if found is None:
        return Unsubscribed(email, list_name, "unknown")
    event = Event(source, "unsubscribe", found.email, list_name, source_id=source_id)
    applied = record(db, [event])
    changed = applied.changes["unsubscribed"] > 0
    state = subscribers.get(db, found.email)
    return Unsubscribed(
        found.email,
        list_name,
        "unsubscribed" if changed else "already",
        state.state if state else found.state,
    )
