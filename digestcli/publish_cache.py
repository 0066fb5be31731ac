"""What the last publish rendered, by a fingerprint of its inputs, so a re-run renders nothing.

Kept in .digest/publish.json. An issue page is rendered again unless its inputs (the draft's
bytes, its slug, send time and feed id, digest.toml, every template and digest's own
rendering code) hash the same as last time and the file on disk still has the bytes that
run wrote. Losing or corrupting the file only costs time: everything is rendered again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import digestcli
from digestcli.fsutil import write_atomic

VERSION = 1
# digest's own modules whose code shapes the pages: a change to one renders everything anew.
_CODE = ("render.py", "markdown.py", "drafts.py", "publish.py", "feed.py")


@dataclass(frozen=True)
class Cached:
    """One issue as the last publish rendered it."""

    key: str
    sha: str
    title: str
    preheader: str
    date: str
    number: int | None
    # The feed's content for the issue, kept only while it is in the feed.
    entry: str | None = None


def sha(data: bytes) -> str:
    """The SHA-256 of some bytes, in hex."""
    return hashlib.sha256(data).hexdigest()


def file_sha(path: Path) -> str | None:
    """The SHA-256 of a file's bytes; None when there is no such file."""
    try:
        return sha(path.read_bytes())
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None


def fingerprint(config: Path, template_dirs: tuple[Path, ...]) -> str:
    """A hash of every input all pages share: the code, digest.toml and the templates."""
    digest = hashlib.sha256(f"{VERSION}\0{digestcli.__version__}\0".encode())
    package = Path(digestcli.__file__).parent
    for path in (*(package / name for name in _CODE), config):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    for folder in template_dirs:
        for path in sorted(folder.rglob("*.j2")):
            digest.update(str(path.relative_to(folder)).encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def page_key(shared: str, draft: bytes, *parts: str) -> str:
    """The fingerprint of one page's inputs: the shared ones, the draft and its link."""
    return sha("\0".join((shared, sha(draft), *parts)).encode())


class PageCache:
    """The pages of the last publish, by slug; loaded whole, saved whole."""

    def __init__(self, path: Path, pages: dict[str, Cached]) -> None:
        self.path = path
        self.pages = pages

    @classmethod
    def load(cls, path: Path) -> PageCache:
        """The cache at path; an empty one when it is missing or unreadable."""
        try:
            data: Any = json.loads(path.read_text(encoding="utf-8"))
            if data.get("version") != VERSION:
                return cls(path, {})
            pages = {slug: Cached(**entry) for slug, entry in data["pages"].items()}
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            return cls(path, {})
        return cls(path, pages)

    def hit(self, slug: str, key: str, on_disk: Path) -> Cached | None:
        """The cached page, when its inputs are the same and the file still holds its bytes."""
        found = self.pages.get(slug)
        if found is None or found.key != key or file_sha(on_disk) != found.sha:
            return None
        return found

    def save(self, pages: dict[str, Cached]) -> None:
        """Replace the cache with these pages (a publish's whole site)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"version": VERSION, "pages": {s: asdict(c) for s, c in sorted(pages.items())}}
        write_atomic(self.path, json.dumps(data, ensure_ascii=False), durable=False)
