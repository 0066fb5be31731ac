"""`digest send` (test sends and list sends) and `digest status`."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from digestcli import catalog
from digestcli.cli.app import JsonOption, app, info, out, out_json, state
from digestcli.errors import ExitStatus, UsageError
from digestcli.models import DEFAULT_LIST

if TYPE_CHECKING:
    from digestcli.campaigns import Mode, Plan, SendReport
    from digestcli.models import Result
    from digestcli.workspace import Workspace


def _addresses(raw: str) -> list[str]:
    from email_validator import EmailNotValidError, validate_email

    found = []
    for part in raw.split(","):
        address = part.strip()
        if not address:
            continue
        try:
            found.append(validate_email(address, check_deliverability=False).normalized)
        except EmailNotValidError as exc:
            raise UsageError(f"--test: `{address}` is not a valid address ({exc}).") from None
    if not found:
        raise UsageError("--test needs at least one address, e.g. --test me@example.org.")
    return found


def _mode(resume: bool, retry_failed: bool, retry_uncertain: bool) -> Mode:
    from digestcli.campaigns import Mode

    chosen = [
        mode
        for mode, flag in (
            (Mode.RESUME, resume),
            (Mode.RETRY_FAILED, retry_failed),
            (Mode.RETRY_UNCERTAIN, retry_uncertain),
        )
        if flag
    ]
    if len(chosen) > 1:
        raise UsageError("choose one of --resume, --retry-failed and --retry-uncertain.")
    return chosen[0] if chosen else Mode.START


@app.command()
def send(
    ctx: typer.Context,
    test: Annotated[
        str | None, typer.Option("--test", help="Send a [TEST] copy to these addresses only.")
    ] = None,
    as_email: Annotated[
        str | None, typer.Option("--as", help="With --test: personalise as this subscriber.")
    ] = None,
    list_name: Annotated[str, typer.Option("--list", help="Subscriber list.")] = DEFAULT_LIST,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Render and batch everything; send nothing.")
    ] = False,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Send to the first N pending only.")
    ] = None,
    transport: Annotated[
        str | None, typer.Option("--transport", help="Override [transport] kind.")
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Send what is still pending.")] = False,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Send again to recipients that failed.")
    ] = False,
    retry_uncertain: Annotated[
        bool,
        typer.Option("--retry-uncertain", help="Send again to uncertain recipients (may repeat)."),
    ] = False,
    draft: Annotated[
        str | None, typer.Option("--draft", "-d", help="Draft path, file name or number.")
    ] = None,
) -> None:
    """Send a test copy, or the current draft to a list (crash-safe, resumable)."""
    from digestcli import campaigns

    st = state(ctx)
    workspace = st.workspace()
    path = catalog.current_draft(workspace, draft, include_sent=True)
    setup = campaigns.prepare(workspace, path, st.env, transport)
    if test is not None:
        _show_test_results(campaigns.test_send(setup, _addresses(test), as_email, list_name))
        return
    if as_email:
        raise UsageError("--as goes with --test; a list send personalises for every subscriber.")
    if not dry_run:
        _sync_first(workspace, st.env)
    plan = campaigns.plan_send(setup, list_name, _mode(resume, retry_failed, retry_uncertain))
    if not plan.sends:
        info(plan.note())
        return
    for warning in plan.warnings:
        info(f"warning: {warning}")
    _show_summary(plan, limit)
    if dry_run:
        _dry_run(plan, limit)
        return
    setup.check_transport()
    _confirm(plan, yes)
    _show_report(plan, _run(plan, limit))


def _sync_first(workspace: Workspace, env: Mapping[str, str]) -> None:
    """Bring readers' answers home before the list is read; a failing source only warns."""
    from digestcli.cli.sync import changed, settlement
    from digestcli.errors import DigestError
    from digestcli.sync import sync

    try:
        report = sync(workspace, env)
    except DigestError as exc:
        info(f"warning: readers' answers were not synced before this send ({exc}).")
        return
    for source in report.sources:
        if source.error:
            info(f"warning: sync of {source.source} failed ({source.error}); sending anyway.")
    if any(report.changes.values()):
        info(f"Synced readers' answers: {changed(report)}")
    if settled := settlement(report):
        info(f"{settled}.")


def _show_test_results(results: list[Result]) -> None:
    failed = 0
    for result in results:
        if result.ok:
            out(f"{result.email}\t{result.provider_id or 'sent'}")
        else:
            failed += 1
            info(f"not sent to {result.email}: {result.error}")
    if failed:
        raise typer.Exit(int(ExitStatus.PARTIAL))


