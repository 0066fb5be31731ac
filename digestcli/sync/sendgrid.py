"""SendGrid's suppression lists: /v3/suppression/{list}, paged by offset until a short page."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from digestcli.events import Event
from digestcli.sync.base import Fetcher, from_unix, to_unix

# The endpoint's maximum page (the spec's PaginationCommonLimit).
PAGE = 500
# What each list means for the reader: blocks are temporary refusals, counted as soft bounces.
KIND = {
    "bounces": "bounce",
    "blocks": "soft_bounce",
    "spam_reports": "complaint",
    "invalid_emails": "bounce",
    "unsubscribes": "unsubscribe",
}


class SendGridFetcher(Fetcher):
    """Bounces, blocks, spam reports, invalid emails and global unsubscribes."""

    provider = "sendgrid"
    lists = tuple(KIND)

    def pages(self, list_name: str, mark: str | None) -> Iterator[list[Event]]:
        """Pages of `limit` entries from `start_time` (inclusive); a bare array, no total."""
        params: dict[str, str | int] = {"limit": PAGE, "offset": 0}
        if mark is not None:
            params["start_time"] = to_unix(mark)
        while True:
            entries = self.api.get(f"/v3/suppression/{list_name}", params)
            if not isinstance(entries, list):
                raise ValueError(f"SendGrid answered /v3/suppression/{list_name} with no list")
            yield [self.event(list_name, entry) for entry in entries]
            if len(entries) < PAGE:
                return
            params["offset"] = int(params["offset"]) + len(entries)

    def event(self, list_name: str, entry: dict[str, Any]) -> Event:
        """One entry as an event."""
        created = int(entry["created"])
        email = str(entry["email"])
        return Event(
            source=self.provider,
            kind=KIND[list_name],
            email=email,
            at=from_unix(created),
            detail=str(entry.get("reason") or entry.get("status") or list_name)[:300],
            source_id=f"{list_name}:{email.lower()}:{created}",
        )
