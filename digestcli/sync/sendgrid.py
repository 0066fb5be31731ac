"""SendGrid's suppression lists: /v3/suppression/{list}, paged by offset until a short page."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from digestcli.events import Event
from digestcli.sync.api import ProviderAPI
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


# The unsubscribe group of [transport] asm_group_id, where readers who leave through
# SendGrid's own link land ([unsubscribe] mode = "provider").
GROUP = "asm_group"


class SendGridFetcher(Fetcher):
    """Bounces, blocks, spam reports, invalid emails, global and group unsubscribes."""

    provider = "sendgrid"

    def __init__(self, api: ProviderAPI) -> None:
        super().__init__(api)
        self.group = api.transport.settings.asm_group_id
        self.lists = (*KIND, GROUP) if self.group is not None else tuple(KIND)

    def pages(self, list_name: str, mark: str | None) -> Iterator[list[Event]]:
        """Pages of `limit` entries from `start_time` (inclusive); a bare array, no total."""
        if list_name == GROUP:
            yield self.group_unsubscribes()
            return
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

    def group_unsubscribes(self) -> list[Event]:
        """The group's suppressions: bare addresses, no dates, no paging; re-read each time and
        deduplicated by address."""
        path = f"/v3/asm/groups/{self.group}/suppressions"
        entries = self.api.get(path, {})
        if not isinstance(entries, list):
            raise ValueError(f"SendGrid answered {path} with no list")
        return [
            Event(
                source=self.provider,
                kind="unsubscribe",
                email=str(email),
                detail=f"left unsubscribe group {self.group}",
                source_id=f"{GROUP}:{self.group}:{str(email).lower()}",
            )
            for email in entries
        ]

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
