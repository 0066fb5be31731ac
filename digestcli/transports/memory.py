"""The in-memory transport (Django's locmem): messages land in a mailbox a test can read."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import ClassVar, Self

from digestcli.config import TransportSettings
from digestcli.models import BatchKey, Message, Result
from digestcli.transports.base import Capabilities, Transport

# Gets (request number, messages, batch key); returns None to deliver as usual, Results to
# answer with instead, or raises a transport error the way a provider would fail.
Script = Callable[[int, Sequence[Message], BatchKey | None], list[Result] | None]


class Mailbox:
    """What the far side received, safe to share between sending threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: Counter[str] = Counter()
        self.messages: list[Message] = []
        self.keys: list[BatchKey | None] = []
        self.requests = 0
        self.answered: dict[BatchKey, list[Result]] = {}

    def deliver(self, messages: Sequence[Message]) -> None:
        """Record messages as received (also for scripts that accept, then fail)."""
        with self.lock:
            for message in messages:
                self.received[message.to.email] += 1
                self.messages.append(message)


# Where transports made from settings deliver, like django.core.mail.outbox.
MAILBOX = Mailbox()


class MemoryTransport(Transport):
    """Delivers into a mailbox in this process; a script may fail requests as providers do.

    Not a kind digest.toml can choose: a list send into memory would vanish with the process.
    Tests make it directly. When its capabilities say idempotent, a repeated batch key gets
    the first answer back and delivers nothing again, as Resend does.
    """

    name: ClassVar[str] = "memory"
    capabilities: ClassVar[Capabilities] = Capabilities(max_batch=10_000)

    def __init__(self, mailbox: Mailbox | None = None, script: Script | None = None) -> None:
        self.mailbox = MAILBOX if mailbox is None else mailbox
        self.script = script

    @classmethod
    def from_settings(
        cls, settings: TransportSettings, env: Mapping[str, str], *, outbox_dir: Path
    ) -> Self:
        """A transport delivering into the process-wide MAILBOX."""
        return cls()

    def send_batch(
        self, messages: Sequence[Message], *, batch_key: BatchKey | None = None
    ) -> list[Result]:
        """Deliver, unless the script says otherwise; one Result per message, in order."""
        if not messages:
            return []
        box = self.mailbox
        remembered = batch_key if self.capabilities.idempotent else None
        with box.lock:
            box.requests += 1
            number = box.requests
            box.keys.append(batch_key)
            if remembered is not None and remembered in box.answered:
                return box.answered[remembered]
        scripted = self.script(number, messages, batch_key) if self.script else None
        if scripted is not None:
            return scripted
        box.deliver(messages)
        results = [Result(m.to.email, ok=True, provider_id=f"mem-{number}") for m in messages]
        if remembered is not None:
            with box.lock:
                box.answered[remembered] = results
        return results
