"""`digest publish`: the sent issues as a static site: an index, a page each, an Atom feed."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from digestcli import journal
from digestcli.config import Settings
from digestcli.db import for_reading
from digestcli.drafts import load_draft
from digestcli.errors import ConfigError, UsageError
from digestcli.feed import Entry, Feed, atom
from digestcli.fsutil import write_atomic
from digestcli.models import Issue
from digestcli.publish_links import page_path, page_url, site_dir, site_url, slug_for
from digestcli.workspace import Workspace, default_templates

INDEX = "index.html"
FEED = "feed.xml"
_SLUG = re.compile(r"[a-z0-9][a-z0-9-]*")


@dataclass(frozen=True)
class Links:
    """The absolute URLs a page of the site names: the front page, itself and the feed."""

    site: str
    page: str
    feed: str


@dataclass(frozen=True)
class Page:
    """One sent issue on the site."""

    issue: Issue
    slug: str
    sent_at: str
    # The entry's id in the feed: the page URL its emails carried, so it never changes.
    id: str
    links: Links


@dataclass(frozen=True)
class Site:
    """Every file of the site, by path relative to its folder, and what was left out."""

    files: Mapping[str, bytes]
    pages: tuple[Page, ...]
    skipped: tuple[str, ...]


@dataclass(frozen=True)
class Published:
    """What a publish (or a --check) found: the files it wrote, or that are out of date."""

    out_dir: Path
    issues: int
    changed: tuple[str, ...]
    unchanged: int
    skipped: tuple[str, ...]


# ----- rendering -----------------------------------------------------------------------------


class _NoFields:
    """subscriber.fields on the web: there is no reader, so every field is empty."""

    def __getattr__(self, name: str) -> str:
        if name.startswith("_"):
            raise AttributeError(name)
        return ""

    def __getitem__(self, name: str) -> str:
        return ""


@dataclass(frozen=True)
class _Nobody:
    email: str = ""
    name: str = ""
    fields: _NoFields = field(default_factory=_NoFields)


class WebRenderer:
    """The site's pages from the workspace's templates (the default theme's where it has none)."""

    def __init__(self, settings: Settings, templates_dir: Path) -> None:
        from digestcli.render import environment

        self.settings = settings
        self.root = templates_dir.resolve()
        # One environment for the whole site: each template is compiled once, not per issue.
        self.env = environment(self.root, fallback=default_templates())

    def _render(self, name: str, context: Mapping[str, Any]) -> bytes:
        from digestcli.render import render_template

        return render_template(self.env, name, context, self.root).encode("utf-8")

    def issue_page(self, issue: Issue, links: Links) -> tuple[bytes, bytes]:
        """The issue's web version (the email's template, for nobody) and its feed content."""
        from digestcli.render import HTML_TEMPLATE, issue_view

        view = issue_view(issue)
        context = {
            "issue": view,
            "publication": self.settings.publication,
            "web_url": links.page,
            "web": True,
            "site": links,
            # No reader and no token: whatever a theme prints of them is empty.
            "subscriber": _Nobody(),
            "unsubscribe_url": "",
        }
        return self._render(HTML_TEMPLATE, context), self._render("web/entry.html.j2", context)

    def index(self, pages: tuple[Page, ...], links: Links) -> bytes:
        """The front page: every issue, newest first."""
        issues = [
            {
                "number": page.issue.number,
                "date": page.issue.date,
                "title": page.issue.title,
                "preheader": page.issue.preheader,
                "href": f"issues/{page.slug}/",
                "url": page.links.page,
            }
            for page in pages
        ]
        context = {"publication": self.settings.publication, "site": links, "issues": issues}
        return self._render("web/index.html.j2", context)


# ----- the site ------------------------------------------------------------------------------


def web_root(settings: Settings) -> str:
    """[publication] web_url with a final slash; a clear config error when it is not set."""
    web_url = settings.publication.web_url
    if not web_url:
        raise ConfigError(
            f"{settings.path}: [publication] web_url is missing; add the address the site "
            'will live at, e.g. web_url = "https://example.org/digest/".'
        )
    if not web_url.startswith(("https://", "http://")):
        raise ConfigError(
            f"{settings.path}: [publication] web_url must start with https:// (or http://)."
        )
    return site_url(web_url)


def build_site(workspace: Workspace, settings: Settings) -> Site:
    """Render every file of the site in memory; nothing is written."""
    root = web_root(settings)
    with for_reading(workspace.db_path) as db:
        sent = journal.sent_issues(db)
    renderer = WebRenderer(settings, workspace.templates_dir)
    files: dict[str, bytes] = {}
    pages: list[Page] = []
    contents: dict[str, bytes] = {}
    skipped: list[str] = []
    taken = {s.slug for s in sent if s.slug}
    for found in sent:
        path = workspace.drafts_dir / found.draft
        if not path.is_file():
            skipped.append(
                f"{found.draft} was sent but is not in {workspace.drafts_dir}; "
                "its page is left as it was."
            )
            continue
        slug = found.slug if found.slug and _SLUG.fullmatch(found.slug) else None
        if slug is None:
            slug = _unique(slug_for(found.draft), taken)
        issue = load_draft(path).issue
        links = Links(site=root, page=page_url(root, slug), feed=root + FEED)
        files[page_path(slug)], contents[slug] = renderer.issue_page(issue, links)
        pages.append(Page(issue, slug, found.sent_at, found.web_url or links.page, links))
    pages.reverse()  # newest first: sent_issues gives them in the order they were sent
    front = Links(site=root, page=root, feed=root + FEED)
    files[INDEX] = renderer.index(tuple(pages), front)
    entries = [
        Entry(
            id=page.id,
            title=page.issue.title,
            url=page.links.page,
            updated=page.sent_at,
            summary=page.issue.preheader,
            content_html=contents[page.slug].decode("utf-8"),
        )
        for page in pages[: settings.archive.feed_entries]
    ]
    name = settings.publication.name
    files[FEED] = atom(Feed(name, root, root + FEED, name, entries))
    return Site(files, tuple(pages), tuple(skipped))


def _unique(slug: str, taken: set[str]) -> str:
    candidate, n = slug, 2
    while candidate in taken:
        candidate, n = f"{slug}-{n}", n + 1
    taken.add(candidate)
    return candidate


def _differs(path: Path, data: bytes) -> bool:
    try:
        return path.read_bytes() != data
    except (FileNotFoundError, NotADirectoryError):
        return True


def publish_site(
    workspace: Workspace, out_dir: Path | None = None, *, check: bool = False
) -> Published:
    """Write the site of the sent issues, rewriting only files whose bytes changed.

    With check, write nothing and report the files that are missing or out of date. Files
    in the folder that publish did not make are never touched, nor removed.
    """
    settings = workspace.settings()
    out = out_dir or site_dir(workspace, settings)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} is a file, not a folder; give --out a folder for the site.")
    site = build_site(workspace, settings)
    changed = tuple(name for name, data in site.files.items() if _differs(out / name, data))
    if not check:
        for name in changed:
            target = out / name
            target.parent.mkdir(parents=True, exist_ok=True)
            # Not flushed to disk file by file: the site is made again from the store by the
            # next publish, which rewrites any file a power cut left short.
            write_atomic(target, site.files[name], durable=False)
    return Published(
        out_dir=out,
        issues=len(site.pages),
        changed=changed,
        unchanged=len(site.files) - len(changed),
        skipped=site.skipped,
    )
