"""Reading a remote `digest serve`'s recorded answers (GET /events) into this store."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from digestcli import syncstate
from digestcli.db import transaction
from digestcli.errors import DigestError
from digestcli.events import KINDS, Event, record

if TYPE_CHECKING:
    import httpx

MARK = "serve:events"
# Pages read in one sync, at most (1,000 events each): a bound, not a limit anyone meets.
MAX_PAGES = 1000


def read_remote(
    db: sqlite3.Connection,
    base_url: str,
    key: str,
    *,
    soft_limit: int,
    http: httpx.BaseTransport | None = None,
    timeout: float = 30.0,
) -> tuple[int, int, dict[str, int]]:
    """Fetch the serve's events after the stored cursor; return (fetched, applied, changes).

    Each event keeps its own source and id, so one the serve recorded in this very store
    (a serve running on this workspace) is a duplicate and changes nothing.
    """
    import httpx

    cursor = int(syncstate.mark(db, MARK) or 0)
    fetched = applied = 0
    changes = {"unsubscribed": 0, "bounced": 0, "complained": 0}
    headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
    with httpx.Client(transport=http, timeout=timeout, headers=headers) as client:
        for _ in range(MAX_PAGES):
            try:
                response = client.get(f"{base_url.rstrip('/')}/events", params={"after": cursor})
            except httpx.HTTPError as exc:
                raise DigestError(f"could not reach {base_url} ({type(exc).__name__})") from None
            if response.status_code == 401:
                raise DigestError(
                    f"{base_url}/events refused the key: the serve there signs with another "
                    "DIGEST_SECRET"
                )
            if not response.is_success:
                raise DigestError(f"{base_url}/events answered HTTP {response.status_code}")
            events, cursor, more = _page(response.json(), cursor)
            fetched += len(events)
            done = record(db, events, soft_limit=soft_limit)
            applied += done.recorded
            for state, number in done.changes.items():
                changes[state] += number
            with transaction(db):
                syncstate.set_mark(db, MARK, str(cursor))
            if not more:
                break
    return fetched, applied, changes


def _page(data: Any, cursor: int) -> tuple[list[Event], int, bool]:
    """The events of one page, the next cursor, and whether more pages follow."""
    if not isinstance(data, dict) or not isinstance(data.get("events"), list):
        raise DigestError("the serve's /events answer is not what digest serves")
    events = []
    for item in data["events"]:
        if not isinstance(item, Mapping) or item.get("kind") not in KINDS:
            continue
        events.append(
            Event(
                source=str(item.get("source") or "remote"),
                kind=str(item["kind"]),
                email=str(item.get("email") or ""),
                list=item.get("list") if isinstance(item.get("list"), str) else None,
                at=str(item.get("at") or ""),
                detail=str(item.get("detail") or ""),
                source_id=str(item.get("source_id") or ""),
                ref=str(item.get("ref") or ""),
            )
        )
    next_cursor = data.get("cursor")
    if not isinstance(next_cursor, int) or next_cursor < cursor:
        raise DigestError("the serve's /events answer has no usable cursor")
    # An answer naming a send is resolved here (events.record), where the send is known.
    return [e for e in events if e.email or e.ref], next_cursor, bool(data.get("more"))
