"""Commands that create and edit drafts; none of them imports the renderer."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from digestcli import catalog, drafts
from digestcli.cli.app import DraftOption, JsonOption, app, info, out, out_json, state
from digestcli.editor import edit_text
from digestcli.errors import UsageError
from digestcli.models import Image, Issue, Item, Link
from digestcli.workspace import init_workspace


def _open(ctx: typer.Context, selector: str | None) -> drafts.Draft:
    return drafts.load_draft(catalog.current_draft(state(ctx).workspace(), selector))


def _read_text(ctx: typer.Context, text: str | None, current: str, what: str) -> str:
    """TEXT as given, '-' for stdin, nothing for $EDITOR on the current text."""
    if text == "-":
        return sys.stdin.read()
    if text is not None:
        return text
    return edit_text(current + ("\n" if current else ""), state(ctx).env, suffix=f"-{what}.md")


def item_json(position: int, item: Item) -> dict[str, Any]:
    """An item in the stable JSON shape."""
    return {
        "position": position,
        "title": item.title,
        "body": item.body,
        "link": item.link.url if item.link else None,
        "link_label": item.link.label if item.link else None,
        "image": {"url": item.image.url, "alt": item.image.alt} if item.image else None,
    }


def issue_json(issue: Issue) -> dict[str, Any]:
    """The whole draft in the stable JSON shape."""
    return {
        "title": issue.title,
        "subject": issue.subject,
        "preheader": issue.preheader,
        "date": issue.date,
        "number": issue.number,
        "intro": issue.intro,
        "items": [item_json(i, item) for i, item in enumerate(issue.items, start=1)],
        "outro_title": issue.outro_title,
        "outro": issue.outro,
    }


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Folder for the new workspace.")] = Path("."),
    name: Annotated[str, typer.Option("--name", help="Publication name.")] = "My Digest",
) -> None:
    """Create a new workspace: digest.toml, templates/, drafts/ and a .gitignore."""
    workspace = init_workspace(directory, name)
    info(f"Created a workspace in {workspace.root}; next: `digest new TITLE`.")
    out(str(workspace.root))


@app.command()
def new(
    ctx: typer.Context,
    title: Annotated[str, typer.Argument(help="Title of the issue.")],
    subject: Annotated[str, typer.Option(help="Email subject (default: the title).")] = "",
    preheader: Annotated[str, typer.Option(help="Preview text shown after the subject.")] = "",
    date: Annotated[
        str | None, typer.Option(help="Issue date, YYYY-MM-DD (default: today).")
    ] = None,
) -> None:
    """Start a new draft and print its path."""
    path = catalog.create_draft(
        state(ctx).workspace(), title, subject=subject, preheader=preheader, date=date
    )
    out(str(path))


@app.command("drafts")
def list_drafts(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List the drafts: number, date, title, items, state."""
    infos = catalog.list_drafts(state(ctx).workspace())
    rows = [
        {
            "path": str(i.path),
            "number": i.issue.number if i.issue else None,
            "date": i.issue.date if i.issue else None,
            "title": i.issue.title if i.issue else None,
            "items": len(i.issue.items) if i.issue else None,
            "state": i.state,
            "error": i.error,
        }
        for i in infos
    ]
    if as_json:
        out_json(rows)
        return
    if not rows:
        info("No drafts yet; start one with `digest new TITLE`.")
    for entry in infos:
        if entry.issue is None:
            out(f"   ?  {entry.path.name}  [broken] {entry.error}")
            continue
        issue = entry.issue
        number = f"#{issue.number}" if issue.number else "-"
        count = len(issue.items)
        out(f"{number:>4}  {issue.date}  {issue.title}  ({count} items, {entry.state})")


@app.command()
def show(ctx: typer.Context, draft: DraftOption = None, as_json: JsonOption = False) -> None:
    """Show the whole current draft as data."""
    loaded = _open(ctx, draft)
    issue = loaded.issue
    if as_json:
        out_json(issue_json(issue))
        return
    out(f"Draft:     {loaded.path}")
    for label, value in (
        ("Title", issue.title),
        ("Subject", issue.subject),
        ("Preheader", issue.preheader),
        ("Date", issue.date),
        ("Number", issue.number),
    ):
        out(f"{label + ':':<10} {value if value not in (None, '') else '-'}")
    out("\n" + (issue.intro or "(no intro yet: `digest intro`)"))
    for position, item in enumerate(issue.items, start=1):
        out(f"\n{position}. {item.title}")
        if item.body:
            out(item.body)
        if item.link:
            out(f"   -> {item.link.label + ': ' if item.link.label else ''}{item.link.url}")
    out(f"\n{issue.outro_title or '(no closing section yet: `digest outro`)'}")
    if issue.outro:
        out(issue.outro)


@app.command("set")
def set_field(
    ctx: typer.Context,
    field: Annotated[str, typer.Argument(help=f"One of: {', '.join(drafts.FIELDS)}.")],
    value: Annotated[str, typer.Argument(help="The new value ('' clears an optional field).")],
    draft: DraftOption = None,
) -> None:
    """Set a front-matter field of the current draft."""
    loaded = _open(ctx, draft)
    loaded.set_field(field, value)
    drafts.save_draft(loaded)
    info(f"Set {field} in {loaded.path.name}.")


