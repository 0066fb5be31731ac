"""`digest send --dry-run`: the whole pipeline up to the wire, counted, with nothing sent."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass

from digestcli import journal
from digestcli.campaigns import Plan
from digestcli.db import opened
from digestcli.models import BatchKey, Message, Recipient
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


def measure(plan: Plan, limit: int | None = None) -> DryRunReport:
    """Build every message and every batch payload the plan would send, and count them."""
    setup = plan.setup
    transports = setup.transports()
    transport = transports()
    size = transports.batch_size
    key = journal.campaign_key(setup.draft.name, plan.list_name)
    nonce = plan.campaign.nonce if plan.campaign else ""
    # The references a send's tokens carry; a campaign yet to start gets a nonce of the
    # same length, and one started before references keeps address tokens.
    refs = nonce if plan.campaign else "0" * 16
    secret = load_secret(setup.workspace.state_dir, setup.env)
    count = batches = total = 0
    batch: list[Message] = []

    def size_of(messages: list[Message], number: int) -> int:
        return transport.request_bytes(messages, batch_key=BatchKey(key, str(number), nonce))

    with opened(setup.workspace.db_path) as db:
        for recipient in _recipients(db, plan):
            if limit is not None and count >= limit:
                break
            count += 1
            batch.append(
                campaign_message(
                    setup.content,
                    recipient,
                    campaign_key=key,
                    list_name=plan.list_name,
                    secret=secret,
                    unsubscribe=setup.settings.unsubscribe,
                    reference=f"{refs}:{count}" if refs else "",
                )
            )
            if len(batch) == size:
                batches += 1
                total += transport.request_bytes(
                    batch, batch_key=BatchKey(key, str(batches), nonce)
                )
                batch = []
    if batch:
        batches += 1
        total += size_of(batch, batches)
    return DryRunReport(count, batches, total)


def _recipients(db: sqlite3.Connection, plan: Plan) -> Iterator[Recipient]:
    if plan.campaign is None:
        return active_recipients(db, plan.list_name)
    return journal.unsent_recipients(db, plan.campaign.id, plan.retry_state)
