"""In-memory transport factories, a fake clock and store helpers for the sending-engine tests."""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

from digestcli.config import Publication, Settings, Unsubscribe
from digestcli.db import connect, now
from digestcli.models import Content, MergeText
from digestcli.transports import Factory
from digestcli.transports.base import Capabilities
from digestcli.transports.memory import Mailbox, MemoryTransport, Script

__all__ = ["Mailbox", "Script", "memory"]


class IdempotentMemoryTransport(MemoryTransport):
    """Like MemoryTransport, but a repeated batch key returns the first answer (like Resend)."""

    capabilities: ClassVar[Capabilities] = replace(MemoryTransport.capabilities, idempotent=True)


def memory(
    box: Mailbox, script: Script | None = None, batch: int = 10, *, idempotent: bool = False
) -> Factory:
    """A factory of in-memory transports delivering into box, batch recipients a request."""
    cls = IdempotentMemoryTransport if idempotent else MemoryTransport
    return Factory(
        kind="memory",
        make=lambda: cls(box, script),
        capabilities=cls.capabilities,
        batch_size=batch,
        requests_per_second=0.0,
    )


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
