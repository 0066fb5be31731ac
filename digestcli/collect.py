"""`digest collect` and `digest pick`: new entries of every feed, numbered, then made items."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from digestcli import catalog, feedstore, journal
from digestcli.db import opened
from digestcli.drafts import load_draft, save_draft
from digestcli.errors import DigestError, UsageError
from digestcli.feedstore import Collected, FeedState
from digestcli.models import Item, Link
from digestcli.plaintext import markdown_literal

if TYPE_CHECKING:
    import httpx

    from digestcli.feedformat import FeedEntry
    from digestcli.fetch import Fetched, FetchOptions
    from digestcli.workspace import Workspace

# Feeds downloaded at once. Waiting on the network costs no CPU, so more than the cores; one
# stalled feed then holds one thread for the timeout while the others go on.
WORKERS = 16
# Sent issues whose links are not offered again (the newest ones).
RECENT_ISSUES = 8


@dataclass
class Report:
    """What a collect found: the numbered entries, and one line per feed that failed."""

    entries: list[Collected] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    since: str | None = None
    skipped: int = 0

    @property
    def ok(self) -> bool:
        """Every feed answered."""
        return not self.failures


@dataclass(frozen=True)
class _Fetch:
    """One feed's outcome: its new state and its entries (from the cache on a 304)."""

    state: FeedState
    entries: tuple[FeedEntry, ...] | None  # None: nothing new to cache (304 or failure)


def parse_since(text: str) -> str:
    """--since as UTC ISO text: YYYY-MM-DD (midnight UTC) or an ISO date and time."""
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"--since must be a date (YYYY-MM-DD) or an ISO date and time, not `{text}`."
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC).isoformat(timespec="seconds")


def collect(
    workspace: Workspace,
    urls: Sequence[str],
    options: FetchOptions,
    *,
    since: str | None = None,
    draft: str | None = None,
    transport: httpx.BaseTransport | None = None,
    on_fetched: Callable[[str], None] | None = None,
) -> Report:
    """Fetch the followed feeds at once, number the entries worth offering, keep the list.

    Entries are offered when newer than `since`, or than the last finished send; links in the
    current draft or a recent sent issue are not offered again. A failing feed is reported
    and the rest go on. The numbered list replaces the last one, for `digest pick`.
    """
    if not urls:
        raise UsageError(
            "no feeds to collect from; follow one with `digest feeds add URL` "
            "or `digest feeds import FILE.opml`."
        )
    with opened(workspace.db_path) as db:
        known = feedstore.states(db)
        held = feedstore.cached_urls(db)
        cutoff = since or journal.last_finished(db)
        results = _fetch_all(urls, known, held, options, transport, on_fetched)
        feedstore.save_states(db, (result.state for result in results))
        feedstore.cache_entries(
            db, {r.state.url: r.entries for r in results if r.entries is not None}
        )
        cached = feedstore.cached_entries(db, urls)
        report = _offer(results, cached, _links_already_used(workspace, draft), cutoff)
        feedstore.keep_collected(db, report.entries)
    return report


def _offer(
    results: Sequence[_Fetch],
    cached: dict[str, list[FeedEntry]],
    used: set[str],
    cutoff: str | None,
) -> Report:
    """Number what is worth offering: newer than the cutoff, not used, each link once."""
    report = Report(since=cutoff)
    offered: list[tuple[str, FeedEntry]] = []
    taken: set[str] = set()
    for result in results:
        if result.state.error:
            report.failures.append((result.state.url, result.state.error))
        source = result.state.title or urlsplit(result.state.url).netloc
        for entry in cached.get(result.state.url, ()):
            if cutoff and entry.published and entry.published <= cutoff:
                continue
            if entry.link in used:
                report.skipped += 1
            elif entry.link not in taken:  # two feeds may carry one story
                taken.add(entry.link)
                offered.append((source, entry))
    # Newest first; undated entries (which cannot be placed) after the dated ones.
    offered.sort(key=lambda pair: pair[1].published or "", reverse=True)
    report.entries = [
        Collected(n, source, e.title, e.link, e.summary, e.published)
        for n, (source, e) in enumerate(offered, start=1)
    ]
    return report


