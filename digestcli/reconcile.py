"""Settling uncertain sends by the provider's own record of what it accepted (`digest sync`)."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from digestcli import journal
from digestcli.errors import ConfigError, PermanentFailure, TemporaryFailure
from digestcli.journal import Campaign
from digestcli.transports.base import Transport
from digestcli.transports.http import HTTPTransport

# A row not found in the provider's record is sent again only once its attempt is this old:
# providers index accepted messages with a delay (Mailgun's events: up to ~30 minutes).
SETTLE_AFTER = dt.timedelta(hours=1)


class CannotTell(Exception):
    """The provider's record cannot be searched (no such API, or not on this account)."""


# (transport, campaign, email) -> the provider's message id, or None when it has no record.
Finder = Callable[[HTTPTransport, Campaign, str], "str | None"]


@dataclass
class Reconciled:
    """What reconciling did: rows now sent, back to pending, still uncertain; and why not."""

    sent: int = 0
    pending: int = 0
    uncertain: int = 0
    error: str | None = None


def reconcile(
    db: sqlite3.Connection, transport: Transport, *, now: dt.datetime | None = None
) -> Reconciled:
    """Look every uncertain row up in the provider's record and settle those it can."""
    now = now or dt.datetime.now(dt.UTC)
    result = Reconciled()
    finder = FINDERS.get(transport.name)
    for campaign, rows in journal.in_doubt(db):
        if finder is None or not isinstance(transport, HTTPTransport):
            result.uncertain += len(rows)
            result.error = f"`{transport.name}` keeps no record of sends that digest can search"
            continue
        sent: dict[int, str] = {}
        unsent: list[int] = []
        for index, row in enumerate(rows):
            try:
                provider_id = finder(transport, campaign, row.email)
            except (CannotTell, TemporaryFailure, PermanentFailure, ConfigError) as exc:
                result.error = str(exc)
                result.uncertain += len(rows) - index
                break
            if provider_id is not None:
                sent[row.seq] = provider_id
            elif _older(row.attempted_at, now):
                unsent.append(row.seq)
            else:
                result.uncertain += 1
        journal.settle_doubt(db, campaign.id, sent, unsent)
        result.sent += len(sent)
        result.pending += len(unsent)
    return result


def _older(stamp: str, now: dt.datetime) -> bool:
    try:
        when = dt.datetime.fromisoformat(stamp)
    except ValueError:
        return False  # no time known: never assume it is old enough
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return now - when >= SETTLE_AFTER


def _postmark(transport: HTTPTransport, campaign: Campaign, email: str) -> str | None:
    """Postmark's outbound message search, by recipient and the campaign's tag."""
    data = transport.get_json(
        "/messages/outbound",
        {"recipient": email, "tag": campaign.key, "count": 50, "offset": 0},
    )
    for message in _list(data, "Messages"):
        metadata = message.get("Metadata") or {}
        if message.get("Tag") == campaign.key or metadata.get("campaign") == campaign.key[:80]:
            return str(message.get("MessageID") or "") or "postmark"
    return None


def _mailgun(transport: HTTPTransport, campaign: Campaign, email: str) -> str | None:
    """Mailgun's events: `accepted` for the recipient under the campaign's tag."""
    from urllib.parse import quote

    from digestcli.transports.mailgun import campaign_tag

    domain = quote(transport.settings.domain or "", safe="")
    data = transport.get_json(
        f"/v3/{domain}/events",
        {"event": "accepted", "recipient": email, "tags": campaign_tag(campaign.key), "limit": 300},
    )
    for item in _list(data, "items"):
        variables = item.get("user-variables") or {}
        if variables.get("campaign", campaign.key) != campaign.key:
            continue
        headers = (item.get("message") or {}).get("headers") or {}
        return str(headers.get("message-id") or item.get("id") or "mailgun")
    return None


def _sendgrid(transport: HTTPTransport, campaign: Campaign, email: str) -> str | None:
    """SendGrid's email activity, which needs its paid add-on: a 403 means it cannot tell."""
    query = f'to_email="{email}" AND unique_args[\'campaign\']="{campaign.key}"'
    try:
        data = transport.get_json("/v3/messages", {"query": query, "limit": 10})
    except ConfigError as exc:
        if "HTTP 403" not in str(exc):
            raise
        raise CannotTell(
            "SendGrid's email activity is not available on this account (it is a paid "
            "add-on), so uncertain rows stay uncertain; `digest status` lists them"
        ) from exc
    for message in _list(data, "messages"):
        return str(message.get("msg_id") or "sendgrid")
    return None


def _list(data: Any, key: str) -> list[dict[str, Any]]:
    found = data.get(key) if isinstance(data, dict) else None
    return [item for item in found if isinstance(item, dict)] if isinstance(found, list) else []


FINDERS: dict[str, Finder] = {"postmark": _postmark, "mailgun": _mailgun, "sendgrid": _sendgrid}
