"""The in-memory harness: the far side is a Mailbox, each message read back through MIME."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from digestcli.message import to_bytes
from digestcli.transports.base import Transport
from digestcli.transports.memory import Mailbox, MemoryTransport
from harness.mime import Received, parse_eml


@contextmanager
def memory_harness() -> Iterator[tuple[Transport, Callable[[], list[Received]]]]:
    """A MemoryTransport with a mailbox of its own; what it holds must serialise as MIME."""
    box = Mailbox()

    def received() -> list[Received]:
        with box.lock:
            messages = list(box.messages)
        return [parse_eml(to_bytes(m), to=m.to.email) for m in messages]

    yield MemoryTransport(box), received
