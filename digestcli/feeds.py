"""The feeds a workspace follows: the list in digest.toml, finding a feed, OPML in and out."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from digestcli import feedstore
from digestcli.config import load_settings
from digestcli.db import opened
from digestcli.errors import ConfigError, DigestError, UsageError
from digestcli.feedstore import FeedState
from digestcli.fetch import FetchError, check_url
from digestcli.fsutil import write_atomic

if TYPE_CHECKING:
    import httpx

    from digestcli.fetch import FetchOptions
    from digestcli.workspace import Workspace


# --- the list in digest.toml ---------------------------------------------------------------


def followed(workspace: Workspace) -> list[str]:
    """The feed URLs digest.toml's [feeds] urls lists, in its order."""
    return list(workspace.settings().feeds.urls)


def _edit_urls(config: Path, change: Callable[[list[str]], list[str]]) -> list[str]:
    """Apply change(urls) to [feeds] urls, keeping every other byte of digest.toml.

    tomlkit round-trips the file (comments, order, spacing); only the urls array is written.
    The result is checked as digest would load it before it replaces the file, atomically.
    """
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    text = config.read_text(encoding="utf-8")
    try:
        document = tomlkit.parse(text)
    except TOMLKitError as exc:
        raise ConfigError(f"{config}: invalid TOML ({exc}); fix that line.") from None
    table = document.get("feeds")
    if table is None:
        table = tomlkit.table()
        document.add("feeds", table)
    urls = table.get("urls")
    if urls is None:
        urls = tomlkit.array()
        table.add("urls", urls)
    before = [str(url) for url in urls]
    after = change(list(before))
    if after == before:
        return before
    urls.clear()
    urls.extend(after)
    urls.multiline(len(after) > 1)
    new_text = tomlkit.dumps(document)
    scratch = config.with_name(f".{config.name}.check")
    try:
        write_atomic(scratch, new_text, durable=False)
        load_settings(scratch)
    finally:
        scratch.unlink(missing_ok=True)
    write_atomic(config, new_text)
    return after


def add_urls(workspace: Workspace, urls: Iterable[str]) -> list[str]:
    """Follow these URLs too; return the ones that were not followed already."""
    wanted = list(dict.fromkeys(urls))
    added: list[str] = []

    def change(current: list[str]) -> list[str]:
        added.extend(url for url in wanted if url not in current)
        return current + added

    _edit_urls(workspace.config_path, change)
    return added


def remove_url(workspace: Workspace, url: str) -> None:
    """Stop following url; a URL that is not followed is a usage error."""

    def change(current: list[str]) -> list[str]:
        if url not in current:
            raise UsageError(
                f"{url} is not among the feeds in {workspace.config_path}; "
                "`digest feeds list` shows them."
            )
        return [each for each in current if each != url]

    _edit_urls(workspace.config_path, change)
    if workspace.db_path.exists():
        with opened(workspace.db_path) as db:
            feedstore.forget(db, url)


def listing(workspace: Workspace, urls: Iterable[str]) -> list[FeedState]:
    """Each of these followed feeds (digest.toml's urls) with what is known of it, in order."""
    known: dict[str, FeedState] = {}
    if workspace.db_path.exists():
        with opened(workspace.db_path) as db:
            known = feedstore.states(db)
    return [known.get(url, FeedState(url)) for url in urls]


def remember_titles(workspace: Workspace, titles: dict[str, str]) -> None:
    """Keep the title of feeds just added (from the feed itself or an OPML outline)."""
    if not titles:
        return
    with opened(workspace.db_path) as db:
        feedstore.set_titles(db, titles)


# --- adding one: check it is a feed, or find the feed a page names --------------------------


def find_feed(
    url: str, options: FetchOptions, transport: httpx.BaseTransport | None = None
) -> tuple[str, str]:
    """(feed URL, title) for url: the feed itself, or the first feed a page links to."""
    from digestcli.feedformat import NotAFeed, parse_feed
    from digestcli.fetch import ACCEPT_FEED, client, get
    from digestcli.webpage import HTML_TYPES, parse_page

    check_url(url)
    with client(options, transport) as session:
        fetched = get(session, url, options, accept=ACCEPT_FEED)
        try:
            # A feed first, whatever its Content-Type: some servers call RSS text/html.
            return url, parse_feed(fetched.body, fetched.url, fetched.content_type).title
        except NotAFeed as exc:
            if fetched.content_type not in HTML_TYPES:
                raise FetchError(
                    f"{exc}; give the address of a feed or of a page naming one."
                ) from None
        page = parse_page(fetched.text(), fetched.url)
        for candidate in page.feeds:
            try:
                found = get(session, candidate, options, accept=ACCEPT_FEED)
                feed = parse_feed(found.body, found.url, found.content_type)
            except DigestError:
                continue
            return candidate, feed.title
    raise FetchError(
        f'{url} is a web page that names no working feed (no <link rel="alternate"> to RSS, '
        "Atom or JSON Feed); find the feed's own address on the site."
    )


# --- OPML ----------------------------------------------------------------------------------


def read_opml(path: Path) -> list[tuple[str, str]]:
    """(feed URL, title) of every outline with an xmlUrl in an OPML file, in document order."""
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(path.read_bytes())
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file; give the path of an OPML file.") from None
    except ET.ParseError as exc:
        raise UsageError(
            f"{path}: not valid OPML ({exc}); export it again from the reader."
        ) from None
    if root.tag != "opml":
        raise UsageError(f"{path}: not an OPML file (its root is <{root.tag}>, not <opml>).")
    found: list[tuple[str, str]] = []
    for outline in root.iter("outline"):
        url = (outline.get("xmlUrl") or "").strip()
        if url.startswith(("http://", "https://")) and not any(c.isspace() for c in url):
            found.append((url, (outline.get("title") or outline.get("text") or "").strip()))
    return found


def opml(feeds: Iterable[FeedState], title: str) -> str:
    """OPML 2.0 of the feeds, as feed readers import it."""
    import xml.etree.ElementTree as ET

    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = title
    body = ET.SubElement(root, "body")
    for feed in feeds:
        name = feed.title or feed.url
        ET.SubElement(body, "outline", type="rss", text=name, title=name, xmlUrl=feed.url)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
