"""Plain data shared by the core: an issue's content, rendered content, messages, results."""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

# The list commands use without --list (DESIGN §5). It lives here, not in subscribers.py, so that
# the CLI can name it without importing the store, and email-validator with it, at start-up.
DEFAULT_LIST = "default"


@dataclass(frozen=True)
class Link:
    """An item's link: a URL with an optional label."""

    url: str
    label: str | None = None


@dataclass(frozen=True)
class Image:
    """An item's image: a URL with its alt text."""

    url: str
    alt: str


@dataclass(frozen=True)
class Item:
    """One numbered news item: headline, Markdown body, optional link and image."""

    title: str
    body: str = ""
    link: Link | None = None
    image: Image | None = None


@dataclass(frozen=True)
class Issue:
    """A draft's content as data, independent of its file syntax."""

    title: str
    subject: str
    preheader: str = ""
    date: str = ""
    number: int | None = None
    intro: str = ""
    items: tuple[Item, ...] = ()
    outro_title: str = ""
    outro: str = ""


@dataclass(frozen=True)
class MergeText:
    """Rendered text with per-recipient slots: literal, key, literal, ..., literal."""

    parts: tuple[str, ...]

    @property
    def keys(self) -> frozenset[str]:
        """The merge keys this text needs."""
        return frozenset(self.parts[1::2])

    @property
    def literals(self) -> tuple[str, ...]:
        """The fixed pieces between slots."""
        return self.parts[0::2]

    def fill(self, values: Mapping[str, str]) -> str:
        """Join the literals with the given values, already escaped for this text's context."""
        parts = list(self.parts)
        for i in range(1, len(parts), 2):
            parts[i] = values.get(parts[i], "")
        return "".join(parts)

    def with_literal(self, key: str, text: str) -> MergeText:
        """This text with every slot of key made fixed text, written as it is (not escaped)."""
        parts = [self.parts[0]]
        for i in range(1, len(self.parts), 2):
            if self.parts[i] == key:
                parts[-1] += text + self.parts[i + 1]
            else:
                parts += [self.parts[i], self.parts[i + 1]]
        return MergeText(tuple(parts))


@dataclass(frozen=True)
class Content:
    """One rendered issue, shared by every message of a send."""

    subject: str
    from_addr: str
    html: MergeText
    text: MergeText
    reply_to: str | None = None

    def with_literal(self, key: str, text: str) -> Content:
        """The same issue with key's slots filled once for everyone by fixed text."""
        return replace(
            self, html=self.html.with_literal(key, text), text=self.text.with_literal(key, text)
        )


@dataclass(frozen=True)
class Recipient:
    """Who a message goes to, with their personalisation fields."""

    email: str
    name: str = ""
    fields: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Message:
    """One outgoing email: shared content plus this recipient's values and headers."""

    content: Content
    to: Recipient
    subject: str
    message_id: str
    values: Mapping[str, str] = field(default_factory=dict)
    headers: tuple[tuple[str, str], ...] = ()

    def html(self) -> str:
        """The HTML body for this recipient."""
        escaped = {k: html.escape(v, quote=True) for k, v in self.values.items()}
        return self.content.html.fill(escaped)

    def text(self) -> str:
        """The plain-text body for this recipient."""
        return self.content.text.fill(self.values)


@dataclass(frozen=True)
class BatchKey:
    """Which batch of which campaign a request carries: the same on every attempt of it."""

    campaign: str
    batch: str
    # A random id of the campaign, so two campaigns of the same name never share a key.
    nonce: str = ""

    def __str__(self) -> str:
        return f"{self.campaign}:{self.batch}"

    def part(self, suffix: str) -> BatchKey:
        """The key of a part of this batch sent on its own (a retry or a half)."""
        return BatchKey(self.campaign, f"{self.batch}.{suffix}", self.nonce)


@dataclass(frozen=True)
class Result:
    """What happened to one recipient of a batch."""

    email: str
    ok: bool
    provider_id: str | None = None
    error: str | None = None
    permanent: bool = False
    inactive: bool = False
