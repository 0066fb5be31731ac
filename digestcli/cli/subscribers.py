"""Commands on subscribers and lists, and `digest unsubscribe` for signed links."""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from digestcli.cli.app import JsonOption, app, info, out, out_json, state
from digestcli.errors import UsageError
from digestcli.models import DEFAULT_LIST

if TYPE_CHECKING:
    from digestcli.events import Unsubscribed
    from digestcli.importer import ImportReport

# The store (and email-validator behind it) is imported inside the commands: this module is
# imported on every start-up, and the editing commands must stay fast.

subscribers_app = typer.Typer(
    name="subscribers",
    help="Import, add, list, export and remove subscribers.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(subscribers_app)

ListOption = Annotated[str, typer.Option("--list", "-l", help="List name.")]
FilterOption = Annotated[
    str | None, typer.Option("--list", "-l", help="Only this list (default: every subscriber).")
]
EmailArgument = Annotated[str, typer.Argument(metavar="EMAIL", help="The subscriber's address.")]


@contextmanager
def _store(ctx: typer.Context) -> Iterator[sqlite3.Connection]:
    from digestcli.db import opened

    with opened(state(ctx).workspace().db_path) as db:
        yield db


@contextmanager
def _store_for_reading(ctx: typer.Context) -> Iterator[sqlite3.Connection]:
    """The store; an empty one in memory when there is none yet: reading must not create it."""
    from digestcli.db import for_reading

    with for_reading(state(ctx).workspace().db_path) as db:
        yield db


@subscribers_app.command("import")
def import_file(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV file with a header row and an email column.")],
    list_name: ListOption = DEFAULT_LIST,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check the file and report; write nothing.")
    ] = False,
) -> None:
    """Import subscribers from a CSV file (email, name, other columns become fields)."""
    from digestcli.importer import import_csv

    opened = _store_for_reading(ctx) if dry_run else _store(ctx)
    with opened as db:
        report = import_csv(db, file, list_name=list_name, dry_run=dry_run)
    _show_report(report)


def _show_report(report: ImportReport) -> None:
    for skipped in report.skipped:
        info(f"line {skipped.line}: {skipped.email or '(no address)'}: {skipped.reason}")
    for kept in report.kept_state:
        info(
            f"line {kept.line}: {kept.email}: {kept.state}, and stays so "
            "(an import never re-activates an address)"
        )
    if report.ignored_columns:
        info(f"Ignored columns: {', '.join(report.ignored_columns)}.")
    counts = (
        f"{report.imported} new, {report.updated} updated, {report.unchanged} unchanged, "
        f"{report.added_to_list} added to list {report.list_name!r}, "
        f"{len(report.skipped)} skipped (of {report.rows} rows)"
    )
    if report.dry_run:
        info(f"Dry run of {report.path.name}, nothing written: {counts}.")
    else:
        info(f"Imported {report.path.name}: {counts}.")


@subscribers_app.command("add")
def add_subscriber(
    ctx: typer.Context,
    email: EmailArgument,
    name: Annotated[str | None, typer.Option("--name", help="The subscriber's name.")] = None,
    list_name: ListOption = DEFAULT_LIST,
    field: Annotated[
        list[str] | None,
        typer.Option("--field", "-f", metavar="KEY=VALUE", help="A custom field (repeatable)."),
    ] = None,
    reactivate: Annotated[
        bool,
        typer.Option(
            "--reactivate",
            help="Make an unsubscribed, bounced or complained address active again on the list"
            " (only when the reader asked to come back).",
        ),
    ] = False,
) -> None:
    """Add a subscriber to a list (or update one; an inactive address stays so unless
    --reactivate)."""
    from digestcli import subscribers as store

    fields = {}
    for pair in field or []:
        key, equals, value = pair.partition("=")
        if not equals:
            raise UsageError(f"--field takes KEY=VALUE, not {pair!r}.")
        fields[key] = value
    with _store(ctx) as db:
        added = store.add(
            db, email, name=name, fields=fields, list_name=list_name, reactivate=reactivate
        )
        left = store.lists_left(db, added.subscriber.email)
    who, where = added.subscriber.email, repr(list_name.strip())
    if added.created:
        info(f"Added {who} to list {where}.")
        return
    done = [f"added to list {where}" if added.added_to_list else f"already on list {where}"]
    if added.updated:
        done.append("name and fields updated")
    if added.reactivated:
        done.append(f"active again on list {where}")
    elif added.subscriber.state != store.ACTIVE:
        done.append(f"stays {added.subscriber.state} (--reactivate if they asked to come back)")
    elif list_name.strip() in left:
        done.append(
            f"stays unsubscribed from list {where} (--reactivate if they asked to come back)"
        )
    info(f"{who} was a subscriber already: {'; '.join(done)}.")


