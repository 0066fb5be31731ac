"""Uncertain sends settled by the provider's own record: found → sent, long gone → pending."""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from digestcli import journal
from digestcli.config import Unsubscribe
from digestcli.journal import Campaign, Counts
from digestcli.ratelimit import RateLimiter
from digestcli.reconcile import reconcile
from digestcli.retry import RetryPolicy
from digestcli.sending import Sender
from fakes import FakeClock, content, store
from harness.providers import FakeProvider, MailgunFake, PostmarkFake, Reply, SendGridFake

READERS = 10
BATCH = 5
SEARCHABLE = {"postmark": PostmarkFake, "mailgun": MailgunFake}


def send(db: sqlite3.Connection, fake: FakeProvider, campaign: Campaign) -> Counts:
    clock = FakeClock()
    sender = Sender(
        db,
        campaign,
        content(),
        fake.factory(batch_size=BATCH, timeout=5),
        secret=b"k",
        unsubscribe=Unsubscribe("https://example.org/u"),
        concurrency=1,
        policy=RetryPolicy(attempts=3, base=0.01, cap=0.05),
        limiter=RateLimiter(clock=clock, sleep=clock.sleep),
        sleep=lambda _: None,
        rng=random.Random(1),
    )
    return sender.run()


def start(tmp_path: Path, provider: str) -> tuple[sqlite3.Connection, Campaign]:
    db = store(tmp_path / "digest.db", READERS)
    campaign = journal.create_campaign(
        db,
        key="issue.md:default",
        draft="issue.md",
        content_hash="h",
        list_name="default",
        transport=provider,
    )
    return db, campaign


def later(hours: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours)


@pytest.mark.parametrize("provider", sorted(SEARCHABLE))
def test_an_accepted_batch_whose_answer_was_lost_is_found_and_marked_sent(
    tmp_path: Path, provider: str
) -> None:
    with SEARCHABLE[provider]() as fake:
        db, campaign = start(tmp_path, provider)
        fake.script(Reply(action="drop", process=True))  # accepted, then the answer is lost
        counts = send(db, fake, campaign)
        assert (counts.sent, counts.uncertain) == (READERS - BATCH, BATCH)
        with fake.transport() as transport:
            result = reconcile(db, transport)
        assert (result.sent, result.pending, result.uncertain, result.error) == (BATCH, 0, 0, None)
        after = journal.counts(db, campaign.id)
        assert (after.sent, after.uncertain) == (READERS, 0)
        # Every row now carries the provider's own id; nobody got a second copy.
        ids = db.execute("SELECT provider_id FROM deliveries WHERE provider_id IS NULL").fetchall()
        assert ids == []
        assert set(Counter(str(m["to"]) for m in fake.received()).values()) == {1}
        assert not fake.violations


@pytest.mark.parametrize("provider", sorted(SEARCHABLE))
def test_a_batch_the_provider_never_saw_goes_back_to_pending_after_an_hour(
    tmp_path: Path, provider: str
) -> None:
    with SEARCHABLE[provider]() as fake:
        db, campaign = start(tmp_path, provider)
        fake.script(Reply(action="drop"))  # dropped before the provider processed it
        send(db, fake, campaign)
        with fake.transport() as transport:
            soon = reconcile(db, transport)
            assert (soon.sent, soon.pending, soon.uncertain) == (0, 0, BATCH)  # too early to say
            late = reconcile(db, transport, now=later(2))
        assert (late.sent, late.pending, late.uncertain) == (0, BATCH, 0)
        assert journal.find_campaign(db, campaign.key).finished_at is None  # type: ignore[union-attr]
        counts = send(db, fake, campaign)  # what `digest send --resume` does
        assert (counts.sent, counts.pending, counts.uncertain) == (READERS, 0, 0)
        assert set(Counter(str(m["to"]) for m in fake.received()).values()) == {1}


def test_without_sendgrids_email_activity_rows_stay_uncertain_and_it_says_why(
    tmp_path: Path,
) -> None:
    with SendGridFake() as fake:
        db, campaign = start(tmp_path, "sendgrid")
        fake.script(Reply(action="drop", process=True))
        send(db, fake, campaign)
        with fake.transport() as transport:
            result = reconcile(db, transport, now=later(2))
        assert (result.sent, result.pending, result.uncertain) == (0, 0, BATCH)
        assert result.error is not None and "email activity" in result.error
        assert journal.counts(db, campaign.id).uncertain == BATCH


def test_after_reconciling_a_retry_of_uncertain_rows_has_nothing_to_do(tmp_path: Path) -> None:
    with PostmarkFake() as fake:
        db, campaign = start(tmp_path, "postmark")
        fake.script(Reply(action="drop", process=True))
        send(db, fake, campaign)
        assert journal.counts(db, campaign.id).uncertain == BATCH
        with fake.transport() as transport:
            reconcile(db, transport)
        counts = journal.counts(db, campaign.id)
        # What `digest send --retry-uncertain` would re-send: nobody.
        assert (counts.uncertain, counts.sent) == (0, READERS)
        assert journal.uncertain(db, campaign.id) == []
        assert set(Counter(str(m["to"]) for m in fake.received()).values()) == {1}
