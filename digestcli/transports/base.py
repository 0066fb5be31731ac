"""The one interface every transport implements, in the shape of Django's mail backends."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, ClassVar

from digestcli.config import TransportSettings
from digestcli.models import Message, Result

if TYPE_CHECKING:
    import httpx


class Transport(ABC):
    """Delivers batches of messages; one Result per message, in order.

    Whole-request failures are raised: TemporaryFailure (safe to retry),
    AmbiguousFailure (may have been accepted) or PermanentFailure / ConfigError.
    """

    name: ClassVar[str]
    max_batch: ClassVar[int]
    # The batch size used when [transport] batch_size is not set (None: max_batch).
    default_batch: ClassVar[int | None] = None
    idempotent: ClassVar[bool] = False
    # The provider's documented request rate, used when [sending] requests_per_second is 0.
    default_requests_per_second: ClassVar[float] = 0.0

    def __init__(
        self,
        settings: TransportSettings,
        env: Mapping[str, str],
        *,
        outbox_dir: Path | None = None,
        http: httpx.BaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.env = env
        self.outbox_dir = outbox_dir
        self.http = http

    def open(self) -> None:
        """Acquire connections or clients; check secrets before the first request."""

    def close(self) -> None:
        """Release whatever open() acquired."""

    def __enter__(self) -> Transport:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def batch_size(self) -> int:
        """The batch size to use: the configured one, capped at the provider's maximum."""
        wanted = self.settings.batch_size or self.default_batch or self.max_batch
        return max(1, min(wanted, self.max_batch))

    def request_bytes(self, messages: Sequence[Message], *, batch_key: str = "") -> int:
        """Bytes a batch would put on the wire, for dry runs; nothing is sent."""
        from digestcli.message import to_bytes

        return sum(len(to_bytes(message)) for message in messages)

    @abstractmethod
    def send_batch(self, messages: Sequence[Message], *, batch_key: str = "") -> list[Result]:
        """Send messages (at most max_batch); batch_key is stable across retries of one batch."""