@subscribers_app.command("list")
def list_subscribers(
    ctx: typer.Context,
    list_name: FilterOption = None,
    state_name: Annotated[
        str | None,
        typer.Option("--state", help="Only this state: active, unsubscribed, bounced, complained."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List subscribers in the order they were added."""
    from digestcli import subscribers as store

    with _store_for_reading(ctx) as db:
        found = store.iter_subscribers(db, list_name=list_name, state=state_name)
        if as_json:
            # Streamed one subscriber per line: the list may be far larger than memory wants.
            held: str | None = None
            out("[")
            for subscriber in found:
                if held is not None:
                    out(f"  {held},")
                held = json.dumps(subscriber.to_json(), ensure_ascii=False)
            out("]" if held is None else f"  {held}\n]")
            return
        shown = 0
        for subscriber in found:
            lists = ",".join(subscriber.lists) or "-"
            out(f"{subscriber.email}  {subscriber.name or '-'}  [{subscriber.state}]  {lists}")
            shown += 1
        if not shown:
            info("No subscribers; add one with `digest subscribers add EMAIL` or import a CSV.")


@subscribers_app.command("show")
def show_subscriber(ctx: typer.Context, email: EmailArgument, as_json: JsonOption = False) -> None:
    """One subscriber: state, lists, fields, and the last answer recorded about them."""
    from digestcli.events import standing

    with _store_for_reading(ctx) as db:
        found = standing(db, email)
    if as_json:
        out_json(found.to_json())
        return
    subscriber, last = found.subscriber, found.last_event
    out(f"{subscriber.email}  {subscriber.name or '-'}  [{subscriber.state}]")
    lists = [f"{name} (left)" if name in found.lists_left else name for name in subscriber.lists]
    out(f"lists: {', '.join(lists) or '-'}")
    for key, value in subscriber.fields.items():
        out(f"{key}: {value}")
    if last is not None:
        where = f" from {last.list}" if last.list else ""
        why = f": {last.detail}" if last.detail else ""
        out(f"last answer: {last.kind}{where} via {last.source} at {last.at}{why}")


@subscribers_app.command("export")
def export_subscribers(ctx: typer.Context, list_name: FilterOption = None) -> None:
    """Write subscribers as CSV to stdout: email, name, state, lists, then one column per field."""
    from digestcli import subscribers as store

    with _store_for_reading(ctx) as db:
        count = store.export_csv(db, sys.stdout, list_name=list_name)
    info(f"Exported {count} subscribers.")


@subscribers_app.command("remove")
def remove_subscriber(
    ctx: typer.Context,
    email: EmailArgument,
    list_name: Annotated[
        str | None,
        typer.Option("--list", "-l", help="Only take them off this list (default: delete)."),
    ] = None,
) -> None:
    """Delete a subscriber, or with --list take them off one list."""
    from digestcli import subscribers as store

    with _store(ctx) as db:
        removed = store.remove(db, email, list_name=list_name)
    if list_name is None:
        info(f"Removed {email.strip()} and their list memberships.")
    elif removed:
        info(f"Took {email.strip()} off list {list_name!r}.")
    else:
        info(f"{email.strip()} was not on list {list_name!r}; nothing to do.")


@subscribers_app.command("unsubscribe")
def unsubscribe_subscriber(ctx: typer.Context, email: EmailArgument) -> None:
    """Mark a subscriber unsubscribed: they get no more issues from any list."""
    from digestcli.events import unsubscribe

    with _store(ctx) as db:
        done = unsubscribe(db, email.strip(), None)
    if done.outcome == "unknown":
        from digestcli.subscribers import SubscriberNotFound

        raise SubscriberNotFound(email.strip())
    info(_unsubscribed(done))


def _unsubscribed(done: Unsubscribed) -> str:
    if done.outcome == "unknown":
        return f"{done.email} is not a subscriber any more; nothing to do."
    if done.list is None:
        if done.outcome == "unsubscribed":
            return f"Unsubscribed {done.email}; no more issues go to this address."
        return f"{done.email} is {done.state} already; nothing to do."
    if done.outcome == "unsubscribed":
        return f"Unsubscribed {done.email} from `{done.list}`; no more issues from that list."
    if done.state != "active":
        return f"{done.email} is {done.state} already; nothing to do."
    return f"{done.email} left `{done.list}` already; nothing to do."


@app.command("lists")
def show_lists(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Show the lists with their subscriber and active counts."""
    from digestcli import subscribers as store

    with _store_for_reading(ctx) as db:
        found = store.lists_with_counts(db)
    if as_json:
        out_json([entry.to_json() for entry in found])
        return
    if not found:
        info("No lists yet; adding or importing subscribers creates one.")
    for entry in found:
        plural = "" if entry.subscribers == 1 else "s"
        out(f"{entry.name}  {entry.subscribers} subscriber{plural}, {entry.active} active")


@app.command("unsubscribe")
def unsubscribe_link(
    ctx: typer.Context,
    token: Annotated[
        str,
        typer.Argument(
            metavar="TOKEN|URL", help="The token, or the whole unsubscribe link with ?token=..."
        ),
    ],
) -> None:
    """Verify a signed unsubscribe token (or link) and unsubscribe its subscriber from its list."""
    from digestcli.events import unsubscribe
    from digestcli.tokens import load_secret, token_from_link, verify

    st = state(ctx)
    signed = verify(token_from_link(token), load_secret(st.workspace().state_dir, st.env))
    with _store(ctx) as db:
        done = unsubscribe(db, signed.email, signed.list, ref=signed.ref)
    info(_unsubscribed(done))
