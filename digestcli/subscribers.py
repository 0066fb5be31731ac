"""The subscriber store: subscribers, lists and memberships in the workspace's SQLite file."""

from __future__ import annotations

import csv
import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TextIO

from email_validator import EmailNotValidError, validate_email

from digestcli.db import now, transaction
from digestcli.errors import DigestError, UsageError
from digestcli.models import DEFAULT_LIST, Recipient

ACTIVE = "active"
STATES = ("active", "unsubscribed", "bounced", "complained")
INACTIVE_STATES = ("unsubscribed", "bounced", "complained")
# Columns of the export (and of an import header) that are never custom fields.
RESERVED_KEYS = ("email", "name", "state", "lists")
# How the export joins a subscriber's lists in one cell.
LIST_SEPARATOR = ";"

# Addresses per `IN (...)` lookup: well under SQLite's bound-parameter limit.
_LOOKUP_CHUNK = 500

# SQLite's NOCASE collation folds ASCII letters only; folding the same way in Python keeps
# "same address" identical in memory and in the store (str.lower would also fold "Ä" to "ä").
_ASCII_FOLD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


class InvalidAddress(UsageError):
    """An email address that email-validator refuses."""

    def __init__(self, address: str, reason: str) -> None:
        super().__init__(f"{address!r} is {reason}; check the address and try again.")
        self.address = address
        self.reason = reason


class SubscriberNotFound(DigestError):
    """No subscriber has that address."""

    def __init__(self, address: str) -> None:
        super().__init__(f"{address} is not a subscriber; `digest subscribers list` shows who is.")
        self.address = address


@dataclass(frozen=True)
class Subscriber:
    """One subscriber as stored, with the names of the lists they belong to."""

    id: int
    email: str
    name: str
    state: str
    lists: tuple[str, ...] = ()
    fields: Mapping[str, str] = field(default_factory=dict)
    created_at: str = ""
    updated_at: str = ""

    def to_json(self) -> dict[str, Any]:
        """The stable JSON shape of `subscribers list --json`."""
        return {
            "email": self.email,
            "name": self.name,
            "state": self.state,
            "lists": list(self.lists),
            "fields": dict(self.fields),
        }


@dataclass(frozen=True)
class ListInfo:
    """A list with its member count and how many of them are active."""

    name: str
    subscribers: int
    active: int

    def to_json(self) -> dict[str, Any]:
        """The stable JSON shape of `lists --json`."""
        return {"name": self.name, "subscribers": self.subscribers, "active": self.active}


@dataclass(frozen=True)
class Added:
    """What `add` did: created or updated, joined the list or was there, and the result."""

    subscriber: Subscriber
    created: bool
    updated: bool
    added_to_list: bool
    reactivated: bool = False


# The batch records below are NamedTuples, not dataclasses: an import builds one per row,
# and a NamedTuple is about three times cheaper to make than a frozen slotted dataclass.


class Known(NamedTuple):
    """A stored subscriber as lookup_batch finds it, and whether they are on the list."""

    id: int
    name: str
    fields: dict[str, str]
    state: str
    member: bool


class NewSubscriber(NamedTuple):
    """A subscriber for write_batch to create."""

    email: str
    name: str
    fields: Mapping[str, str]
    state: str


class Change(NamedTuple):
    """The name, fields and state write_batch gives a stored subscriber."""

    id: int
    name: str
    fields: Mapping[str, str]
    state: str


def fold(email: str) -> str:
    """The comparison key of an address, case-folded exactly as the store compares them."""
    return email.translate(_ASCII_FOLD)


def normalize_email(text: str) -> str:
    """Validate an address (no DNS); return it as given with the domain lower-cased."""
    address = text.strip()
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidAddress(address, f"not a valid address ({str(exc).rstrip('.')})") from None
    local, _, domain = address.rpartition("@")
    return f"{local}@{domain.lower()}"


def check_one_line(what: str, value: str) -> None:
    """Refuse a value with CR or LF: names and fields end up in headers and templates."""
    if "\r" in value or "\n" in value:
        raise UsageError(f"{what} contains a line break; names, fields and lists must be one line.")


def check_list_name(name: str) -> str:
    """A usable list name (stripped), or a UsageError."""
    name = name.strip()
    if not name:
        raise UsageError("a list name cannot be empty; pass --list NAME or leave it out.")
    check_one_line(f"list name {name!r}", name)
    return name


