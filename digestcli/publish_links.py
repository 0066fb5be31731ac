"""Where an issue lives on the web: its slug, page URL and site folder (no heavy imports)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from digestcli import journal
from digestcli.catalog import slugify
from digestcli.config import Settings
from digestcli.db import read_only
from digestcli.workspace import Workspace

#: The site folder when digest.toml's [archive] out does not name one.
DEFAULT_OUT = "site"


def slug_for(draft_name: str) -> str:
    """A URL-safe folder name from a draft's file name (2026-11-30-week-48.md: its stem)."""
    return slugify(draft_name.removesuffix(".md"), limit=80)


def unique(slug: str, taken: Callable[[str], bool]) -> str:
    """slug, or slug-2, slug-3... : the first that `taken` does not claim."""
    candidate, n = slug, 2
    while taken(candidate):
        candidate, n = f"{slug}-{n}", n + 1
    return candidate


def site_url(web_url: str) -> str:
    """The site's root URL, always ending in a slash."""
    return web_url if web_url.endswith("/") else web_url + "/"


def page_url(web_url: str, slug: str) -> str:
    """The absolute URL of an issue's web version: {web_url}issues/<slug>/."""
    return f"{site_url(web_url)}issues/{slug}/"


def page_path(slug: str) -> str:
    """The site-relative file of an issue's web version."""
    return f"issues/{slug}/index.html"


def site_dir(workspace: Workspace, settings: Settings) -> Path:
    """Where `digest publish` writes: [archive] out (relative to the workspace), else site/."""
    return workspace.root / (settings.archive.out or DEFAULT_OUT)


def new_link(db: sqlite3.Connection, draft_name: str, settings: Settings) -> journal.IssueLink:
    """The slug and page URL a draft's first campaign fixes: its file stem, made unique."""
    slug = unique(slug_for(draft_name), lambda s: journal.slug_taken(db, s, draft_name))
    web_url = settings.publication.web_url
    return journal.IssueLink(slug, page_url(web_url, slug) if web_url else None)


def published_page(workspace: Workspace, draft_name: str) -> Path | None:
    """The web version `digest publish` wrote for a draft, if the draft was sent and published."""
    if not workspace.db_path.exists():
        return None
    try:
        # Read-only: previewing must never create or lock the store.
        with read_only(workspace.db_path) as db:
            link = journal.issue_link(db, draft_name)
    except sqlite3.Error:
        return None
    if link is None:
        return None
    page = site_dir(workspace, workspace.settings()) / page_path(link.slug or slug_for(draft_name))
    return page if page.is_file() else None
