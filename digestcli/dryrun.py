"""`digest send --dry-run`: the whole pipeline up to the wire, counted, with nothing sent."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass

from digestcli import journal
from digestcli.campaigns import SendSetup
from digestcli.models import Recipient
from digestcli.sending import campaign_message
from digestcli.subscribers import active_recipients
from digestcli.tokens import load_secret


@dataclass(frozen=True)
class DryRunReport:
    """What a send would do."""

    recipients: int
    batches: int
    bytes: int

    @property
    def bytes_per_recipient(self) -> float:
        """Average request bytes per recipient."""
        return self.bytes / self.recipients if self.recipients else 0.0


def _recipients(
    db: sqlite3.Connection, setup: SendSetup, list_name: str, also: str | None
) -> Iterator[Recipient]:
    key = journal.campaign_key(setup.draft.name, list_name)
    campaign = journal.find_campaign(db, key)
    if campaign is not None:
        query = (
            "SELECT email, name, fields FROM deliveries WHERE campaign_id = ?"
            " AND state IN ('pending', 'in_flight', ?) ORDER BY seq"
        )
        rows = db.execute(query, (campaign.id, also or "pending"))
        for email, name, fields in rows:
            yield Recipient(str(email), str(name), json.loads(str(fields)))
    else:
        yield from active_recipients(db, list_name)


def measure(
    setup: SendSetup,
    db: sqlite3.Connection,
    list_name: str,
    limit: int | None,
    also: str | None = None,
) -> DryRunReport:
    """Build every message and every batch payload the send would make, and count them."""
    transport = setup.make_transport()
    size = transport.batch_size
    key = journal.campaign_key(setup.draft.name, list_name)
    secret = load_secret(setup.workspace.state_dir, setup.env)
    count = batches = total = 0
    batch = []
    for recipient in _recipients(db, setup, list_name, also):
        if limit is not None and count >= limit:
            break
        count += 1
        batch.append(
            campaign_message(
                setup.content,
                recipient,
                campaign_key=key,
                list_name=list_name,
                secret=secret,
                unsubscribe=setup.settings.unsubscribe,
            )
        )
        if len(batch) == size:
            batches += 1
            total += transport.request_bytes(batch, batch_key=f"{key}:{batches}")
            batch = []
    if batch:
        batches += 1
        total += transport.request_bytes(batch, batch_key=f"{key}:{batches}")
    return DryRunReport(count, batches, total)
