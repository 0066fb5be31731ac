"""Mailgun's suppression lists: /v3/{domain}/{list}, following paging.next to an empty page."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from digestcli.events import Event
from digestcli.sync.api import relative
from digestcli.sync.base import Fetcher, from_rfc822

# Mailgun's maximum page.
PAGE = 1000
KIND = {"bounces": "bounce", "complaints": "complaint", "unsubscribes": "unsubscribe"}


class MailgunFetcher(Fetcher):
    """Bounces, complaints and unsubscribes of the sending domain.

    Mailgun pages by address and has no time filter, so every page is read and entries
    older than the mark are skipped.
    """

    provider = "mailgun"
    lists = tuple(KIND)

    def pages(self, list_name: str, mark: str | None) -> Iterator[list[Event]]:
        """Pages from the first on, by each answer's paging.next."""
        domain = self.api.transport.settings.domain
        path: str | None = f"/v3/{domain}/{list_name}?limit={PAGE}"
        seen: set[str] = set()
        while path is not None and path not in seen:
            seen.add(path)
            answer = self.api.get(path)
            items = answer.get("items") if isinstance(answer, dict) else None
            if not isinstance(items, list):
                raise ValueError(f"Mailgun answered {list_name} without items")
            if not items:
                return
            events = [self.event(list_name, item) for item in items]
            yield [e for e in events if mark is None or e.at >= mark]
            following = (answer.get("paging") or {}).get("next")
            path = relative(following) if isinstance(following, str) and following else None

    def event(self, list_name: str, item: dict[str, Any]) -> Event:
        """One item as an event."""
        email = str(item["address"])
        created = str(item.get("created_at") or "")
        detail = " ".join(str(item[k]) for k in ("code", "error") if item.get(k))
        return Event(
            source=self.provider,
            kind=KIND[list_name],
            email=email,
            at=from_rfc822(created),
            detail=(detail or list_name)[:300],
            source_id=f"{list_name}:{email.lower()}:{created}",
        )
