"""What every provider's suppression fetcher provides, and the time formats they share."""

from __future__ import annotations

import datetime as dt
import email.utils
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import ClassVar

from digestcli.events import Event
from digestcli.sync.api import ProviderAPI


class Fetcher(ABC):
    """Turns one provider's suppression lists into events, a page at a time.

    A mark is the `at` of the newest event a completed sync of that list has seen (ISO 8601
    UTC); each fetcher asks only for entries from there on where the API can filter by time,
    and skips older ones where it cannot. The boundary entry comes again and is deduplicated.
    """

    # The transport kind (and event source) this fetcher reads.
    provider: ClassVar[str]
    # The provider's suppression lists, in the order they are read.
    lists: tuple[str, ...]

    def __init__(self, api: ProviderAPI) -> None:
        self.api = api

    @abstractmethod
    def pages(self, list_name: str, mark: str | None) -> Iterator[list[Event]]:
        """The events of one list newer than mark (all of them without one), page by page."""


def iso(moment: dt.datetime) -> str:
    """A moment as the ISO 8601 UTC text events carry (naive means UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds")


def from_unix(seconds: float) -> str:
    """A unix time as ISO 8601 UTC."""
    return iso(dt.datetime.fromtimestamp(seconds, dt.UTC))


def from_iso(text: str) -> str:
    """An ISO 8601 time in any of the providers' spellings, as ISO 8601 UTC."""
    text = text.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    return iso(dt.datetime.fromisoformat(text))


def from_rfc822(text: str) -> str:
    """An RFC 822 date ("Thu, 11 Dec 2025 01:49:40 UTC") as ISO 8601 UTC."""
    return iso(email.utils.parsedate_to_datetime(text))


def to_unix(mark: str) -> int:
    """An ISO 8601 mark as a unix time."""
    return int(dt.datetime.fromisoformat(mark).timestamp())


def day_before(mark: str) -> str:
    """The date before a mark's: a provider filtering by date in its own time zone
    (Postmark's are US Eastern) then still includes everything from the mark on."""
    return (dt.datetime.fromisoformat(mark) - dt.timedelta(days=1)).date().isoformat()
