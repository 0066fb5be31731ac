"""The outbox transport: every message becomes an .eml file under <outbox>/<campaign>/."""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import ClassVar, Self

from digestcli.config import TransportSettings
from digestcli.errors import ConfigError, TemporaryFailure
from digestcli.fsutil import write_atomic
from digestcli.mime import message_bytes
from digestcli.models import BatchKey, Message, Result
from digestcli.transports.base import Capabilities, Transport

# Where messages sent without a campaign (test sends: no batch key) are written.
NO_CAMPAIGN = "test"

_UNSAFE_FOLDER = re.compile(r"[^A-Za-z0-9._-]+")
_NUMBERED = re.compile(r"^(\d+)-(.+)\.eml$")
# Leaves room for the number, the ".eml" suffix and a hash within the usual 255-byte limit.
_MAX_SLUG = 200


def campaign_folder(batch_key: BatchKey | None) -> str:
    """The folder name for a batch: its campaign's, made safe for a file system."""
    campaign = batch_key.campaign if batch_key else ""
    # The key comes from the engine, but a folder name must never climb out of the outbox.
    name = _UNSAFE_FOLDER.sub("_", campaign).lstrip(".")
    return name or NO_CAMPAIGN


def recipient_slug(email: str) -> str:
    """A file-name-safe, one-to-one spelling of an address (case-insensitive, like subscribers)."""
    lowered = email.lower()
    # Percent-encoding (with "%" itself encoded) keeps distinct addresses distinct.
    slug = "".join(
        c if c.isascii() and (c.isalnum() or c in "@._+-") else _percent(c) for c in lowered
    )
    if len(slug) > _MAX_SLUG:
        digest = hashlib.sha256(lowered.encode()).hexdigest()[:16]
        slug = f"{slug[: _MAX_SLUG - len(digest) - 1]}-{digest}"
    return slug


def _percent(char: str) -> str:
    return "".join(f"%{byte:02X}" for byte in char.encode())


class _Folder:
    """One campaign folder: which number each recipient's file has, across runs and threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.names: dict[str, str] | None = None
        self.next = 1

    def file_for(self, slug: str) -> Path:
        """The recipient's file: the one already there, or the next number on first write."""
        with self.lock:
            if self.names is None:
                self.names = self._scan()
            name = self.names.get(slug)
            if name is None:
                name = self.names[slug] = f"{self.next:06d}-{slug}.eml"
                self.next += 1
        return self.path / name

    def _scan(self) -> dict[str, str]:
        # A resumed or retried send runs in a new process: the folder itself is the index.
        names = {}
        for entry in os.scandir(self.path):
            match = _NUMBERED.match(entry.name)
            if match:
                names[match[2]] = entry.name
                self.next = max(self.next, int(match[1]) + 1)
        return names


# One index per folder per process: the send engine gives each worker thread its own transport,
# and they must not hand out the same number twice.
_FOLDERS: dict[Path, _Folder] = {}
_FOLDERS_LOCK = threading.Lock()


def _folder_at(path: Path) -> _Folder:
    key = path.resolve()
    with _FOLDERS_LOCK:
        folder = _FOLDERS.get(key)
        if folder is None:
            folder = _FOLDERS[key] = _Folder(key)
        return folder


class OutboxTransport(Transport):
    """Writes each message as an .eml file under <outbox_dir>/<campaign>/ instead of sending it.

    Files are numbered in the order recipients were first written, and a re-send to the same
    recipient of the same campaign overwrites that recipient's file.
    """

    name: ClassVar[str] = "outbox"
    # Sending again rewrites the same files, so a batch in doubt can simply be sent again.
    capabilities: ClassVar[Capabilities] = Capabilities(max_batch=10_000, idempotent=True)

    def __init__(self, outbox_dir: Path) -> None:
        self.outbox_dir = outbox_dir

    @classmethod
    def from_settings(
        cls, settings: TransportSettings, env: Mapping[str, str], *, outbox_dir: Path
    ) -> Self:
        """An outbox writing under the workspace's .digest/outbox/."""
        return cls(outbox_dir)

    def folder_path(self, batch_key: BatchKey | None) -> Path:
        """The folder that a batch with this key is written to."""
        return self.outbox_dir / campaign_folder(batch_key)

    def send_batch(
        self, messages: Sequence[Message], *, batch_key: BatchKey | None = None
    ) -> list[Result]:
        """Write each message to its recipient's file, atomically; the path is the provider id."""
        if not messages:
            return []
        folder = _folder_at(self.folder_path(batch_key))
        results = []
        try:
            # Cheap, and it brings back a folder deleted while this process kept its index.
            folder.path.mkdir(parents=True, exist_ok=True)
            for message in messages:
                path = folder.file_for(recipient_slug(message.to.email))
                # Not flushed to disk, as before: an fsync made each file ~5x slower to write.
                write_atomic(path, message_bytes(message), mode=0o600, durable=False)
                results.append(Result(email=message.to.email, ok=True, provider_id=str(path)))
        except PermissionError as exc:
            raise ConfigError(
                f"cannot write to the outbox folder {folder.path} ({exc.strerror}); "
                "check its permissions."
            ) from exc
        except OSError as exc:
            # Files already written are rewritten by the retry, never duplicated.
            raise TemporaryFailure(
                f"could not write to the outbox folder {folder.path} ({exc.strerror or exc})."
            ) from exc
        return results
