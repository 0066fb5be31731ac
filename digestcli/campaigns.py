"""A send's workflow: prepare the issue, plan a mode, run the plan; test sends and status."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

from digestcli import journal
from digestcli.config import Settings, TransportSettings
from digestcli.db import opened
from digestcli.drafts import load_draft
from digestcli.errors import ConfigError, UsageError
from digestcli.journal import Campaign, Counts
from digestcli.models import Content, Issue, Recipient, Result
from digestcli.subscribers import count_subscribers, skipped_members
from digestcli.transports import Factory, factory, transport_class
from digestcli.unsubscribing import provider_content, unsubscribe_placeholder
from digestcli.workspace import Workspace

if TYPE_CHECKING:
    from digestcli.sending import Progress


def content_hash(content: Content) -> str:
    """A fingerprint of what every recipient gets (slots, not values)."""
    digest = hashlib.sha256()
    for piece in (content.subject, content.from_addr, content.reply_to or ""):
        digest.update(piece.encode() + b"\0")
    for part in (*content.html.parts, "\0\0", *content.text.parts):
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()


@dataclass(frozen=True)
class SendSetup:
    """Everything a send needs, prepared and checked before any row is written."""

    workspace: Workspace
    settings: Settings
    draft: Path
    issue: Issue
    content: Content
    transport_settings: TransportSettings
    env: Mapping[str, str]
    # The issue as rendered, its unsubscribe slot still open, when `content` has the provider's
    # placeholder in it instead: what the pre-send checks read.
    rendered: Content | None = None
    # Where the issue lives on the web (digest publish), fixed by the draft's first campaign.
    link: journal.IssueLink = field(default_factory=lambda: journal.IssueLink(None, None))

    @property
    def kind(self) -> str:
        """The transport's name."""
        return self.transport_settings.kind

    def transports(self) -> Factory:
        """The factory of the chosen transport, and what it can do."""
        return factory(
            self.transport_settings,
            self.env,
            outbox_dir=self.workspace.outbox_dir,
            requests_per_second=self.settings.sending.requests_per_second,
        )

    def check_transport(self) -> None:
        """Open a transport once, so a missing secret fails before anything is sent."""
        transport = self.transports()()
        transport.open()
        transport.close()


def prepare(
    workspace: Workspace, draft: Path, env: Mapping[str, str], kind: str | None = None
) -> SendSetup:
    """Render the draft once and resolve the transport; every error surfaces here."""
    from digestcli.render import render_issue

    settings = workspace.settings()
    transport_settings = settings.transport
    if kind:
        transport_class(kind)  # a clear error for an unknown name
        transport_settings = replace(transport_settings, kind=kind)
    placeholder = unsubscribe_placeholder(settings, transport_settings)
    if placeholder is None and transport_settings.asm_group_id is not None:
        # With a group and no ASM tag in the body, SendGrid appends its own unsubscribe and
        # preferences links: beside digest's signed link, that is two ways out, one unseen.
        transport_settings = replace(transport_settings, asm_group_id=None)
    issue = load_draft(draft).issue
    link = issue_link(workspace, draft.name, settings)
    content = render_issue(issue, settings, workspace.templates_dir, web_url=link.web_url)
    if placeholder is None:
        return SendSetup(
            workspace, settings, draft, issue, content, transport_settings, env, link=link
        )
    provided = provider_content(content, placeholder, transport_settings.kind, draft)
    return SendSetup(
        workspace,
        settings,
        draft,
        issue,
        provided,
        transport_settings,
        env,
        rendered=content,
        link=link,
    )


def issue_link(workspace: Workspace, draft_name: str, settings: Settings) -> journal.IssueLink:
    """The web page a draft's emails link to: as its first campaign fixed it, or a new one.

    Fixed at the first send, so publishing later, renaming the draft or moving web_url never
    breaks a link already in someone's inbox, and a resume renders the same bytes.
    """
    from digestcli.db import for_reading
    from digestcli.publish_links import new_link

    with for_reading(workspace.db_path) as db:
        found = journal.issue_link(db, draft_name)
        if found is None:
            return new_link(db, draft_name, settings)
    if found.slug is None:
        # Started before digest published issues: its emails linked to web_url itself.
        return journal.IssueLink(None, settings.publication.web_url)
    return found


# ----- test sends ----------------------------------------------------------------------------


def test_send(
    setup: SendSetup, addresses: list[str], as_email: str | None, list_name: str
) -> list[Result]:
    """Send a [TEST] copy to each address, personalised as the sample reader or as_email."""
    from digestcli.message import build_message
    from digestcli.render import sample_recipient
    from digestcli.tokens import load_secret, sign

    recipient = _subscriber(setup, as_email) if as_email else sample_recipient()
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
    with setup.transports()() as transport:
        return transport.send_batch(messages)


def _subscriber(setup: SendSetup, email: str) -> Recipient:
    from digestcli import subscribers

    with opened(setup.workspace.db_path) as db:
        found = subscribers.get(db, email)
    if found is None:
        raise UsageError(f"--as: no subscriber {email}; `digest subscribers list` shows them.")
    return Recipient(found.email, found.name, dict(found.fields))


