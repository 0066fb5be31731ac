"""Preparing a send: the rendered issue, the transport, the campaign and what to tell the editor."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from digestcli import journal
from digestcli.config import Settings, TransportSettings
from digestcli.db import connect
from digestcli.drafts import load_draft
from digestcli.errors import ConfigError, UsageError
from digestcli.journal import Campaign
from digestcli.models import Content, Issue
from digestcli.subscribers import count_subscribers
from digestcli.transports import transport_class
from digestcli.transports.base import Transport
from digestcli.workspace import Workspace


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

    @property
    def kind(self) -> str:
        """The transport's name."""
        return self.transport_settings.kind

    def make_transport(self) -> Transport:
        """A new, unopened transport instance."""
        cls = transport_class(self.kind)
        return cls(self.transport_settings, self.env, outbox_dir=self.workspace.outbox_dir)

    def requests_per_second(self, transport: Transport) -> float:
        """The request rate to keep: configured, else the provider's documented default."""
        configured = self.settings.sending.requests_per_second
        return configured or transport.default_requests_per_second

    def check_transport(self) -> Transport:
        """Open a transport once, so a missing secret fails before anything is sent."""
        transport = self.make_transport()
        transport.open()
        return transport


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
    issue = load_draft(draft).issue
    content = render_issue(issue, settings, workspace.templates_dir)
    return SendSetup(workspace, settings, draft, issue, content, transport_settings, env)


def check_ready(setup: SendSetup) -> None:
    """Refuse a list send that `digest check` would report errors for (no network)."""
    from digestcli.checks import error_checks, raise_for_errors
    from digestcli.render import sample_message

    sample = sample_message(setup.content, setup.settings, setup.workspace.state_dir, setup.env)
    raise_for_errors(error_checks(setup.issue, sample, setup.settings), setup.draft)


def open_store(workspace: Workspace) -> sqlite3.Connection:
    """The workspace's SQLite store."""
    return connect(workspace.db_path)


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


def summarise(setup: SendSetup, list_name: str, recipients: int, transport: Transport) -> Summary:
    """The pre-send summary with an estimated duration."""
    size = transport.batch_size
    rate = setup.settings.sending.rate
    requests = setup.requests_per_second(transport)
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


def existing_campaign(db: sqlite3.Connection, setup: SendSetup, list_name: str) -> Campaign | None:
    """The campaign of this draft and list, if one was started."""
    return journal.find_campaign(db, journal.campaign_key(setup.draft.name, list_name))


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