def check_fields(fields: Mapping[str, str]) -> dict[str, str]:
    """Custom fields checked for reserved or empty keys and line breaks."""
    checked = {}
    for raw_key, value in fields.items():
        key = raw_key.strip()
        if not key:
            raise UsageError("a field needs a name: use KEY=VALUE.")
        if key.lower() in RESERVED_KEYS:
            raise UsageError(
                f"{key!r} is not a custom field ({', '.join(RESERVED_KEYS)} are reserved); "
                "use --name for the name."
            )
        check_one_line(f"field {key!r}", key)
        check_one_line(f"field {key!r}", value)
        checked[key] = value
    return checked


def list_id(db: sqlite3.Connection, name: str) -> int | None:
    """The id of a list, or None when there is no such list."""
    row = db.execute("SELECT id FROM lists WHERE name = ?", (name,)).fetchone()
    return None if row is None else int(row[0])


def ensure_list(db: sqlite3.Connection, name: str) -> int:
    """The id of a list, created if needed."""
    name = check_list_name(name)
    db.execute(
        "INSERT INTO lists(name, created_at) VALUES (?, ?) ON CONFLICT(name) DO NOTHING",
        (name, now()),
    )
    found = list_id(db, name)
    assert found is not None
    return found


def require_list(db: sqlite3.Connection, name: str) -> int:
    """The id of an existing list, or a UsageError naming the lists there are."""
    found = list_id(db, name)
    if found is not None:
        return found
    names = [info.name for info in lists_with_counts(db)]
    known = f"the lists are: {', '.join(names)}" if names else "there are no lists yet"
    raise UsageError(
        f"there is no list named {name!r}; {known} (add subscribers to create a list)."
    )


_SELECT = """
SELECT s.id, s.email, s.name, s.fields, s.state, s.created_at, s.updated_at,
       (SELECT json_group_array(l.name) FROM memberships ml JOIN lists l ON l.id = ml.list_id
        WHERE ml.subscriber_id = s.id)
FROM subscribers s
"""


def _subscriber(row: tuple[Any, ...]) -> Subscriber:
    return Subscriber(
        id=int(row[0]),
        email=row[1],
        name=row[2],
        fields=json.loads(row[3]),
        state=row[4],
        created_at=row[5],
        updated_at=row[6],
        lists=tuple(sorted(json.loads(row[7]))),
    )


def get(db: sqlite3.Connection, email: str) -> Subscriber | None:
    """The subscriber with this address (case-insensitive), or None."""
    row = db.execute(_SELECT + "WHERE s.email = ?", (email.strip(),)).fetchone()
    return None if row is None else _subscriber(row)


def find_lowercased(db: sqlite3.Connection, lowered: str) -> str | None:
    """The stored address whose str.lower() is `lowered`, for tokens that folded non-ASCII case."""
    # Tokens carry str.lower() of the address, which folds "Ä" too; NOCASE folds ASCII only,
    # so an address with a non-ASCII capital needs this second look, over non-ASCII ones only.
    for (email,) in db.execute("SELECT email FROM subscribers WHERE email GLOB '*[^ -~]*'"):
        if email.lower() == lowered:
            return str(email)
    return None


def _filter(
    db: sqlite3.Connection, list_name: str | None, state: str | None
) -> tuple[str, list[Any]]:
    joins, where, params = "", "", list[Any]()
    if list_name is not None:
        # Probing memberships by its primary key keeps the scan in subscriber-id order.
        joins = "JOIN memberships f ON f.subscriber_id = s.id AND f.list_id = ? "
        if state == ACTIVE:
            joins += "AND f.unsubscribed_at IS NULL "  # active on this list: not left it
        params.append(require_list(db, list_name))
    if state is not None:
        if state not in STATES:
            raise UsageError(f"unknown state {state!r}; use one of: {', '.join(STATES)}.")
        where = "WHERE s.state = ? "
        params.append(state)
    return joins + where, params


def iter_subscribers(
    db: sqlite3.Connection, *, list_name: str | None = None, state: str | None = None
) -> Iterator[Subscriber]:
    """Every subscriber (of a list, in a state), in id order, streamed from a cursor."""
    clause, params = _filter(db, list_name, state)
    for row in db.execute(_SELECT + clause + "ORDER BY s.id", params):
        yield _subscriber(row)


