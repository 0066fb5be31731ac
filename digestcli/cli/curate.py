"""Curating commands: `feeds` (follow, list, OPML), `collect` and `pick`."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from digestcli.cli.app import DraftOption, JsonOption, app, info, out, out_json, state
from digestcli.errors import ExitStatus

if TYPE_CHECKING:
    from digestcli.collect import Report
    from digestcli.feedstore import Collected

# The fetching stack (httpx, feedparser, tomlkit) is imported inside the commands: this
# module is imported on every start-up, and the editing commands must stay fast.

feeds_app = typer.Typer(
    name="feeds",
    help="The feeds `digest collect` follows: add, remove, list, import and export OPML.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(feeds_app)


@feeds_app.command("add")
def feeds_add(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="A feed, or a web page that links to its feed.")],
) -> None:
    """Follow a feed (RSS, Atom or JSON Feed), or the feed a web page names."""
    from digestcli import feeds
    from digestcli.fetch import options_for

    workspace = state(ctx).workspace()
    found, title = feeds.find_feed(url, options_for(workspace.settings().feeds))
    added = feeds.add_urls(workspace, [found])
    feeds.remember_titles(workspace, {found: title} if title else {})
    via = f" (found on {url})" if found != url else ""
    if added:
        info(f"Following {title or found}{via}; `digest collect` fetches its new entries.")
    else:
        info(f"Already following {found}{via}.")
    out(found)


@feeds_app.command("remove")
def feeds_remove(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="The feed's URL, as `digest feeds list` shows it.")],
) -> None:
    """Stop following a feed."""
    from digestcli import feeds

    feeds.remove_url(state(ctx).workspace(), url)
    info(f"No longer following {url}.")


@feeds_app.command("list")
def feeds_list(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List the feeds followed, with their title, last check and last error."""
    from digestcli import feeds

    workspace = state(ctx).workspace()
    listed = feeds.listing(workspace, feeds.followed(workspace))
    if as_json:
        out_json([feed.as_dict() for feed in listed])
        return
    if not listed:
        info("No feeds yet; follow one with `digest feeds add URL`.")
    for feed in listed:
        checked = feed.last_checked or "never checked"
        problem = f"  [error] {feed.error}" if feed.error else ""
        out(f"{feed.url}  {feed.title or '-'}  ({checked}){problem}")


@feeds_app.command("import")
def feeds_import(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(metavar="FILE", help="An OPML file from a feed reader.")],
) -> None:
    """Follow every feed of an OPML file (as feed readers export them)."""
    from digestcli import feeds

    workspace = state(ctx).workspace()
    outlines = feeds.read_opml(path)
    added = feeds.add_urls(workspace, [url for url, _ in outlines])
    titles = {url: title for url, title in outlines if title and url in added}
    feeds.remember_titles(workspace, titles)
    already = len({url for url, _ in outlines}) - len(added)
    info(f"Following {len(added)} new feeds from {path.name} ({already} already followed).")


@feeds_app.command("export")
def feeds_export(ctx: typer.Context) -> None:
    """Print the feeds followed as OPML 2.0, for a feed reader."""
    from digestcli import feeds

    workspace = state(ctx).workspace()
    settings = workspace.settings()  # digest.toml read once: the name and the feeds
    listed = feeds.listing(workspace, settings.feeds.urls)
    out(feeds.opml(listed, f"{settings.publication.name}: feeds"))


@app.command()
def collect(
    ctx: typer.Context,
    as_json: JsonOption = False,
    since: Annotated[
        str | None,
        typer.Option(
            metavar="DATE",
            help="Offer entries newer than this (YYYY-MM-DD; default: the last send).",
        ),
    ] = None,
    draft: DraftOption = None,
) -> None:
    """Fetch every feed and number the new entries, for `digest pick`.

    New means newer than the last finished send (or --since); links already in the current
    draft or a recent issue are left out. A feed that fails is one line on stderr and the
    others go on (exit 1). The numbered list is kept until the next collect.
    """
    from digestcli import collect as core
    from digestcli.fetch import options_for

    env = state(ctx).env
    workspace = state(ctx).workspace()
    cutoff = core.parse_since(since) if since else None
    settings = workspace.settings().feeds  # digest.toml read once for the whole command
    with _progress(env, len(settings.urls)) as advance:
        report = core.collect(
            workspace,
            settings.urls,
            options_for(settings),
            since=cutoff,
            draft=draft,
            on_fetched=advance,
        )
    for url, error in report.failures:
        info(f"warning: feed {url} failed: {error}")
    if as_json:
        out_json([entry.as_dict() for entry in report.entries])
    else:
        _show(report, env)
    if not report.ok:
        raise typer.Exit(int(ExitStatus.ERROR))


@app.command()
def pick(
    ctx: typer.Context,
    numbers: Annotated[
        list[int], typer.Argument(metavar="N [N...]", help="Numbers `digest collect` showed.")
    ],
    draft: DraftOption = None,
) -> None:
    """Add collected entries, in the order given, as items of the current draft."""
    from digestcli.collect import pick as core

    titles = core(state(ctx).workspace(), numbers, draft)
    for number, title in zip(numbers, titles, strict=True):
        info(f"Added {number}: {title}")


@contextmanager
def _progress(env: Mapping[str, str], total: int) -> Iterator[Callable[[str], None]]:
    """A progress bar on stderr while the feeds are fetched, only on a terminal."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from digestcli.console import stderr_console

    console = stderr_console(env)
    bar = Progress(
        TextColumn("[bold]Fetching feeds"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        disable=not console.is_terminal,
        transient=True,
    )
    task = bar.add_task("fetch", total=total)
    with bar:
        yield lambda _url: bar.advance(task)


def _show(report: Report, env: Mapping[str, str]) -> None:
    """The entries in a table grouped by source, newest source first, with their numbers."""
    from rich.markup import escape
    from rich.table import Table

    from digestcli.console import stdout_console

    if not report.entries:
        since = f" since {report.since}" if report.since else ""
        info(f"No new entries{since}.")
        return
    groups: dict[str, list[Collected]] = {}
    for entry in report.entries:
        groups.setdefault(entry.source, []).append(entry)
    table = Table("#", "Date", "Title", title_justify="left", show_lines=False)
    for source, entries in groups.items():
        table.add_row("", "", f"[bold]{escape(source)}[/bold]")
        for entry in entries:
            date = (entry.published or "")[:10] or "-"
            table.add_row(str(entry.number), date, escape(entry.title))
    stdout_console(env).print(table)
    count = len(report.entries)
    hint = f"{count} {'entry' if count == 1 else 'entries'}"
    if report.skipped:
        hint += f" ({report.skipped} already in the draft or a recent issue)"
    info(f"{hint}; add some with `digest pick N [N...]`.")
