"""The drafts of a workspace: listing, picking the current one, creating one, saving an edit."""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from digestcli import journal
from digestcli.db import read_only
from digestcli.drafts import load_draft, new_draft_text, parse_draft
from digestcli.errors import DigestError, DraftError
from digestcli.fsutil import write_atomic
from digestcli.models import Issue
from digestcli.workspace import Workspace


@dataclass(frozen=True)
class DraftInfo:
    """One draft file as the listing shows it."""

    path: Path
    issue: Issue | None
    state: str
    error: str | None = None

    @property
    def sort_key(self) -> tuple[str, int, str]:
        """Newest last: by date, then number, then file name."""
        if self.issue is None:
            return ("", 0, self.path.name)
        return (self.issue.date, self.issue.number or 0, self.path.name)


def sent_drafts(workspace: Workspace) -> set[str]:
    """File names of drafts whose campaign has been sent (from the journal, when there is one)."""
    if not workspace.db_path.exists():
        return set()
    try:
        # Read-only and closed at once: listing drafts must never create or lock the store.
        with read_only(workspace.db_path) as db:
            return journal.finished_drafts(db)
    except sqlite3.Error:
        return set()


def list_drafts(workspace: Workspace) -> list[DraftInfo]:
    """Every draft in drafts/, oldest first; broken ones carry their error."""
    if not workspace.drafts_dir.is_dir():
        return []
    sent = sent_drafts(workspace)
    infos = []
    for path in sorted(workspace.drafts_dir.glob("*.md")):
        try:
            issue = load_draft(path).issue
        except DigestError as exc:
            infos.append(DraftInfo(path, None, "broken", str(exc)))
            continue
        infos.append(DraftInfo(path, issue, "sent" if path.name in sent else "draft"))
    return sorted(infos, key=lambda info: info.sort_key)


def current_draft(
    workspace: Workspace,
    selector: str | None = None,
    *,
    include_sent: bool = False,
    infos: list[DraftInfo] | None = None,
) -> Path:
    """The draft a command acts on: --draft (path, file name or number) or the newest unsent.

    With include_sent, a workspace whose drafts are all sent gives the newest one, so that
    `digest send` can say it was sent rather than that there is nothing. A caller that has
    listed the drafts already passes `infos`, so they are not read again.
    """
    if selector:
        return _select(workspace, selector)
    if infos is None:
        infos = list_drafts(workspace)
    unsent = [info for info in infos if info.state != "sent"]
    if not unsent and include_sent and infos:
        return infos[-1].path
    if not unsent:
        raise DraftError(
            f"no unsent draft in {workspace.drafts_dir}; start one with `digest new TITLE`."
        )
    return unsent[-1].path


def _select(workspace: Workspace, selector: str) -> Path:
    as_path = Path(selector).expanduser()
    if as_path.is_file():
        return as_path.resolve()
    for name in (selector, f"{selector}.md"):
        candidate = workspace.drafts_dir / name
        if candidate.is_file():
            return candidate
    if selector.isdigit():
        matches = [
            info.path
            for info in list_drafts(workspace)
            if info.issue is not None and info.issue.number == int(selector)
        ]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            names = ", ".join(p.name for p in matches)
            raise DraftError(f"several drafts are number {selector} ({names}); give a file name.")
    raise DraftError(
        f"no draft matches `{selector}` in {workspace.drafts_dir}; `digest drafts` lists them."
    )


def slugify(title: str, limit: int = 60) -> str:
    """A file-name- and URL-safe slug of a title, at most `limit` characters."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")
    return slug[:limit].rstrip("-") or "issue"


def create_draft(
    workspace: Workspace,
    title: str,
    *,
    subject: str = "",
    preheader: str = "",
    date: str | None = None,
) -> Path:
    """Write a new draft with the next issue number; return its path."""
    if not title.strip():
        raise DraftError("a draft needs a title; give a non-empty TITLE.")
    when = date or dt.date.today().isoformat()
    try:
        when = dt.date.fromisoformat(when).isoformat()
    except ValueError:
        raise DraftError(f"--date must be written YYYY-MM-DD, not `{when}`.") from None
    numbers = [i.issue.number for i in list_drafts(workspace) if i.issue and i.issue.number]
    text = new_draft_text(title.strip(), subject, preheader, when, max(numbers, default=0) + 1)
    workspace.drafts_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{when}-{slugify(title)}"
    path = workspace.drafts_dir / f"{stem}.md"
    counter = 2
    while path.exists():
        path = workspace.drafts_dir / f"{stem}-{counter}.md"
        counter += 1
    write_atomic(path, text)
    return path


def save_edited(workspace: Workspace, path: Path, text: str) -> None:
    """Replace a draft with an edited text that parses; else keep the text aside and refuse."""
    try:
        parse_draft(text, path)
    except DraftError as exc:
        folder = workspace.state_dir / "rejected"
        folder.mkdir(parents=True, exist_ok=True)
        kept = folder / path.name
        write_atomic(kept, text)
        raise DraftError(f"{exc} Nothing was saved; your edit is kept in {kept}.") from None
    write_atomic(path, text)