def count_subscribers(
    db: sqlite3.Connection, *, list_name: str | None = None, state: str | None = None
) -> int:
    """How many subscribers (of a list, in a state) there are."""
    clause, params = _filter(db, list_name, state)
    return int(db.execute("SELECT count(*) FROM subscribers s " + clause, params).fetchone()[0])


def active_members(db: sqlite3.Connection, list_name: str) -> Iterator[tuple[int, Recipient]]:
    """(subscriber id, recipient) of the list's active subscribers, in id order, streamed."""
    rows = db.execute(
        "SELECT s.id, s.email, s.name, s.fields FROM subscribers s "
        "JOIN memberships m ON m.subscriber_id = s.id "
        "JOIN lists l ON l.id = m.list_id "
        "WHERE l.name = ? AND s.state = 'active' AND m.unsubscribed_at IS NULL ORDER BY s.id",
        (list_name,),
    )
    for subscriber_id, email, name, fields in rows:
        yield int(subscriber_id), Recipient(email=email, name=name, fields=json.loads(fields))


def active_recipients(db: sqlite3.Connection, list_name: str) -> Iterator[Recipient]:
    """The list's active subscribers as recipients, in id order, streamed."""
    for _, recipient in active_members(db, list_name):
        yield recipient


def add(
    db: sqlite3.Connection,
    email: str,
    *,
    name: str | None = None,
    fields: Mapping[str, str] | None = None,
    list_name: str = DEFAULT_LIST,
    reactivate: bool = False,
) -> Added:
    """Add a subscriber to a list, or update one; re-activates an address only when asked."""
    address = normalize_email(email)
    if name is not None:
        name = name.strip()
        check_one_line("the name", name)
    new_fields = check_fields(fields or {})
    list_name = check_list_name(list_name)
    stamp = now()
    with transaction(db):
        list_key = ensure_list(db, list_name)
        row = db.execute(
            "SELECT id, name, fields FROM subscribers WHERE email = ?", (address,)
        ).fetchone()
        created = updated = reactivated = False
        if row is None:
            cursor = db.execute(
                "INSERT INTO subscribers(email, name, fields, state, created_at, updated_at) "
                "VALUES (?, ?, ?, 'active', ?, ?)",
                (address, name or "", _dump_fields(new_fields), stamp, stamp),
            )
            subscriber_id = cursor.lastrowid
            created = True
        else:
            subscriber_id, old_name, old_fields = row
            reactivated = reactivate and _reactivate(db, subscriber_id, list_key, stamp)
            merged = {**json.loads(old_fields), **new_fields}
            merged_name = old_name if name is None else name
            if merged_name != old_name or merged != json.loads(old_fields):
                db.execute(
                    "UPDATE subscribers SET name = ?, fields = ?, updated_at = ? WHERE id = ?",
                    (merged_name, _dump_fields(merged), stamp, subscriber_id),
                )
                updated = True
        joined = db.execute(
            "INSERT OR IGNORE INTO memberships(list_id, subscriber_id, created_at) "
            "VALUES (?, ?, ?)",
            (list_key, subscriber_id, stamp),
        ).rowcount
    subscriber = get(db, address)
    assert subscriber is not None
    return Added(
        subscriber,
        created=created,
        updated=updated,
        added_to_list=joined == 1,
        reactivated=reactivated,
    )


def _reactivate(db: sqlite3.Connection, subscriber_id: int, list_key: int, stamp: str) -> bool:
    """Make an address active again on one list (the reader asked to come back)."""
    state = db.execute(
        "UPDATE subscribers SET state = 'active', soft_bounces = 0, updated_at = ?"
        " WHERE id = ? AND state != 'active'",
        (stamp, subscriber_id),
    ).rowcount
    rejoined = db.execute(
        "UPDATE memberships SET unsubscribed_at = NULL"
        " WHERE list_id = ? AND subscriber_id = ? AND unsubscribed_at IS NOT NULL",
        (list_key, subscriber_id),
    ).rowcount
    return bool(state or rejoined)