def _show_summary(plan: Plan, limit: int | None) -> None:
    summary = plan.summary
    minutes, seconds = divmod(round(summary.seconds or 0), 60)
    lines = [
        f"Subject:    {summary.subject}",
        f"From:       {summary.from_addr}",
        f"List:       {summary.list_name}",
        f"Recipients: {summary.recipients}" + (f" (this run: first {limit})" if limit else ""),
        *_skipped(summary.skipped),
        f"Transport:  {summary.transport}",
        f"Batches:    {summary.batches}",
        f"Estimate:   about {minutes} min {seconds} s"
        if summary.seconds is not None
        else "Estimate:   as fast as the transport allows (no rate set)",
    ]
    info("\n".join(lines))


def _skipped(skipped: Mapping[str, int]) -> list[str]:
    if not skipped:
        return []
    why = ", ".join(
        f"{count} {'left the list' if state == 'left' else state}"
        for state, count in sorted(skipped.items())
    )
    return [f"Skipped:    {sum(skipped.values())} list members ({why})"]


def _dry_run(plan: Plan, limit: int | None) -> None:
    from digestcli.dryrun import measure

    report = measure(plan, limit)
    info(
        f"Dry run: {report.recipients} recipients in {report.batches} batches, "
        f"{report.bytes} bytes of requests ({report.bytes_per_recipient:.0f} per recipient); "
        "nothing was sent."
    )


def _confirm(plan: Plan, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise UsageError(
            "refusing to send without confirmation in a non-interactive shell; pass --yes."
        )
    recipients = plan.summary.recipients
    if not typer.confirm(f"Send to {recipients} recipients?", default=False, err=True):
        info("Nothing sent.")
        raise typer.Exit(1)


@contextmanager
def _ctrl_c() -> Iterator[threading.Event]:
    """Map the first Ctrl-C to a stop event; a second one stops at once."""
    stop = threading.Event()

    def on_sigint(signum: int, frame: object) -> None:
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        info("Stopping: finishing the batches in flight (Ctrl-C again to stop at once).")

    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, on_sigint) if main else None
    try:
        yield stop
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _run(plan: Plan, limit: int | None) -> SendReport:
    from digestcli.campaigns import run_send
    from digestcli.cli.progress import send_progress
    from digestcli.errors import Interrupted

    try:
        with send_progress(plan.setup.env) as update, _ctrl_c() as stop:
            return run_send(plan, limit=limit, stop=stop, on_progress=update)
    except Interrupted:
        info("Interrupted: batches in flight were finished and saved.")
        info("Resume with: digest send --resume")
        raise typer.Exit(int(ExitStatus.INTERRUPTED)) from None


def _show_report(plan: Plan, report: SendReport) -> None:
    counts = report.counts
    if plan.retry_state:
        info(f"{report.requeued} {plan.retry_state} recipients were pending again for this run.")
    if report.made_uncertain:
        info(
            f"warning: {report.made_uncertain} recipients were in flight when the last run "
            "stopped; they are uncertain (see `digest status`)."
        )
    info(
        f"Done: {counts.sent} sent, {counts.failed} failed, {counts.uncertain} uncertain, "
        f"{counts.pending} pending."
    )
    if counts.pending:
        info("Send the rest with: digest send --resume")
    if counts.in_flight:
        info(
            f"{counts.in_flight} recipients are in a batch the provider may have accepted; "
            "`digest send --resume` re-sends it under the same idempotency key, which cannot "
            "deliver twice."
        )
    if counts.uncertain:
        info(
            f"{counts.uncertain} recipients are uncertain: their batch may or may not have "
            "arrived. `digest status` lists them; `digest send --retry-uncertain` re-sends to "
            "them and may give some a second copy."
        )
    if counts.failed:
        info(
            f"{counts.failed} recipients failed; `digest status` shows why, and "
            "`digest send --retry-failed` tries them again."
        )
    if counts.failed or counts.uncertain or counts.in_flight:
        raise typer.Exit(int(ExitStatus.PARTIAL))


@app.command()
def status(
    ctx: typer.Context,
    as_json: JsonOption = False,
    draft: Annotated[
        str | None, typer.Option("--draft", "-d", help="Draft path, file name or number.")
    ] = None,
) -> None:
    """Progress and failures of the current draft's campaign."""
    from digestcli.campaigns import campaign_status

    data = campaign_status(state(ctx).workspace(), draft)
    if as_json:
        out_json(data)
        return
    from digestcli.cli.progress import show_status

    show_status(data, state(ctx).env)