# ----- list sends: the plan --------------------------------------------------------------------


class Mode(Enum):
    """What the editor asked for."""

    START = "start"
    RESUME = "resume"
    RETRY_FAILED = "failed"
    RETRY_UNCERTAIN = "uncertain"


class Action(Enum):
    """What a send will do, decided from the mode and the journal."""

    START = "start"  # snapshot the list into a new campaign, then send
    RESUME = "resume"  # send what is pending (and, idempotently, what was left in flight)
    RETRY = "retry"  # put the failed or uncertain rows back to pending, then send
    FINISHED = "finished"  # nothing to send: the campaign is done
    NOTHING_TO_RETRY = "nothing to retry"  # no rows in the state to retry


_RETRY_STATES = {Mode.RETRY_FAILED: "failed", Mode.RETRY_UNCERTAIN: "uncertain"}


@dataclass(frozen=True)
class Summary:
    """What the editor confirms before a send."""

    subject: str
    from_addr: str
    list_name: str
    recipients: int
    transport: str
    batches: int
    seconds: float | None
    # List members the send leaves out, by why (unsubscribed, bounced, complained, left).
    skipped: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    """A send decided but not started: what it will do, to how many, and what to warn about."""

    setup: SendSetup
    list_name: str
    mode: Mode
    action: Action
    campaign: Campaign | None
    counts: Counts | None
    summary: Summary
    warnings: tuple[str, ...] = ()

    @property
    def sends(self) -> bool:
        """Whether running the plan sends anything."""
        return self.action in (Action.START, Action.RESUME, Action.RETRY)

    @property
    def retry_state(self) -> str | None:
        """The state a retry re-sends ("failed" or "uncertain"), else None."""
        return _RETRY_STATES.get(self.mode)

    def note(self) -> str:
        """Why a plan that sends nothing sends nothing."""
        counts = self.counts or Counts()
        if self.action is Action.NOTHING_TO_RETRY:
            return f"No {self.retry_state} recipients in this campaign; nothing to send."
        return (
            f"Already sent: {self.setup.draft.name} to `{self.list_name}` finished "
            f"({counts.sent} sent, {counts.failed} failed, {counts.uncertain} uncertain); "
            "nothing to send. `digest status` shows the details."
        )


def plan_send(setup: SendSetup, list_name: str, mode: Mode = Mode.START) -> Plan:
    """Decide what a send in this mode does; refuse one that would break a promise."""
    transports = setup.transports()
    with opened(setup.workspace.db_path) as db:
        campaign = journal.find_campaign(db, journal.campaign_key(setup.draft.name, list_name))
        if campaign is None:
            if mode is not Mode.START:
                raise UsageError(
                    f"nothing to resume: {setup.draft.name} was never sent to `{list_name}`."
                )
            recipients = count_subscribers(db, list_name=list_name, state="active")
            plan = _plan(setup, list_name, mode, Action.START, None, None, recipients, ())
            skipped = skipped_members(db, list_name)
            return replace(plan, summary=replace(plan.summary, skipped=skipped))
        counts = journal.counts(db, campaign.id)
    retry = _RETRY_STATES.get(mode)
    if retry and not counts.as_dict()[retry]:
        return _plan(setup, list_name, mode, Action.NOTHING_TO_RETRY, campaign, counts, 0, ())
    if not retry and campaign.finished_at and not counts.pending and not counts.in_flight:
        return _plan(setup, list_name, mode, Action.FINISHED, campaign, counts, 0, ())
    if mode is Mode.START:
        raise UsageError(
            f"a send of {setup.draft.name} to `{list_name}` is unfinished "
            f"({counts.pending} pending, {counts.in_flight} in flight); "
            "continue it with `digest send --resume`."
        )
    idempotent = transports.capabilities.idempotent
    warning = check_resumable(campaign, setup, idempotent, counts.in_flight)
    recipients = counts.pending + counts.in_flight + (counts.as_dict()[retry] if retry else 0)
    action = Action.RETRY if retry else Action.RESUME
    warnings = (warning,) if warning else ()
    return _plan(setup, list_name, mode, action, campaign, counts, recipients, warnings)


def _plan(
    setup: SendSetup,
    list_name: str,
    mode: Mode,
    action: Action,
    campaign: Campaign | None,
    counts: Counts | None,
    recipients: int,
    warnings: tuple[str, ...],
) -> Plan:
    if action in (Action.START, Action.RESUME, Action.RETRY):
        check_ready(setup)
    summary = summarise(setup, list_name, recipients, setup.transports())
    return Plan(setup, list_name, mode, action, campaign, counts, summary, warnings)


def check_ready(setup: SendSetup) -> None:
    """Refuse a list send that `digest check` would report errors for (no network)."""
    from digestcli.checks import error_checks, raise_for_errors
    from digestcli.render import sample_message

    content = setup.rendered or setup.content
    sample = sample_message(content, setup.settings, setup.workspace.state_dir, setup.env)
    raise_for_errors(error_checks(setup.issue, sample, setup.settings), setup.draft)