def add_to_list(db: sqlite3.Connection, email: str, list_name: str) -> bool:
    """Put an existing subscriber on a list; False when they were on it already."""
    with transaction(db):
        subscriber_id = _id_of(db, email)
        joined = db.execute(
            "INSERT OR IGNORE INTO memberships(list_id, subscriber_id, created_at) "
            "VALUES (?, ?, ?)",
            (ensure_list(db, list_name), subscriber_id, now()),
        ).rowcount
    return bool(joined == 1)


def remove(db: sqlite3.Connection, email: str, *, list_name: str | None = None) -> bool:
    """Delete a subscriber (or only take them off one list); False if they were not there."""
    with transaction(db):
        subscriber_id = _id_of(db, email)
        if list_name is None:
            db.execute("DELETE FROM subscribers WHERE id = ?", (subscriber_id,))
            return True
        key = require_list(db, list_name)
        cursor = db.execute(
            "DELETE FROM memberships WHERE list_id = ? AND subscriber_id = ?", (key, subscriber_id)
        )
        return bool(cursor.rowcount == 1)


def unsubscribe(db: sqlite3.Connection, email: str) -> str:
    """Mark an active subscriber unsubscribed; returns the state they had before."""
    address = email.strip()
    with transaction(db):
        row = db.execute("SELECT state FROM subscribers WHERE email = ?", (address,)).fetchone()
        if row is None:
            raise SubscriberNotFound(address)
        before = str(row[0])
        # A bounce or complaint says more than an unsubscribe does; keep it.
        if before == ACTIVE:
            db.execute(
                "UPDATE subscribers SET state = 'unsubscribed', updated_at = ? WHERE email = ?",
                (now(), address),
            )
    return before


def set_state(db: sqlite3.Connection, email: str, state: str) -> bool:
    """Record an unsubscribe, bounce or complaint; False when nobody has that address."""
    # Re-activation is deliberately not offered: a person who left opts in again by being
    # removed and added back, an explicit act, never as a side effect of a sync.
    if state not in INACTIVE_STATES:
        raise ValueError(f"set_state takes one of {INACTIVE_STATES}, not {state!r}")
    with transaction(db):
        cursor = db.execute(
            "UPDATE subscribers SET state = ?, updated_at = ? WHERE email = ?",
            (state, now(), email.strip()),
        )
    return bool(cursor.rowcount == 1)


def lookup_batch(
    db: sqlite3.Connection, emails: Sequence[str], list_key: int | None
) -> dict[str, Known]:
    """The stored subscribers among these addresses, keyed by fold(), with membership of a list."""
    found: dict[str, Known] = {}
    for start in range(0, len(emails), _LOOKUP_CHUNK):
        chunk = emails[start : start + _LOOKUP_CHUNK]
        marks = ",".join("?" * len(chunk))
        # The email column is COLLATE NOCASE, so IN matches case-insensitively, using its index;
        # a list_key of None (a list not made yet) matches no membership.
        rows = db.execute(
            "SELECT s.id, s.email, s.name, s.fields, s.state, m.list_id IS NOT NULL "
            "FROM subscribers s LEFT JOIN memberships m "
            "ON m.subscriber_id = s.id AND m.list_id = ? "
            f"WHERE s.email IN ({marks})",
            [list_key, *chunk],
        )
        for subscriber_id, email, name, fields, state, member in rows:
            found[fold(email)] = Known(subscriber_id, name, json.loads(fields), state, bool(member))
    return found


def write_batch(
    db: sqlite3.Connection,
    list_key: int,
    new: Iterable[NewSubscriber],
    changed: Iterable[Change],
    members: Iterable[str],
) -> None:
    """Create the new, rewrite the changed, put members on the list; inside a transaction."""
    stamp = now()
    db.executemany(
        "INSERT INTO subscribers(email, name, fields, state, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        ((s.email, s.name, _dump_fields(s.fields), s.state, stamp, stamp) for s in new),
    )
    db.executemany(
        "UPDATE subscribers SET name = ?, fields = ?, state = ?, updated_at = ? WHERE id = ?",
        ((c.name, _dump_fields(c.fields), c.state, stamp, c.id) for c in changed),
    )
    # By address, after the inserts: the new subscribers have no id the caller knows.
    db.executemany(
        "INSERT OR IGNORE INTO memberships(list_id, subscriber_id, created_at) "
        "SELECT ?, id, ? FROM subscribers WHERE email = ?",
        ((list_key, stamp, email) for email in members),
    )