@app.command()
def intro(
    ctx: typer.Context,
    text: Annotated[str | None, typer.Argument(help="Markdown; '-' reads stdin.")] = None,
    draft: DraftOption = None,
) -> None:
    """Set the intro (TEXT, '-' for stdin, nothing for $EDITOR)."""
    loaded = _open(ctx, draft)
    loaded.set_intro(_read_text(ctx, text, loaded.issue.intro, "intro"))
    drafts.save_draft(loaded)
    info(f"Intro saved in {loaded.path.name}.")


@app.command()
def outro(
    ctx: typer.Context,
    text: Annotated[str | None, typer.Argument(help="Markdown; '-' reads stdin.")] = None,
    title: Annotated[
        str | None, typer.Option(help="Heading of the closing section (default: Wrapping Up).")
    ] = None,
    draft: DraftOption = None,
) -> None:
    """Set the closing section (TEXT, '-' for stdin, nothing for $EDITOR)."""
    loaded = _open(ctx, draft)
    loaded.set_outro(_read_text(ctx, text, loaded.issue.outro, "outro"), title)
    drafts.save_draft(loaded)
    info(f"Closing section saved in {loaded.path.name}.")


@app.command()
def add(
    ctx: typer.Context,
    title: Annotated[
        str | None, typer.Argument(help="Headline of the item (optional with --from).")
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(
            "--from",
            metavar="URL",
            help="Fill title, summary, link and image from this web page's metadata.",
        ),
    ] = None,
    body: Annotated[str | None, typer.Option(help="Markdown body; '-' reads stdin.")] = None,
    link: Annotated[str | None, typer.Option(help="URL the item links to.")] = None,
    label: Annotated[str | None, typer.Option(help="Text of the link.")] = None,
    image: Annotated[str | None, typer.Option(help="URL of an image.")] = None,
    alt: Annotated[str, typer.Option(help="Alt text of the image.")] = "",
    at: Annotated[int | None, typer.Option(help="Position (1-based; default: last).")] = None,
    draft: DraftOption = None,
) -> None:
    """Add an item to the current draft, written out or filled from a web page (--from URL)."""
    if label and not (link or source):
        raise UsageError("--label needs --link; give the URL the label belongs to.")
    if image and not alt:
        raise UsageError("--image needs --alt: describe the image for readers who cannot see it.")
    if title is None and source is None:
        raise UsageError("give the item's TITLE, or --from URL to take it from a web page.")
    text = sys.stdin.read() if body == "-" else body
    loaded = _open(ctx, draft)
    if source is not None:
        # Here, not at the top: `add` without --from must not import httpx (start-up time).
        from digestcli.fetch import options_for
        from digestcli.webpage import Overrides, fetch_page, page_item

        settings = state(ctx).workspace().settings()
        meta = fetch_page(source, options_for(settings.feeds))
        given = Overrides(title, text, link, label, image, alt or None)
        item = page_item(meta, given)
    else:
        assert title is not None
        item = Item(
            title=title,
            body=text or "",
            link=Link(link, label) if link else None,
            image=Image(image, alt) if image else None,
        )
    position = loaded.add(item, at)
    drafts.save_draft(loaded)
    info(f"Added item {position} to {loaded.path.name}.")


@app.command()
def items(ctx: typer.Context, draft: DraftOption = None, as_json: JsonOption = False) -> None:
    """List the numbered items of the current draft."""
    issue = _open(ctx, draft).issue
    if as_json:
        out_json([item_json(i, item) for i, item in enumerate(issue.items, start=1)])
        return
    if not issue.items:
        info("No items yet; add one with `digest add TITLE`.")
    for position, item in enumerate(issue.items, start=1):
        link = f"  <{item.link.url}>" if item.link else ""
        out(f"{position:>2}. {item.title}{link}")


@app.command()
def move(
    ctx: typer.Context,
    source: Annotated[int, typer.Argument(metavar="FROM", help="Current position.")],
    target: Annotated[int, typer.Argument(metavar="TO", help="New position.")],
    draft: DraftOption = None,
) -> None:
    """Move an item from one position to another (1-based)."""
    loaded = _open(ctx, draft)
    loaded.move(source, target)
    drafts.save_draft(loaded)
    info(f"Moved item {source} to {target} in {loaded.path.name}.")


@app.command()
def remove(
    ctx: typer.Context,
    position: Annotated[int, typer.Argument(metavar="N", help="Position of the item.")],
    draft: DraftOption = None,
) -> None:
    """Remove an item."""
    loaded = _open(ctx, draft)
    item = loaded.remove(position)
    drafts.save_draft(loaded)
    info(f"Removed item {position} ({item.title}) from {loaded.path.name}.")


@app.command()
def edit(
    ctx: typer.Context,
    position: Annotated[
        int | None, typer.Argument(metavar="[N]", help="Item to edit (default: the whole file).")
    ] = None,
    draft: DraftOption = None,
) -> None:
    """Open item N, or the whole draft file, in $EDITOR."""
    loaded = _open(ctx, draft)
    env = state(ctx).env
    if position is None:
        catalog.save_edited(state(ctx).workspace(), loaded.path, edit_text(loaded.text(), env))
    else:
        loaded.item(position)  # a clear error when position is out of range
        block = loaded.items[position - 1]
        loaded.replace_item(position, edit_text(block.rstrip() + "\n", env))
        drafts.save_draft(loaded)
    info(f"Saved {loaded.path.name}.")