def summarise(setup: SendSetup, list_name: str, recipients: int, transports: Factory) -> Summary:
    """The pre-send summary with an estimated duration."""
    size = transports.batch_size
    rate = setup.settings.sending.rate
    requests = transports.requests_per_second
    if requests:
        rate = min(rate, requests * size) if rate else requests * size
    return Summary(
        subject=setup.content.subject,
        from_addr=setup.content.from_addr,
        list_name=list_name,
        recipients=recipients,
        transport=setup.kind,
        batches=-(-recipients // size) if recipients else 0,
        seconds=recipients / rate if rate else None,
    )


def check_resumable(
    campaign: Campaign, setup: SendSetup, idempotent: bool, in_flight: int
) -> str | None:
    """Refuse a resume that would break a promise; return a warning to show, if any.

    Only batches left in flight are re-sent under their old idempotency keys, so only they
    need the same transport and the same bytes.
    """
    same = campaign.content_hash == content_hash(setup.content)
    idempotent = idempotent and in_flight > 0
    if campaign.transport != setup.kind and idempotent:
        raise ConfigError(
            f"this campaign was started with `{campaign.transport}`; resume it with "
            f"`--transport {campaign.transport}` so retried batches keep their keys."
        )
    if not same and idempotent:
        raise UsageError(
            "the draft changed since this campaign started, so batches left in flight cannot "
            "be re-sent under their idempotency keys; undo the change or send a new draft."
        )
    if not same:
        return (
            "the draft changed since this campaign started; the remaining recipients get the "
            "new version."
        )
    return None


# ----- list sends: running the plan ------------------------------------------------------------


@dataclass(frozen=True)
class SendReport:
    """What a run did: the campaign's counts after it, and what it found on the way."""

    counts: Counts
    # Rows a dead process had left in flight, now uncertain (non-idempotent transports).
    made_uncertain: int = 0
    # Rows a retry put back to pending before sending.
    requeued: int = 0


def run_send(
    plan: Plan,
    *,
    limit: int | None = None,
    stop: threading.Event | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> SendReport:
    """Carry out a plan: start or requeue the campaign, then send until done or stopped.

    Raises Interrupted once the batches in flight are saved when `stop` is set.
    """
    from digestcli.ratelimit import RateLimiter
    from digestcli.sending import Sender
    from digestcli.tokens import load_secret

    setup = plan.setup
    if not plan.sends:
        raise UsageError(plan.note())
    secret = load_secret(setup.workspace.state_dir, setup.env)
    transports = setup.transports()
    with opened(setup.workspace.db_path) as db:
        requeued = 0
        campaign = plan.campaign
        if campaign is None:
            campaign = start_campaign(db, setup, plan.list_name)
        elif plan.retry_state:
            # Only now, after the confirmation: an explicit choice to send these rows again.
            requeued = journal.requeue(db, campaign.id, plan.retry_state)
        sender = Sender(
            db,
            campaign,
            setup.content,
            transports,
            secret=secret,
            unsubscribe=setup.settings.unsubscribe,
            concurrency=setup.settings.sending.concurrency,
            limiter=RateLimiter(
                messages_per_second=setup.settings.sending.rate,
                requests_per_second=transports.requests_per_second,
            ),
            on_progress=on_progress,
            stop=stop,
        )
        made_uncertain = sender.recover()
        counts = sender.run(limit)
    return SendReport(counts, made_uncertain, requeued)


def start_campaign(db: sqlite3.Connection, setup: SendSetup, list_name: str) -> Campaign:
    """Snapshot the list into a new campaign."""
    if count_subscribers(db, list_name=list_name, state="active") == 0:
        raise UsageError(
            f"the list `{list_name}` has no active subscribers; "
            "add some with `digest subscribers import FILE`."
        )
    return journal.create_campaign(
        db,
        key=journal.campaign_key(setup.draft.name, list_name),
        draft=setup.draft.name,
        content_hash=content_hash(setup.content),
        list_name=list_name,
        transport=setup.kind,
        slug=setup.link.slug,
        web_url=setup.link.web_url,
    )


# ----- status ------------------------------------------------------------------------------------


def campaign_status(workspace: Workspace, draft: str | None) -> dict[str, object]:
    """The status of a draft's latest campaign (without a draft: the campaign run last)."""
    from digestcli import catalog

    with opened(workspace.db_path) as db:
        if draft:
            path = catalog.current_draft(workspace, draft)
        else:
            latest = journal.latest_draft(db)
            path = (
                workspace.drafts_dir / Path(latest).name
                if latest
                else catalog.current_draft(workspace, None)
            )
        campaign = journal.latest_campaign(db, path.name)
        if campaign is None:
            raise UsageError(f"{path.name} has not been sent yet; `digest send` starts a campaign.")
        counts = journal.counts(db, campaign.id)
        return {
            "campaign": campaign.key,
            "draft": campaign.draft,
            "list": campaign.list,
            "transport": campaign.transport,
            "total": counts.total,
            "counts": counts.as_dict(),
            "failures": [{"email": e, "error": r} for e, r in journal.failures(db, campaign.id)],
            "uncertain": journal.uncertain(db, campaign.id),
        }
