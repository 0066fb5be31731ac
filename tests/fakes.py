"""A scriptable in-memory transport and store helpers for the sending-engine tests."""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar

from digestcli.config import Publication, Settings, TransportSettings, Unsubscribe
from digestcli.db import connect, now
from digestcli.models import Content, MergeText, Message, Result
from digestcli.transports.base import Transport

Script = Callable[[int, Sequence[Message], str], list[Result] | None]


class MemoryTransport(Transport):
    """Delivers into a shared mailbox; a script may fail requests the way providers do.

    The script gets (request number, messages, batch key) and returns None to deliver
    normally, a list of Results to answer with, or raises a transport error.
    """

    name = "memory"
    max_batch: ClassVar[int] = 10
    idempotent: ClassVar[bool] = False

    def __init__(self, box: Mailbox, script: Script | None = None, batch: int = 10) -> None:
        super().__init__(TransportSettings(kind="outbox", batch_size=batch), {})
        self.box = box
        self.script = script
        self.max_batch = max(batch, 1)  # type: ignore[misc]

    def send_batch(self, messages: Sequence[Message], *, batch_key: str = "") -> list[Result]:
        """Deliver, unless the script says otherwise; idempotent keys are honoured."""
        with self.box.lock:
            self.box.requests += 1
            number = self.box.requests
            self.box.keys.append(batch_key)
        if self.idempotent and batch_key in self.box.answered:
            return self.box.answered[batch_key]
        scripted = self.script(number, messages, batch_key) if self.script else None
        if scripted is not None:
            return scripted
        results = []
        with self.box.lock:
            for message in messages:
                self.box.received[message.to.email] += 1
                self.box.messages.append(message)
                results.append(Result(message.to.email, True, f"mem-{number}"))
            if self.idempotent:
                self.box.answered[batch_key] = results
        return results


class IdempotentMemoryTransport(MemoryTransport):
    """Like MemoryTransport, but a repeated batch key returns the first answer (like Resend)."""

    idempotent: ClassVar[bool] = True


class FakeClock:
    """Time that passes only when someone sleeps: waits are recorded, never slept."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.lock = threading.Lock()

    def __call__(self) -> float:
        with self.lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        """Advance the clock instead of waiting."""
        with self.lock:
            self.sleeps.append(seconds)
            self.now += max(seconds, 0.0)


class Mailbox:
    """What the far side received."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: Counter[str] = Counter()
        self.messages: list[Message] = []
        self.keys: list[str] = []
        self.requests = 0
        self.answered: dict[str, list[Result]] = {}

    def deliver(self, messages: Sequence[Message]) -> None:
        """Record messages as received (for scripts that accept, then fail)."""
        with self.lock:
            for message in messages:
                self.received[message.to.email] += 1
                self.messages.append(message)


def store(path: Path, count: int, list_name: str = "default") -> sqlite3.Connection:
    """A store with count active subscribers on one list: user0@example.org, ..."""
    db = connect(path)
    stamp = now()
    db.execute("BEGIN")
    db.execute("INSERT INTO lists (name, created_at) VALUES (?, ?)", (list_name, stamp))
    db.executemany(
        "INSERT INTO subscribers (id, email, name, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
        [(i + 1, f"user{i}@example.org", f"User {i}", stamp, stamp) for i in range(count)],
    )
    db.executemany(
        "INSERT INTO memberships (list_id, subscriber_id, created_at) VALUES (1, ?, ?)",
        [(i + 1, stamp) for i in range(count)],
    )
    db.execute("COMMIT")
    return db


def content() -> Content:
    """A small rendered issue with slots for name and unsubscribe link."""
    return Content(
        subject="Weekly",
        from_addr="Digest <digest@example.org>",
        html=MergeText(("<p>Hi ", "name", "</p><a href='", "unsubscribe_url", "'>u</a>")),
        text=MergeText(("Hi ", "name", "\nUnsubscribe: ", "unsubscribe_url", "\n")),
    )


def settings(tmp: Path) -> Settings:
    """Minimal settings."""
    return Settings(
        path=tmp / "digest.toml",
        publication=Publication("Digest", "Digest <digest@example.org>", "1 Street"),
        unsubscribe=Unsubscribe("https://example.org/u", "u@example.org"),
    )