def _fetch_all(
    urls: Sequence[str],
    known: dict[str, FeedState],
    held: set[str],
    options: FetchOptions,
    transport: httpx.BaseTransport | None,
    on_fetched: Callable[[str], None] | None,
) -> list[_Fetch]:
    from digestcli.fetch import client

    previous = {url: known.get(url) or FeedState(url) for url in urls}
    done: dict[str, _Fetch] = {}
    with (
        client(options, transport) as session,
        ThreadPoolExecutor(max_workers=min(WORKERS, len(urls))) as pool,
    ):
        # The threads only download; parsing (CPU, under the GIL) is done here as each
        # download lands. So a thread is free again within milliseconds, every request is
        # under way at once, and a stalled feed's timeout runs beside the parsing, not after.
        downloads = {
            pool.submit(_download, session, previous[url], options, conditional=url in held): url
            for url in urls
        }
        for future in as_completed(downloads):
            url = downloads[future]
            done[url] = _parse(previous[url], future.result())
            if on_fetched is not None:
                on_fetched(url)
    return [done[url] for url in urls]


def _download(
    session: httpx.Client, previous: FeedState, options: FetchOptions, *, conditional: bool
) -> Fetched | DigestError:
    """One feed's GET, or why it failed; conditional only when its entries are cached.

    A 304 must have something to stand for, so ETag and Last-Modified are sent only for a
    feed whose last entries are kept.
    """
    from digestcli.fetch import ACCEPT_FEED, get

    validators: dict[str, str] = {}
    if conditional and previous.etag:
        validators["If-None-Match"] = previous.etag
    if conditional and previous.last_modified:
        validators["If-Modified-Since"] = previous.last_modified
    try:
        return get(session, previous.url, options, accept=ACCEPT_FEED, headers=validators)
    except DigestError as exc:
        return exc


def _parse(previous: FeedState, fetched: Fetched | DigestError) -> _Fetch:
    """A download made entries and the feed's new state; any failure becomes its error."""
    from digestcli.feedformat import parse_feed

    if isinstance(fetched, DigestError):
        return _Fetch(previous.checked(error=str(fetched)), None)
    if fetched.not_modified:
        return _Fetch(previous.checked(error=None), None)
    try:
        feed = parse_feed(fetched.body, fetched.url, fetched.content_type)
    except DigestError as exc:
        return _Fetch(previous.checked(error=str(exc)), None)
    except Exception as exc:  # a parser's bug on strange input fails this feed, not the run
        error = f"{previous.url} could not be read ({type(exc).__name__}: {exc})"
        return _Fetch(previous.checked(error=error), None)
    state = previous.checked(
        title=feed.title or previous.title,
        etag=fetched.headers.get("etag"),
        last_modified=fetched.headers.get("last-modified"),
        error=None,
    )
    return _Fetch(state, feed.entries)


def _links_already_used(workspace: Workspace, selector: str | None) -> set[str]:
    """Links in the current draft (or --draft) and in the newest sent issues."""
    infos = catalog.list_drafts(workspace)
    sent = [info.issue for info in infos if info.state == "sent" and info.issue]
    issues = sent[-RECENT_ISSUES:]
    with suppress(DigestError):  # no draft yet: nothing in it to leave out
        issues.append(load_draft(catalog.current_draft(workspace, selector, infos=infos)).issue)
    return {item.link.url for issue in issues for item in issue.items if item.link}


def kept(workspace: Workspace) -> list[Collected]:
    """The numbered list the last collect made."""
    if not workspace.db_path.exists():
        return []
    with opened(workspace.db_path) as db:
        return feedstore.collected(db)


def entry_item(entry: Collected) -> Item:
    """A collected entry as a draft item: fetched text escaped so it stays literal."""
    return Item(
        title=markdown_literal(entry.title),
        body=markdown_literal(entry.summary),
        link=Link(entry.link, entry.source or None),
    )


def pick(workspace: Workspace, numbers: Sequence[int], selector: str | None = None) -> list[str]:
    """Add the collected entries numbered `numbers`, in that order, to the draft; their titles.

    Every number is checked before the draft is touched: an unknown one changes nothing.
    """
    entries = {entry.number: entry for entry in kept(workspace)}
    if not entries:
        raise UsageError("nothing collected yet; run `digest collect` first, then pick numbers.")
    unknown = [n for n in numbers if n not in entries]
    if unknown:
        raise UsageError(
            f"no collected entry numbered {', '.join(map(str, unknown))}; the last "
            f"`digest collect` numbered 1 to {max(entries)}."
        )
    twice = sorted({n for n in numbers if numbers.count(n) > 1})
    if twice:
        raise UsageError(
            f"{', '.join(map(str, twice))} given more than once; name each entry once."
        )
    draft = load_draft(catalog.current_draft(workspace, selector))
    for number in numbers:
        draft.add(entry_item(entries[number]))
    save_draft(draft)
    return [entries[n].title for n in numbers]