def lists_with_counts(db: sqlite3.Connection) -> list[ListInfo]:
    """Every list by name, with its member count and how many of them are active."""
    rows = db.execute(
        "SELECT l.name, count(s.id), "
        "count(CASE WHEN s.state = 'active' AND m.unsubscribed_at IS NULL THEN 1 END) "
        "FROM lists l LEFT JOIN memberships m ON m.list_id = l.id "
        "LEFT JOIN subscribers s ON s.id = m.subscriber_id "
        "GROUP BY l.id ORDER BY l.name"
    )
    return [ListInfo(name, int(total), int(active)) for name, total, active in rows]


def field_keys(db: sqlite3.Connection, *, list_name: str | None = None) -> list[str]:
    """The custom field names in use (by a list's subscribers), sorted."""
    # No state filter here, so the clause is at most a JOIN and another JOIN may follow it.
    clause, params = _filter(db, list_name, None)
    rows = db.execute(
        "SELECT DISTINCT j.key FROM subscribers s "
        + clause
        + "JOIN json_each(s.fields) j ORDER BY j.key",
        params,
    )
    return [str(key) for (key,) in rows]


def export_csv(db: sqlite3.Connection, stream: TextIO, *, list_name: str | None = None) -> int:
    """Write subscribers as CSV (email,name,state,lists + one column per field); returns rows."""
    keys = field_keys(db, list_name=list_name)
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow([*RESERVED_KEYS, *keys])
    count = 0
    for subscriber in iter_subscribers(db, list_name=list_name):
        writer.writerow(
            [
                subscriber.email,
                subscriber.name,
                subscriber.state,
                LIST_SEPARATOR.join(subscriber.lists),
                *(subscriber.fields.get(key, "") for key in keys),
            ]
        )
        count += 1
    return count


def _id_of(db: sqlite3.Connection, email: str) -> int:
    row = db.execute("SELECT id FROM subscribers WHERE email = ?", (email.strip(),)).fetchone()
    if row is None:
        raise SubscriberNotFound(email.strip())
    return int(row[0])


# json.dumps with options builds a new encoder per call; one shared encoder gives the same text
# and encodes a row's fields about a third faster, which an import does once per row.
_FIELDS_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=True)


def _dump_fields(fields: Mapping[str, str]) -> str:
    return _FIELDS_ENCODER.encode(dict(fields))


def lists_left(db: sqlite3.Connection, email: str) -> list[str]:
    """The lists a subscriber unsubscribed from (their membership stays, marked)."""
    rows = db.execute(
        "SELECT l.name FROM memberships m JOIN lists l ON l.id = m.list_id"
        " JOIN subscribers s ON s.id = m.subscriber_id"
        " WHERE s.email = ? AND m.unsubscribed_at IS NOT NULL ORDER BY l.name",
        (email.strip(),),
    )
    return [str(row[0]) for row in rows]


def skipped_members(db: sqlite3.Connection, list_name: str) -> dict[str, int]:
    """Members of a list a send skips, by why: their state, or `left` the list."""
    rows = db.execute(
        "SELECT CASE WHEN s.state != 'active' THEN s.state ELSE 'left' END, count(*)"
        " FROM subscribers s JOIN memberships m ON m.subscriber_id = s.id"
        " JOIN lists l ON l.id = m.list_id"
        " WHERE l.name = ? AND (s.state != 'active' OR m.unsubscribed_at IS NOT NULL)"
        " GROUP BY 1",
        (list_name,),
    )
    return {str(why): int(count) for why, count in rows}


def takes_answers_for(db: sqlite3.Connection, list_name: str) -> bool:
    """Whether an unsubscribe from this list belongs here: a list the store has, or any list
    when the store holds no readers (a serve host's, which records only their answers)."""
    if db.execute("SELECT 1 FROM lists WHERE name = ?", (list_name,)).fetchone():
        return True
    return not holds_readers(db)


def holds_readers(db: sqlite3.Connection) -> bool:
    """Whether any list has a member who has not left it (an editor's store, not a serve's)."""
    # Asked only for what the store lacks: the scan may pass the many who left, not per click.
    row = db.execute("SELECT 1 FROM memberships WHERE unsubscribed_at IS NULL LIMIT 1").fetchone()
    return row is not None
