"""`digest sync`: pull readers' answers from the provider into the subscriber store."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from digestcli.cli.app import JsonOption, app, info, out, out_json, state
from digestcli.errors import ExitStatus

if TYPE_CHECKING:
    from collections.abc import Mapping

    from digestcli.sync import SyncReport


@app.command(name="sync")
def sync_command(
    ctx: typer.Context,
    as_json: JsonOption = False,
) -> None:
    """Pull the provider's suppression lists (bounces, complaints, unsubscribes) into the store.

    Each list is read from where the last sync stopped; one that fails is reported and the
    others go on (exit 1). With [serve] url set, the answers that serve recorded come too.
    Uncertain sends are looked up in the provider's record: found ones become sent, ones it
    never saw go back to pending after an hour (`digest send --resume` sends them once).
    """
    from digestcli.sync import sync

    report = sync(state(ctx).workspace(), state(ctx).env)
    if as_json:
        out_json(report.as_dict())
    else:
        _show(report, state(ctx).env)
    if not report.ok:
        raise typer.Exit(int(ExitStatus.ERROR))


def changed(report: SyncReport) -> str:
    """What the answers changed in the store, in one line."""
    changes = report.changes
    return (
        f"{changes['unsubscribed']} unsubscribed, {changes['bounced']} bounced, "
        f"{changes['complained']} complained."
    )


def settlement(report: SyncReport) -> str:
    """What reconciling settled, in one line ('' when nothing)."""
    settled = report.reconciled
    if not (settled["sent"] or settled["pending"]):
        return ""
    return (
        f"Uncertain sends settled: {settled['sent']} found sent, "
        f"{settled['pending']} back to pending"
    )


def _show(report: SyncReport, env: Mapping[str, str]) -> None:
    from rich.markup import escape
    from rich.table import Table

    from digestcli.console import stdout_console

    if report.provider is None:
        info("The configured transport keeps no suppression lists: nothing to pull from.")
    else:
        table = Table("Source", "Fetched", "Applied", "Error", title_justify="left")
        for source in report.sources:
            table.add_row(
                escape(source.source),
                str(source.fetched),
                str(source.applied),
                escape(source.error or ""),
            )
        stdout_console(env).print(table)
        out(changed(report))
    if settled := settlement(report):
        info(f"{settled} (`digest send --resume` sends them once).")
    if uncertain := report.reconciled["uncertain"]:
        why = f" ({report.note})" if report.note else ""
        info(
            f"{uncertain} deliveries are still uncertain{why}; "
            "`digest send --retry-uncertain` re-sends them and may give some a second copy."
        )
