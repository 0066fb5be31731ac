"""The one interface every transport implements, in the shape of Django's mail backends."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self

from digestcli.config import TransportSettings
from digestcli.models import BatchKey, Message, Result


@dataclass(frozen=True)
class Capabilities:
    """What a kind of transport can do, known without making one."""

    max_batch: int
    # The batch size used when [transport] batch_size is not set (None: max_batch).
    default_batch: int | None = None
    # A batch in doubt can be sent again without a second copy reaching anyone.
    idempotent: bool = False
    # The provider's documented request rate, used when [sending] requests_per_second is 0.
    requests_per_second: float = 0.0
    # The provider fills per-recipient values server-side, so the body travels once a batch.
    substitution: bool = False
    # What the provider replaces with the reader's unsubscribe link it hosts (adding its own
    # RFC 8058 headers), for [unsubscribe] mode = "provider"; None: it cannot host one.
    unsubscribe_placeholder: str | None = None
    # The [transport] key provider mode also needs (SendGrid's unsubscribe group).
    unsubscribe_setting: str | None = None
    # The request carries each message's Message-ID; when not (the provider sets its own),
    # a send leaves it empty rather than hash one per reader.
    message_ids: bool = True

    @property
    def provider_unsubscribe(self) -> bool:
        """Whether the provider can host the unsubscribe page and its headers itself."""
        return self.unsubscribe_placeholder is not None

    def batch_size(self, configured: int | None) -> int:
        """The batch size to use: the configured one, capped at the provider's maximum."""
        wanted = configured or self.default_batch or self.max_batch
        return max(1, min(wanted, self.max_batch))


class Transport(ABC):
    """Delivers batches of messages; one Result per message, in order.

    Whole-request failures are raised: TemporaryFailure (safe to retry),
    AmbiguousFailure (may have been accepted) or PermanentFailure / ConfigError.
    """

    name: ClassVar[str]
    capabilities: ClassVar[Capabilities]

    @classmethod
    @abstractmethod
    def from_settings(
        cls, settings: TransportSettings, env: Mapping[str, str], *, outbox_dir: Path
    ) -> Self:
        """A new, unopened transport configured from digest.toml and the environment."""

    def open(self) -> None:
        """Acquire connections or clients; check secrets before the first request."""

    def close(self) -> None:
        """Release whatever open() acquired."""

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def request_bytes(
        self, messages: Sequence[Message], *, batch_key: BatchKey | None = None
    ) -> int:
        """Bytes a batch would put on the wire, for dry runs; nothing is sent."""
        from digestcli.mime import message_bytes

        return sum(len(message_bytes(message)) for message in messages)

    @abstractmethod
    def send_batch(
        self, messages: Sequence[Message], *, batch_key: BatchKey | None = None
    ) -> list[Result]:
        """Send messages (at most max_batch); batch_key is the same on every retry of a batch.

        batch_key is None for a test send, which belongs to no campaign.
        """
