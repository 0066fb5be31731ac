"""The sender against local provider servers that misbehave: 429 storms, 5xx, drops, stalls.

Every recipient must end sent, failed (with a reason) or uncertain, and nobody may receive
a second copy. Waits are recorded through an injected sleep, never slept.
"""

from __future__ import annotations

import random
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from digestcli import journal
from digestcli.config import Unsubscribe
from digestcli.journal import Campaign, Counts
from digestcli.ratelimit import RateLimiter
from digestcli.retry import RetryPolicy
from digestcli.sending import Sender
from fakes import FakeClock, content, store
from harness.providers import (
    FakeProvider,
    MailgunFake,
    PostmarkFake,
    Reply,
    ResendFake,
    SendGridFake,
    json_reply,
    openapi,
)

RECIPIENTS = 23
BATCH = 5
FAKES: dict[str, type[FakeProvider]] = {
    "postmark": PostmarkFake,
    "sendgrid": SendGridFake,
    "mailgun": MailgunFake,
    "resend": ResendFake,
}


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    connection = store(tmp_path / "digest.db", RECIPIENTS)
    yield connection
    connection.close()


def start(db: sqlite3.Connection, provider: str) -> Campaign:
    return journal.create_campaign(
        db,
        key="issue.md:default",
        draft="issue.md",
        content_hash="h",
        list_name="default",
        transport=provider,
    )


def run(
    db: sqlite3.Connection,
    fake: FakeProvider,
    campaign: Campaign,
    sleeps: list[float],
    timeout: float = 5.0,
) -> Counts:
    if fake.validating:
        openapi(fake.provider)  # load the spec now, not inside the first request's timeout
    clock = FakeClock()
    settings: dict[str, Any] = {"batch_size": BATCH, "timeout": timeout}
    if fake.provider == "mailgun":
        settings["domain"] = "mg.example.org"
    sender = Sender(
        db,
        campaign,
        content(),
        fake.factory(**settings),
        secret=b"k",
        unsubscribe=Unsubscribe("https://example.org/u"),
        concurrency=2,
        policy=RetryPolicy(attempts=5, base=0.01, cap=0.1),
        limiter=RateLimiter(clock=clock, sleep=clock.sleep),
        sleep=sleeps.append,
        rng=random.Random(3),
    )
    return sender.run()


def received(fake: FakeProvider) -> Counter[str]:
    return Counter(str(mail["to"]) for mail in fake.received())


def assert_accounted(db: sqlite3.Connection, fake: FakeProvider, counts: Counts) -> None:
    """Everyone is sent, failed with a reason or uncertain; nobody got two copies."""
    assert counts.total == RECIPIENTS and counts.pending == 0 and counts.in_flight == 0
    copies = received(fake)
    assert all(n == 1 for n in copies.values()), copies
    uncertain = set(journal.uncertain(db, 1))
    sent = {str(row[0]) for row in db.execute("SELECT email FROM deliveries WHERE state = 'sent'")}
    assert sent <= set(copies), "a row marked sent that the provider never got"
    assert set(copies) <= sent | uncertain, "a delivered recipient the journal calls failed"
    assert all(reason for _, reason in journal.failures(db, 1))
    assert not fake.violations


def rate_limited(provider: str) -> Reply:
    if provider == "sendgrid":
        return json_reply(
            429,
            {"errors": [{"message": "too many requests", "field": None, "help": None}]},
            {"X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1"},
        )
    if provider == "mailgun":
        return json_reply(429, {"message": "Too many requests, try again after 3 seconds"})
    if provider == "resend":
        return json_reply(
            429,
            {"statusCode": 429, "name": "rate_limit_exceeded", "message": "Too many requests"},
            {
                "retry-after": "2",
                "ratelimit-limit": "2",
                "ratelimit-remaining": "0",
                "ratelimit-reset": "2",
            },
        )
    return json_reply(429, {"ErrorCode": 429, "Message": "Rate limit exceeded"})


@pytest.mark.parametrize("provider", sorted(FAKES))
def test_a_429_storm_and_5xx_bursts_end_with_everyone_sent_once(
    db: sqlite3.Connection, provider: str
) -> None:
    with FAKES[provider]() as fake:
        fake.script(
            rate_limited(provider),
            rate_limited(provider),
            rate_limited(provider),
            json_reply(500, {"message": "oops"}),
            json_reply(503, {"message": "busy"}),
        )
        sleeps: list[float] = []
        counts = run(db, fake, start(db, provider), sleeps)
        assert counts.sent == RECIPIENTS
        assert_accounted(db, fake, counts)
        assert len(sleeps) >= 5
        if provider in ("mailgun", "resend"):
            assert max(sleeps) >= 2.0  # the provider's own wait was honoured


@pytest.mark.parametrize("provider", sorted(FAKES))
def test_a_lasting_outage_fails_with_a_reason(db: sqlite3.Connection, provider: str) -> None:
    with FAKES[provider]() as fake:
        fake.script(*[json_reply(503, {"message": "down for maintenance"})] * 200)
        counts = run(db, fake, start(db, provider), [])
        assert counts.failed == RECIPIENTS and counts.sent == 0
        assert_accounted(db, fake, counts)
        reasons = {reason for _, reason in journal.failures(db, 1)}
        assert all("503" in reason and "gave up after 5 attempts" in reason for reason in reasons)


@pytest.mark.parametrize("provider", sorted(FAKES))
@pytest.mark.parametrize("processed", [False, True], ids=["lost-before", "accepted"])
@pytest.mark.parametrize("action", ["drop", "stall"])
def test_dropped_and_stalled_answers_never_send_twice(
    db: sqlite3.Connection, provider: str, processed: bool, action: str
) -> None:
    with FAKES[provider]() as fake:
        fake.script(Reply(action=action, process=processed))  # type: ignore[arg-type]
        counts = run(db, fake, start(db, provider), [], timeout=0.5)
        fake.release.set()
        assert_accounted(db, fake, counts)
        if provider == "resend":
            # Idempotent: the same key is sent again and the provider answers once.
            assert counts.sent == RECIPIENTS and counts.uncertain == 0
            assert len(received(fake)) == RECIPIENTS
        else:
            assert counts.uncertain == BATCH and counts.sent == RECIPIENTS - BATCH


def test_one_inactive_recipient_does_not_block_its_batch(db: sqlite3.Connection) -> None:
    with PostmarkFake() as fake:
        fake.inactive("user2@example.org")
        counts = run(db, fake, start(db, "postmark"), [])
        assert counts.sent == RECIPIENTS - 1 and counts.failed == 1
        assert_accounted(db, fake, counts)
        state = db.execute("SELECT state FROM subscribers WHERE email = 'user2@example.org'")
        assert state.fetchone()[0] == "bounced"


@pytest.mark.parametrize("provider", sorted(FAKES))
def test_an_internationalised_address_is_sent_like_any_other(
    db: sqlite3.Connection, provider: str
) -> None:
    db.execute(
        "UPDATE subscribers SET email = 'zoë@example.org', name = 'Zoë \"Z\" Ünal' WHERE id = 1"
    )
    with FAKES[provider]() as fake:
        counts = run(db, fake, start(db, provider), [])
        assert counts.sent == RECIPIENTS
        assert received(fake)["zoë@example.org"] == 1
        assert not fake.violations
