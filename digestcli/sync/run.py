"""The sync itself: every list of the configured provider read into the store, one by one."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from digestcli import journal, syncstate
from digestcli.db import opened, transaction
from digestcli.errors import DigestError
from digestcli.events import record

if TYPE_CHECKING:
    import httpx

    from digestcli.sync.base import Fetcher
    from digestcli.workspace import Workspace

# Transport kind -> the module:class that reads its suppression lists.
FETCHERS = {
    "postmark": "digestcli.sync.postmark:PostmarkFetcher",
    "sendgrid": "digestcli.sync.sendgrid:SendGridFetcher",
    "mailgun": "digestcli.sync.mailgun:MailgunFetcher",
    "resend": "digestcli.sync.resend:ResendFetcher",
}


@dataclass
class SourceReport:
    """What reading one source did: entries fetched, events newly applied, or its error."""

    source: str
    fetched: int = 0
    applied: int = 0
    error: str | None = None


@dataclass
class SyncReport:
    """What `digest sync` did, in the shape of `sync --json` (DESIGN §3)."""

    # The transport kind read, or None when it keeps no suppression lists.
    provider: str | None = None
    sources: list[SourceReport] = field(default_factory=list)
    changes: dict[str, int] = field(
        default_factory=lambda: {"unsubscribed": 0, "bounced": 0, "complained": 0}
    )
    # Uncertain rows settled by the provider's record: now sent, back to pending, still unsure.
    reconciled: dict[str, int] = field(
        default_factory=lambda: {"sent": 0, "pending": 0, "uncertain": 0}
    )
    # Why uncertain rows stay so, when the provider's record could not be searched.
    note: str | None = None

    @property
    def ok(self) -> bool:
        """Whether every source was read."""
        return all(source.error is None for source in self.sources)

    def as_dict(self) -> dict[str, Any]:
        """The report as `sync --json` prints it."""
        return {
            "sources": [
                {"source": s.source, "fetched": s.fetched, "applied": s.applied, "error": s.error}
                for s in self.sources
            ],
            "changes": dict(self.changes),
            "reconciled": dict(self.reconciled),
        }


def sync(
    workspace: Workspace,
    env: Mapping[str, str],
    *,
    http: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
    serve_http: httpx.BaseTransport | None = None,
) -> SyncReport:
    """Pull readers' answers into the store: the configured provider's suppression lists and
    a remote serve's events; then settle uncertain sends by the provider's record. A failing
    source is reported and the others go on. Safe to re-run: what was recorded changes nothing.
    """
    from digestcli.reconcile import reconcile

    everything = workspace.settings()
    settings, soft_limit = everything.transport, everything.bounces.soft_limit
    report = SyncReport()
    with opened(workspace.db_path) as db:
        target = FETCHERS.get(settings.kind)
        if target is not None:
            report.provider = settings.kind
            fetcher = _fetcher(target, settings, env, http=http, sleep=sleep, clock=clock)
            try:
                # A missing key or a bad base_url is the workspace's problem, not a list's.
                fetcher.api.transport.open()
                for list_name in fetcher.lists:
                    report.sources.append(_read(db, fetcher, list_name, report, soft_limit))
                settled = reconcile(db, fetcher.api.transport)
                report.reconciled = {
                    "sent": settled.sent,
                    "pending": settled.pending,
                    "uncertain": settled.uncertain,
                }
                report.note = settled.error
            finally:
                fetcher.api.transport.close()
        else:
            report.reconciled["uncertain"] = journal.uncertain_total(db)
        if everything.serve.url:
            report.sources.append(
                _remote(db, workspace, env, everything.serve.url, report, soft_limit, serve_http)
            )
    return report


def _remote(
    db: Any,
    workspace: Workspace,
    env: Mapping[str, str],
    url: str,
    report: SyncReport,
    soft_limit: int,
    http: httpx.BaseTransport | None,
) -> SourceReport:
    """Read the remote serve's /events; its failure is this source's error."""
    from digestcli.sync.remote import read_remote
    from digestcli.tokens import events_key, load_secret

    source = SourceReport("serve events")
    try:
        key = events_key(load_secret(workspace.state_dir, env))
        source.fetched, source.applied, changes = read_remote(
            db, url, key, soft_limit=soft_limit, http=http
        )
    except DigestError as exc:
        source.error = str(exc)
        return source
    for state, number in changes.items():
        report.changes[state] += number
    return source


def _fetcher(
    target: str,
    settings: Any,
    env: Mapping[str, str],
    *,
    http: httpx.BaseTransport | None,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> Fetcher:
    from importlib import import_module

    from digestcli.sync.api import ProviderAPI
    from digestcli.transports import transport_class
    from digestcli.transports.http import HTTPTransport

    cls = transport_class(settings.kind)
    if not issubclass(cls, HTTPTransport):
        raise DigestError(f"the `{settings.kind}` transport has no suppression lists to read.")
    transport = cls(settings, env, http=http, clock=clock)
    module_name, _, attr = target.partition(":")
    fetcher: Fetcher = getattr(import_module(module_name), attr)(
        ProviderAPI(transport, sleep=sleep)
    )
    return fetcher


def _read(
    db: Any, fetcher: Fetcher, list_name: str, report: SyncReport, soft_limit: int
) -> SourceReport:
    """Read one list into the store; its mark moves only when the whole list was read."""
    source = SourceReport(f"{fetcher.provider} {list_name}")
    key = f"{fetcher.provider}:{list_name}"
    mark = syncstate.mark(db, key)
    newest = mark
    try:
        # Each page is recorded as it comes: memory stays flat, and a list that fails
        # half-way keeps what it read (the next sync re-reads it, deduplicated).
        for events in fetcher.pages(list_name, mark):
            source.fetched += len(events)
            applied = record(db, events, soft_limit=soft_limit)
            source.applied += applied.recorded
            for state, number in applied.changes.items():
                report.changes[state] += number
            for event in events:
                if newest is None or event.at > newest:
                    newest = event.at
    except DigestError as exc:
        source.error = str(exc)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        source.error = (
            f"{fetcher.api.provider} answered {list_name} with data digest cannot read "
            f"({type(exc).__name__}: {exc}); run `digest sync` again, or report it."
        )
    else:
        if newest is not None and newest != mark:
            with transaction(db):
                syncstate.set_mark(db, key, newest)
    return source
