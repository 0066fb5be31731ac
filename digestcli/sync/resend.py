"""Resend's suppressions: /suppressions, by the `after` cursor until has_more is false."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from digestcli.events import Event
from digestcli.sync.base import Fetcher, from_iso

# The endpoint's maximum page (the spec's PaginationLimit).
PAGE = 100
# A manual suppression is the account owner's stop: the address gets no more mail.
KIND = {"bounce": "bounce", "complaint": "complaint", "manual": "unsubscribe"}


class ResendFetcher(Fetcher):
    """The team's one suppression list; no time filter, so older entries are skipped."""

    provider = "resend"
    lists = ("suppressions",)

    def pages(self, list_name: str, mark: str | None) -> Iterator[list[Event]]:
        """Pages of up to 100, each from after the last id of the one before."""
        params: dict[str, str | int] = {"limit": PAGE}
        while True:
            answer = self.api.get("/suppressions", params)
            data = answer.get("data") if isinstance(answer, dict) else None
            if not isinstance(data, list):
                raise ValueError("Resend answered /suppressions without data")
            events = [self.event(entry) for entry in data if entry.get("origin") in KIND]
            yield [e for e in events if mark is None or e.at >= mark]
            if not data or not answer.get("has_more"):
                return
            params["after"] = str(data[-1]["id"])

    def event(self, entry: dict[str, Any]) -> Event:
        """One suppression as an event."""
        origin = str(entry["origin"])
        return Event(
            source=self.provider,
            kind=KIND[origin],
            email=str(entry["email"]),
            at=from_iso(str(entry["created_at"])),
            detail=f"suppressed by Resend ({origin})",
            source_id=f"suppression:{entry['id']}",
        )
