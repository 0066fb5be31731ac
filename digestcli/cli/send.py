"""`digest send` (test sends and list sends) and `digest status`."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from digestcli import catalog, journal
from digestcli.cli.app import app, info, out, state
from digestcli.errors import ExitStatus, UsageError
from digestcli.models import Recipient

if TYPE_CHECKING:
    from digestcli.campaigns import SendSetup, Summary
    from digestcli.journal import Campaign
    from digestcli.transports.base import Transport
    from digestcli.workspace import Workspace

DEFAULT_LIST = "default"


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
        _test_send(setup, _addresses(test), as_email, list_name)
        return
    if as_email:
        raise UsageError("--as goes with --test; a list send personalises for every subscriber.")
    modes = [resume, retry_failed, retry_uncertain]
    if sum(modes) > 1:
        raise UsageError("choose one of --resume, --retry-failed and --retry-uncertain.")
    _list_send(setup, list_name, yes=yes, dry_run=dry_run, limit=limit, modes=modes)


def _test_send(
    setup: SendSetup, addresses: list[str], as_email: str | None, list_name: str
) -> None:
    from digestcli.message import build_message
    from digestcli.render import sample_recipient
    from digestcli.tokens import load_secret, sign

    recipient = sample_recipient()
    if as_email:
        recipient = _subscriber(setup, as_email)
    secret = load_secret(setup.workspace.state_dir, setup.env)
    token = sign(recipient.email, list_name, secret)
    messages = [
        build_message(
            setup.content,
            Recipient(address, recipient.name, recipient.fields),
            token=token,
            unsubscribe=setup.settings.unsubscribe,
            test=True,
        )
        for address in addresses
    ]
    with setup.check_transport() as transport:
        results = transport.send_batch(messages, batch_key="")
    failed = 0
    for result in results:
        if result.ok:
            out(f"{result.email}\t{result.provider_id or 'sent'}")
        else:
            failed += 1
            info(f"not sent to {result.email}: {result.error}")
    if failed:
        raise typer.Exit(int(ExitStatus.PARTIAL))


def _subscriber(setup: SendSetup, email: str) -> Recipient:
    from digestcli import subscribers
    from digestcli.campaigns import open_store

    db = open_store(setup.workspace)
    found = subscribers.get(db, email)
    db.close()
    if found is None:
        raise UsageError(f"--as: no subscriber {email}; `digest subscribers list` shows them.")
    return Recipient(found.email, found.name, dict(found.fields))


def _list_send(
    setup: SendSetup,
    list_name: str,
    *,
    yes: bool,
    dry_run: bool,
    limit: int | None,
    modes: list[bool],
) -> None:
    from digestcli import campaigns
    from digestcli.subscribers import count_subscribers
    from digestcli.tokens import load_secret

    resume, retry_failed, retry_uncertain = modes
    retry = "failed" if retry_failed else "uncertain" if retry_uncertain else None
    db = campaigns.open_store(setup.workspace)
    campaign = campaigns.existing_campaign(db, setup, list_name)
    probe = setup.make_transport()
    if campaign is None:
        if any(modes):
            raise UsageError(
                f"nothing to resume: {setup.draft.name} was never sent to `{list_name}`."
            )
        recipients = count_subscribers(db, list_name=list_name, state="active")
    else:
        counts = journal.counts(db, campaign.id)
        if retry:
            if not getattr(counts, retry):
                info(f"No {retry} recipients in this campaign; nothing to send.")
                return
        elif campaign.finished_at and not counts.pending and not counts.in_flight:
            info(
                f"Already sent: {setup.draft.name} to `{list_name}` finished "
                f"({counts.sent} sent, {counts.failed} failed, {counts.uncertain} uncertain); "
                "nothing to send. `digest status` shows the details."
            )
            return
        elif not resume:
            raise UsageError(
                f"a send of {setup.draft.name} to `{list_name}` is unfinished "
                f"({counts.pending} pending, {counts.in_flight} in flight); "
                "continue it with `digest send --resume`."
            )
        warning = campaigns.check_resumable(campaign, setup, probe.idempotent, counts.in_flight)
        if warning:
            info(f"warning: {warning}")
        recipients = counts.pending + counts.in_flight + (getattr(counts, retry) if retry else 0)
    campaigns.check_ready(setup)
    summary = campaigns.summarise(setup, list_name, recipients, probe)
    _show_summary(summary, limit)
    if dry_run:
        _dry_run(setup, db, list_name, limit, retry)
        return
    setup.check_transport().close()
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(
                "refusing to send without confirmation in a non-interactive shell; pass --yes."
            )
        if not typer.confirm(f"Send to {recipients} recipients?", default=False, err=True):
            info("Nothing sent.")
            raise typer.Exit(1)
    if campaign is None:
        campaign = campaigns.start_campaign(db, setup, list_name)
    elif retry:
        # Only now, after the confirmation: an explicit choice to send these rows again.
        moved = journal.requeue(db, campaign.id, retry)
        info(f"{moved} {retry} recipients are pending again.")
    secret = load_secret(setup.workspace.state_dir, setup.env)
    _run(setup, db, campaign, limit, secret, probe)


def _show_summary(summary: Summary, limit: int | None) -> None:
    minutes, seconds = divmod(round(summary.seconds or 0), 60)
    lines = [
        f"Subject:    {summary.subject}",
        f"From:       {summary.from_addr}",
        f"List:       {summary.list_name}",
        f"Recipients: {summary.recipients}" + (f" (this run: first {limit})" if limit else ""),
        f"Transport:  {summary.transport}",
        f"Batches:    {summary.batches}",
        f"Estimate:   about {minutes} min {seconds} s"
        if summary.seconds is not None
        else "Estimate:   as fast as the transport allows (no rate set)",
    ]
    info("\n".join(lines))


def _dry_run(
    setup: SendSetup,
    db: sqlite3.Connection,
    list_name: str,
    limit: int | None,
    retry: str | None,
) -> None:
    from digestcli.dryrun import measure

    report = measure(setup, db, list_name, limit, also=retry)
    info(
        f"Dry run: {report.recipients} recipients in {report.batches} batches, "
        f"{report.bytes} bytes of requests ({report.bytes_per_recipient:.0f} per recipient); "
        "nothing was sent."
    )


def _run(
    setup: SendSetup,
    db: sqlite3.Connection,
    campaign: Campaign,
    limit: int | None,
    secret: bytes,
    probe: Transport,
) -> None:
    from digestcli.cli.progress import send_progress
    from digestcli.errors import Interrupted
    from digestcli.ratelimit import RateLimiter
    from digestcli.sending import Sender

    limiter = RateLimiter(
        messages_per_second=setup.settings.sending.rate,
        requests_per_second=setup.requests_per_second(probe),
    )
    with send_progress() as update:
        sender = Sender(
            db,
            campaign,
            setup.content,
            setup.make_transport,
            secret=secret,
            unsubscribe=setup.settings.unsubscribe,
            concurrency=setup.settings.sending.concurrency,
            limiter=limiter,
            on_progress=update,
        )
        made_uncertain = sender.recover()
        if made_uncertain:
            info(
                f"warning: {made_uncertain} recipients were in flight when the last run "
                "stopped; they are uncertain (see `digest status`)."
            )
        try:
            counts = sender.run(limit)
        except Interrupted:
            info("Interrupted: batches in flight were finished and saved.")
            info("Resume with: digest send --resume")
            raise typer.Exit(int(ExitStatus.INTERRUPTED)) from None
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
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
    draft: Annotated[
        str | None, typer.Option("--draft", "-d", help="Draft path, file name or number.")
    ] = None,
) -> None:
    """Progress and failures of the current draft's campaign."""
    from digestcli.campaigns import open_store

    workspace = state(ctx).workspace()
    path = catalog.current_draft(workspace, draft) if draft else _latest_sent(workspace)
    db = open_store(workspace)
    campaign = journal.latest_campaign(db, path.name)
    if campaign is None:
        raise UsageError(f"{path.name} has not been sent yet; `digest send` starts a campaign.")
    counts = journal.counts(db, campaign.id)
    data = {
        "campaign": campaign.key,
        "draft": campaign.draft,
        "list": campaign.list,
        "transport": campaign.transport,
        "total": counts.total,
        "counts": counts.as_dict(),
        "failures": [{"email": e, "error": r} for e, r in journal.failures(db, campaign.id)],
        "uncertain": journal.uncertain(db, campaign.id),
    }
    if as_json:
        out(json.dumps(data, ensure_ascii=False, indent=2))
        return
    from digestcli.cli.progress import show_status

    show_status(data)


def _latest_sent(workspace: Workspace) -> Path:
    """Without --draft: the draft whose campaign ran last."""
    from digestcli.campaigns import open_store

    db = open_store(workspace)
    row = db.execute("SELECT draft FROM campaigns ORDER BY id DESC LIMIT 1").fetchone()
    db.close()
    if row is None:
        return catalog.current_draft(workspace, None)
    return workspace.drafts_dir / Path(str(row[0])).name
