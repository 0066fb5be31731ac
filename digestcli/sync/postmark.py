"""Postmark's suppressions dump of the message stream, and its bounces by count and offset."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from digestcli.events import Event
from digestcli.postmark_answers import SUPPRESSIONS, bounce_kind
from digestcli.sync.base import Fetcher, day_before, from_iso

# The bounces endpoint's largest page, and how deep count + offset may reach.
PAGE = 500
DEPTH = 10_000


class PostmarkFetcher(Fetcher):
    """The stream's suppressions (no paging) and the bounces (500 a page, 10,000 deep)."""

    provider = "postmark"
    lists = ("suppressions", "bounces")

    def pages(self, list_name: str, mark: str | None) -> Iterator[list[Event]]:
        """The suppressions dump as one page, or the bounces page by page, from the mark's day."""
        since = {"fromdate": day_before(mark)} if mark is not None else {}
        if list_name == "suppressions":
            stream = self.api.transport.settings.message_stream or "broadcast"
            answer = self.api.get(f"/message-streams/{stream}/suppressions/dump", since)
            entries = answer["Suppressions"]
            known = [e for e in entries if e["SuppressionReason"] in SUPPRESSIONS]
            events = [self.suppression(e) for e in known]
            yield [e for e in events if mark is None or e.at >= mark]
            return
        offset = 0
        while offset + PAGE <= DEPTH:
            answer = self.api.get("/bounces", {"count": PAGE, "offset": offset, **since})
            bounces = answer["Bounces"]
            events = [event for b in bounces if (event := self.bounce(b)) is not None]
            yield [e for e in events if mark is None or e.at >= mark]
            offset += len(bounces)
            if not bounces or offset >= int(answer.get("TotalCount") or 0):
                return

    def suppression(self, entry: dict[str, Any]) -> Event:
        """One suppressed address as an event."""
        reason = str(entry["SuppressionReason"])
        email = str(entry["EmailAddress"])
        created = str(entry["CreatedAt"])
        return Event(
            source=self.provider,
            kind=SUPPRESSIONS[reason],
            email=email,
            at=from_iso(created),
            detail=f"{reason} ({entry.get('Origin') or 'unknown origin'})",
            source_id=f"suppression:{reason}:{email.lower()}:{created}",
        )

    def bounce(self, entry: dict[str, Any]) -> Event | None:
        """One bounce as an event, or None for types that say nothing about the address."""
        kind = str(entry.get("Type") or "")
        event_kind = bounce_kind(kind, entry.get("Inactive"))
        if event_kind is None:
            return None
        return Event(
            source=self.provider,
            kind=event_kind,
            email=str(entry["Email"]),
            at=from_iso(str(entry["BouncedAt"])),
            detail=kind,
            source_id=f"bounce:{entry['ID']}",
        )
