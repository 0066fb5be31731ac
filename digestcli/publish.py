"""`digest publish`: the sent issues as a static site: an index, a page each, an Atom feed."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
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
from digestcli.publish_cache import Cached, PageCache, fingerprint, page_key, sha
from digestcli.publish_links import page_path, page_url, site_dir, site_url, slug_for, unique
from digestcli.workspace import Workspace, default_templates

INDEX = "index.html"
FEED = "feed.xml"
ENTRY = "web/entry.html.j2"
# In the workspace's state folder: what the last publish rendered (publish_cache.py).
CACHE = "publish.json"
_SLUG = re.compile(r"[a-z0-9][a-z0-9-]*")


@dataclass(frozen=True)
class Links:
    """The absolute URLs a page of the site names: the front page, itself and the feed."""

    site: str
    page: str
    feed: str


@dataclass(frozen=True)
class Page:
    """One sent issue on the site: what the index and the feed say of it."""

    about: Cached
    slug: str
    sent_at: str
    # The entry's id in the feed: the page URL its emails carried, so it never changes.
    id: str
    links: Links
    draft: Path


@dataclass(frozen=True)
class Site:
    """The files of the site that were rendered, by path in its folder, and what was not."""

    files: Mapping[str, bytes]
    # Pages the last publish rendered from the same inputs, still on disk as it wrote them.
    kept: tuple[str, ...]
    pages: tuple[Page, ...]
    skipped: tuple[str, ...]
    cache: PageCache
    cached: Mapping[str, Cached]


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

    def context(self, issue: Issue, links: Links) -> dict[str, Any]:
        """What an issue's page and its feed content are rendered from; its Markdown once."""
        from digestcli.render import issue_view

        return {
            "issue": issue_view(issue, text=False),
            "publication": self.settings.publication,
            "web_url": links.page,
            "web": True,
            "site": links,
            # No reader and no token: whatever a theme prints of them is empty.
            "subscriber": _Nobody(),
            "unsubscribe_url": "",
        }

    def issue_page(self, context: Mapping[str, Any]) -> bytes:
        """The issue's web version: the email's template, for nobody."""
        from digestcli.render import HTML_TEMPLATE

        return self._render(HTML_TEMPLATE, context)

    def entry(self, context: Mapping[str, Any]) -> str:
        """The issue's content in the feed."""
        return self._render(ENTRY, context).decode("utf-8")

    def index(self, pages: tuple[Page, ...], links: Links) -> bytes:
        """The front page: every issue, newest first."""
        issues = [
            {
                "number": page.about.number,
                "date": page.about.date,
                "title": page.about.title,
                "preheader": page.about.preheader,
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


def build_site(workspace: Workspace, settings: Settings, out: Path) -> Site:
    """Render the files of the site that changed since the last publish; nothing is written."""
    root = web_root(settings)
    with for_reading(workspace.db_path) as db:
        sent = journal.sent_issues(db)
    renderer = WebRenderer(settings, workspace.templates_dir)
    cache = PageCache.load(workspace.state_dir / CACHE)
    shared = fingerprint(settings.path, (workspace.templates_dir, default_templates()))
    files: dict[str, bytes] = {}
    kept: list[str] = []
    pages: list[Page] = []
    cached: dict[str, Cached] = {}
    skipped: list[str] = []
    taken = {s.slug for s in sent if s.slug}
    # Where in `sent` the issues the feed can hold begin (it holds the newest it finds).
    newest = len(sent) - settings.archive.feed_entries
    for number, found in enumerate(sent):
        path = workspace.drafts_dir / found.draft
        try:
            data = path.read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            skipped.append(
                f"{found.draft} was sent but is not in {workspace.drafts_dir}; "
                "its page is left as it was."
            )
            continue
        slug = found.slug if found.slug and _SLUG.fullmatch(found.slug) else None
        if slug is None:
            taken.add(slug := unique(slug_for(found.draft), taken.__contains__))
        links = Links(site=root, page=page_url(root, slug), feed=root + FEED)
        entry_id = found.web_url or links.page
        key = page_key(shared, data, slug, found.sent_at, entry_id, root)
        name = page_path(slug)
        about = cache.hit(slug, key, out / name)
        if about is None:
            issue = load_draft(path).issue
            context = renderer.context(issue, links)
            files[name] = renderer.issue_page(context)
            about = Cached(
                key,
                sha(files[name]),
                issue.title,
                issue.preheader,
                issue.date,
                issue.number,
                # One of the newest issues, so in the feed: its content from the same context.
                renderer.entry(context) if number >= newest else None,
            )
        else:
            kept.append(name)
        cached[slug] = about
        pages.append(Page(about, slug, found.sent_at, entry_id, links, path))
    pages.reverse()  # newest first: sent_issues gives them in the order they were sent
    entries = []
    for number, page in enumerate(pages):
        content = cached[page.slug].entry
        if number >= settings.archive.feed_entries:
            cached[page.slug] = replace(cached[page.slug], entry=None)
            continue
        if content is None:
            content = renderer.entry(renderer.context(load_draft(page.draft).issue, page.links))
            cached[page.slug] = replace(cached[page.slug], entry=content)
        entries.append(
            Entry(
                id=page.id,
                title=page.about.title,
                url=page.links.page,
                updated=page.sent_at,
                summary=page.about.preheader,
                content_html=content,
            )
        )
    files[INDEX] = renderer.index(tuple(pages), Links(site=root, page=root, feed=root + FEED))
    name = settings.publication.name
    files[FEED] = atom(Feed(name, root, root + FEED, name, entries))
    return Site(files, tuple(kept), tuple(pages), tuple(skipped), cache, cached)


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
    site = build_site(workspace, settings, out)
    changed = tuple(name for name, data in site.files.items() if _differs(out / name, data))
    if not check:
        for name in changed:
            target = out / name
            target.parent.mkdir(parents=True, exist_ok=True)
            # Not flushed to disk file by file: the site is made again from the store by the
            # next publish, which rewrites any file a power cut left short.
            write_atomic(target, site.files[name], durable=False)
        site.cache.save(dict(site.cached))
    return Published(
        out_dir=out,
        issues=len(site.pages),
        changed=changed,
        unchanged=len(site.kept) + len(site.files) - len(changed),
        skipped=site.skipped,
    )
