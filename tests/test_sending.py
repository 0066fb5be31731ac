"""The sending engine against an in-memory transport: retries, failures, recovery, limits."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest

from digestcli import journal
from digestcli.config import Unsubscribe
from digestcli.errors import (
    AmbiguousFailure,
    ConfigError,
    Interrupted,
    PermanentFailure,
    RecipientsRejected,
    TemporaryFailure,
)
from digestcli.journal import Campaign
from digestcli.models import BatchKey, Issue, Message, Result
from digestcli.ratelimit import RateLimiter
from digestcli.retry import RetryPolicy
from digestcli.sending import Sender
from fakes import FakeClock, Mailbox, Script, content, memory, store

BAD = {"user4@example.org", "user17@example.org"}
UNSUB = Unsubscribe("https://example.org/u")
ISSUE = Issue(title="Weekly", subject="Weekly")


def campaign(db: sqlite3.Connection, key: str = "issue.md:default") -> Campaign:
    return journal.create_campaign(
        db, key=key, draft="issue.md", content_hash="h", list_name="default", transport="memory"
    )


def sender(
    db: sqlite3.Connection,
    camp: Campaign,
    box: Mailbox,
    script: Script | None = None,
    *,
    idempotent: bool = False,
    batch: int = 10,
    sleeps: list[float] | None = None,
    attempts: int = 4,
) -> Sender:
    waits = sleeps if sleeps is not None else []
    clock = FakeClock()
    return Sender(
        db,
        camp,
        content(),
        memory(box, script, batch, idempotent=idempotent),
        secret=b"k",
        unsubscribe=UNSUB,
        concurrency=3,
        policy=RetryPolicy(attempts=attempts, base=0.01, cap=0.05),
        limiter=RateLimiter(clock=clock, sleep=clock.sleep),
        sleep=waits.append,
        rng=random.Random(7),
    )


@pytest.fixture
def db(tmp_path: Path) -> sqlite3.Connection:
    return store(tmp_path / "digest.db", 95)


def test_every_recipient_gets_exactly_one_copy(db: sqlite3.Connection) -> None:
    box = Mailbox()
    counts = sender(db, campaign(db), box).run()
    assert counts.sent == 95 and counts.total == 95
    assert set(box.received.values()) == {1} and len(box.received) == 95
    assert journal.find_campaign(db, "issue.md:default").finished_at  # type: ignore[union-attr]


def test_messages_are_identical_on_every_attempt(db: sqlite3.Connection) -> None:
    # Every field a provider sees (subject, values, headers, Message-ID) is the same on a
    # retry and after a restart; only MIME's boundary and Date are made when serialised.
    attempts: list[list[Message]] = []

    def script(n: int, messages: Sequence[Message], key: BatchKey | None) -> list[Result] | None:
        attempts.append(list(messages))
        if n == 1:
            raise TemporaryFailure("503 Service Unavailable")
        return None

    camp = campaign(db)
    sender(db, camp, Mailbox(), script, batch=5).run(limit=5)
    assert len(attempts) == 2 and attempts[0] == attempts[1]  # the retry sent the same
    delivery = journal.claim(db, camp.id, 99, 1)[0]
    message = sender(db, camp, Mailbox()).message_for(delivery)
    assert message == sender(db, camp, Mailbox()).message_for(delivery)  # a new process
    assert message.message_id.endswith("@example.org>")
    assert dict(message.headers)["List-Unsubscribe"].startswith("<https://example.org/u?token=")


def test_429_with_retry_after_is_honoured_then_sent(db: sqlite3.Connection) -> None:
    def script(n: int, messages: Sequence[Message], key: BatchKey | None) -> list[Result] | None:
        if n <= 2:
            raise TemporaryFailure("429 Too Many Requests", retry_after=7.0)
        return None

    box = Mailbox()
    sleeps: list[float] = []
    counts = sender(db, campaign(db), box, script, sleeps=sleeps).run()
    assert counts.sent == 95 and counts.failed == 0
    assert set(box.received.values()) == {1}
    assert len([s for s in sleeps if s >= 7.0]) >= 2


def test_outage_fails_with_a_reason_after_the_last_attempt(db: sqlite3.Connection) -> None:
    def script(n: int, messages: Sequence[Message], key: BatchKey | None) -> list[Result] | None:
        raise TemporaryFailure("503 Service Unavailable")

    counts = sender(db, campaign(db), Mailbox(), script, attempts=3).run()
    assert counts.failed == 95 and counts.sent == 0
    reasons = {reason for _, reason in journal.failures(db, 1)}
    assert reasons == {"503 Service Unavailable (gave up after 3 attempts)"}


def test_ambiguous_request_is_not_retried_by_a_plain_transport(db: sqlite3.Connection) -> None:
    box = Mailbox()

    def script(n: int, messages: Sequence[Message], key: BatchKey | None) -> list[Result] | None:
        if n == 1:
            box.deliver(messages)  # the provider accepted it; the answer never came
            raise AmbiguousFailure("the connection dropped after the request was sent")
        return None

    counts = sender(db, campaign(db), box, script).run()
    assert counts.uncertain == 10 and counts.sent == 85
    assert set(box.received.values()) == {1}
    assert len(journal.uncertain(db, 1)) == 10


def test_ambiguous_request_is_retried_with_the_same_key_when_idempotent(
    db: sqlite3.Connection,
) -> None:
    box = Mailbox()
    seen: list[BatchKey | None] = []

    def script(n: int, messages: Sequence[Message], key: BatchKey | None) -> list[Result] | None:
        seen.append(key)
        if n == 1:
            box.deliver(messages)
            assert key is not None
            box.answered[key] = [Result(m.to.email, True, "first") for m in messages]
            raise AmbiguousFailure("read timed out")
        return None

    counts = sender(db, campaign(db), box, script, idempotent=True).run()
    assert counts.sent == 95 and counts.uncertain == 0
    assert set(box.received.values()) == {1}
    assert box.keys.count(seen[0]) == 2


def test_one_bad_address_does_not_fail_its_batch_mates(db: sqlite3.Connection) -> None:
    box = Mailbox()

    def script(n: int, messages: Sequence[Message], key: BatchKey | None) -> list[Result] | None:
        results = []
        for m in messages:
            if m.to.email == "user3@example.org":
                results.append(
                    Result(m.to.email, False, error="406 inactive", permanent=True, inactive=True)
                )
            else:
                box.deliver([m])
                results.append(Result(m.to.email, True, "ok"))
        return results

    counts = sender(db, campaign(db), box, script).run()
    assert counts.sent == 94 and counts.failed == 1
    assert journal.failures(db, 1) == [("user3@example.org", "406 inactive")]
    state = db.execute("SELECT state FROM subscribers WHERE email = 'user3@example.org'")
    assert state.fetchone()[0] == "bounced"


def test_a_recipient_refused_for_now_is_retried_alone(db: sqlite3.Connection) -> None:
    box = Mailbox()
    tries: list[int] = []

    def script(n: int, messages: Sequence[Message], key: BatchKey | None) -> list[Result] | None:
        results = []
        for m in messages:
            if m.to.email == "user5@example.org" and not tries:
                tries.append(n)
                results.append(Result(m.to.email, False, error="451 try later"))
            else:
                box.deliver([m])
                results.append(Result(m.to.email, True, "ok"))
        return results

    counts = sender(db, campaign(db), box, script).run()
    assert counts.sent == 95
    assert set(box.received.values()) == {1}


def test_permanent_batch_refusal_fails_the_batch_with_the_reason(db: sqlite3.Connection) -> None:
    def script(n: int, messages: Sequence[Message], key: BatchKey | None) -> list[Result] | None:
        if key is not None and key.batch == "1":
            raise PermanentFailure("422 Invalid 'From' address")
        return None

    counts = sender(db, campaign(db), Mailbox(), script).run()
    assert counts.failed == 10 and counts.sent == 85
    failures = journal.failures(db, 1)
    assert [email for email, _ in failures] == [f"user{i}@example.org" for i in range(10)]
    assert {reason for _, reason in failures} == {"422 Invalid 'From' address"}


def test_bad_credentials_stop_the_run_and_lose_nobody(db: sqlite3.Connection) -> None:
    def script(n: int, messages: Sequence[Message], key: BatchKey | None) -> list[Result] | None:
        raise ConfigError("the provider refused the API key; check DIGEST_X")

    with pytest.raises(ConfigError):
        sender(db, campaign(db), Mailbox(), script).run()
    counts = journal.counts(db, 1)
    assert counts.pending == 95 and counts.in_flight == 0


def test_rows_left_in_flight_become_uncertain_for_a_plain_transport(
    db: sqlite3.Connection,
) -> None:
    camp = campaign(db)
    journal.claim(db, camp.id, 1, 10)  # a process died here
    box = Mailbox()
    run = sender(db, camp, box)
    assert run.recover() == 10
    counts = run.run()
    assert counts.uncertain == 10 and counts.sent == 85
    assert "user0@example.org" not in box.received


def test_rows_left_in_flight_are_resent_under_their_key_when_idempotent(
    db: sqlite3.Connection,
) -> None:
    camp = campaign(db)
    rows = journal.claim(db, camp.id, 1, 10)
    box = Mailbox()
    first = sender(db, camp, box, idempotent=True)
    # The dead process's request had reached the provider.
    key = BatchKey(camp.key, "1", camp.nonce)
    messages = [first.message_for(d) for d in rows]
    box.deliver(messages)
    box.answered[key] = [Result(m.to.email, True, "first") for m in messages]
    assert first.recover() == 0
    counts = first.run()
    assert counts.sent == 95 and counts.uncertain == 0
    assert set(box.received.values()) == {1}
    assert key in box.keys


def test_limit_sends_a_canary_and_resume_sends_the_rest(db: sqlite3.Connection) -> None:
    camp = campaign(db)
    box = Mailbox()
    counts = sender(db, camp, box).run(limit=12)
    assert counts.sent == 12 and counts.pending == 83
    assert journal.find_campaign(db, camp.key).finished_at is None  # type: ignore[union-attr]
    counts = sender(db, camp, box).run()
    assert counts.sent == 95 and set(box.received.values()) == {1}


def test_retry_failed_is_an_explicit_requeue(db: sqlite3.Connection) -> None:
    camp = campaign(db)

    def down(n: int, messages: Sequence[Message], key: BatchKey | None) -> list[Result] | None:
        raise TemporaryFailure("500")

    sender(db, camp, Mailbox(), down, attempts=1).run()
    assert journal.counts(db, camp.id).failed == 95
    assert journal.requeue(db, camp.id, "failed") == 95
    box = Mailbox()
    counts = sender(db, camp, box).run()
    assert counts.sent == 95 and set(box.received.values()) == {1}


def test_rate_limiter_spaces_requests() -> None:
    clock = [0.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock[0] += seconds

    limiter = RateLimiter(
        messages_per_second=100, requests_per_second=2, clock=lambda: clock[0], sleep=sleep
    )
    for _ in range(5):
        limiter.acquire(10)
    # 2 requests/s dominates 10 messages at 100/s: one request every 0.5 s.
    assert clock[0] == pytest.approx(2.0)
    limiter.pause(3.0)
    limiter.acquire(1)
    assert clock[0] == pytest.approx(5.0)


def test_a_drop_mid_batch_makes_only_the_unanswered_uncertain(db: sqlite3.Connection) -> None:
    box = Mailbox()

    def script(n: int, messages: Sequence[Message], key: BatchKey | None) -> list[Result] | None:
        if key is None or key.batch != "1":  # batch 1 (user0-9), whichever thread sends it
            return None
        # SMTP-like: two answered, the third's data went out unanswered, the rest never sent.
        box.deliver(messages[:3])
        answers: list[Result | None] = [Result(m.to.email, True, "ok") for m in messages[:2]]
        answers.append(None)
        answers += [
            Result(m.to.email, False, error="not sent: connection lost") for m in messages[3:]
        ]
        raise AmbiguousFailure("connection lost after DATA", results=answers)

    counts = sender(db, campaign(db), box, script).run()
    assert counts.uncertain == 1 and counts.sent == 94
    assert journal.uncertain(db, 1) == ["user2@example.org"]
    assert set(box.received.values()) == {1}


def test_resend_keeps_its_documented_request_rate_unless_configured(tmp_path: Path) -> None:
    from dataclasses import replace

    from digestcli.campaigns import SendSetup
    from digestcli.config import SendingSettings
    from digestcli.transports.resend import ResendTransport
    from digestcli.workspace import Workspace
    from fakes import settings

    base = settings(tmp_path)
    resend = replace(base.transport, kind="resend")
    setup = SendSetup(Workspace(tmp_path), base, tmp_path / "d.md", ISSUE, content(), resend, {})
    assert ResendTransport.capabilities.requests_per_second == 2.0
    assert setup.transports().requests_per_second == 2.0
    faster = replace(base, sending=SendingSettings(requests_per_second=50))
    setup = SendSetup(Workspace(tmp_path), faster, tmp_path / "d.md", ISSUE, content(), resend, {})
    assert setup.transports().requests_per_second == 50


def test_a_long_429_storm_does_not_use_up_the_tries(db: sqlite3.Connection) -> None:
    def script(n: int, messages: Sequence[Message], key: BatchKey | None) -> list[Result] | None:
        if n <= 12:  # three times the tries allowed for errors
            raise TemporaryFailure("429 Too Many Requests", retry_after=1.0, throttled=True)
        return None

    box = Mailbox()
    counts = sender(db, campaign(db), box, script, attempts=4).run()
    assert counts.sent == 95 and counts.failed == 0
    assert set(box.received.values()) == {1}


def test_throttling_beyond_its_budget_fails_with_a_reason(db: sqlite3.Connection) -> None:
    def script(n: int, messages: Sequence[Message], key: BatchKey | None) -> list[Result] | None:
        raise TemporaryFailure("429 Too Many Requests", retry_after=400.0, throttled=True)

    counts = sender(db, campaign(db), Mailbox(), script, attempts=2).run()
    assert counts.failed == 95
    assert all("gave up" in reason for _, reason in journal.failures(db, 1))


def test_ctrl_c_during_a_429_storm_requeues_instead_of_waiting_it_out(
    db: sqlite3.Connection,
) -> None:
    camp = campaign(db)
    holder: list[Sender] = []

    def script(n: int, messages: Sequence[Message], key: BatchKey | None) -> list[Result] | None:
        holder[0].stop.set()  # Ctrl-C arrives while the provider throttles
        raise TemporaryFailure("429 Too Many Requests", retry_after=30.0, throttled=True)

    run = sender(db, camp, Mailbox(), script)
    holder.append(run)
    with pytest.raises(Interrupted):
        run.run()
    counts = journal.counts(db, camp.id)
    assert counts.pending == 95 and counts.in_flight == 0 and counts.failed == 0


def test_batches_in_flight_are_not_resent_under_their_keys_with_changed_content(
    db: sqlite3.Connection, tmp_path: Path
) -> None:
    from dataclasses import replace

    from digestcli.campaigns import SendSetup, check_resumable
    from digestcli.errors import UsageError
    from digestcli.workspace import Workspace
    from fakes import settings

    base = settings(tmp_path)
    setup = SendSetup(
        Workspace(tmp_path), base, tmp_path / "d.md", ISSUE, content(), base.transport, {}
    )
    camp = replace(campaign(db), transport="outbox")  # its content hash ("h") differs
    assert "draft changed" in str(check_resumable(camp, setup, True, 0))
    assert "draft changed" in str(check_resumable(camp, setup, False, 5))
    with pytest.raises(UsageError, match="idempotency keys"):
        check_resumable(camp, setup, True, 5)


def test_the_limiter_learns_a_pace_from_429s_and_creeps_back_up() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)
    for _ in range(40):  # 40 accepted requests over 2 s: the provider takes 20/s
        limiter.acquire(1)
        limiter.accepted()
        clock.sleep(0.05)
    limiter.throttled()
    assert limiter.rps == pytest.approx(18.0)
    limiter.throttled()  # the same burst of 429s: no second cut
    assert limiter.rps == pytest.approx(18.0)
    start = clock()
    for _ in range(18):
        limiter.acquire(1)
    assert clock() - start == pytest.approx(17 / 18, rel=0.05)  # paced at ~18/s
    clock.sleep(10)
    limiter.acquire(1)
    assert limiter.rps > 19.5  # 1 % a second upwards


def test_a_configured_request_rate_is_never_learned_over() -> None:
    clock = FakeClock()
    limiter = RateLimiter(requests_per_second=5, clock=clock, sleep=clock.sleep)
    limiter.accepted()
    limiter.throttled()
    clock.sleep(100)
    limiter.acquire(1)
    assert limiter.rps == 5


def test_a_refusal_naming_recipients_fails_them_and_sends_the_rest_once(
    db: sqlite3.Connection,
) -> None:
    box = Mailbox()

    def script(n: int, messages: Sequence[Message], key: BatchKey | None) -> list[Result] | None:
        named = {i: f"bad {m.to.email}" for i, m in enumerate(messages) if m.to.email in BAD}
        if named:
            raise RecipientsRejected("HTTP 400: some addresses are invalid", named)
        return None

    counts = sender(db, campaign(db), box, script).run()
    assert counts.sent == 93 and counts.failed == 2
    assert sorted(journal.failures(db, 1)) == [(e, f"bad {e}") for e in sorted(BAD)]
    assert set(box.received.values()) == {1} and not BAD & set(box.received)


def test_a_refusal_naming_nobody_halves_the_batch_until_the_bad_one_stands_alone(
    db: sqlite3.Connection,
) -> None:
    box = Mailbox()
    keys: list[BatchKey | None] = []

    def script(n: int, messages: Sequence[Message], key: BatchKey | None) -> list[Result] | None:
        keys.append(key)
        if any(m.to.email == "user3@example.org" for m in messages):
            raise RecipientsRejected("HTTP 400: to parameter is not a valid address")
        return None

    counts = sender(db, campaign(db), box, script).run()
    assert counts.sent == 94 and counts.failed == 1
    assert journal.failures(db, 1) == [
        ("user3@example.org", "HTTP 400: to parameter is not a valid address")
    ]
    assert set(box.received.values()) == {1}
    # Batch 1 is user0-9; each refused part is halved, the part with user3 first.
    first = [k.batch for k in keys if k is not None and k.batch.split(".")[0] == "1"]
    assert first == [
        "1",
        "1.a",
        "1.a.a",
        "1.a.b",
        "1.a.b.a",
        "1.a.b.b",
        "1.a.b.b.a",
        "1.a.b.b.b",
        "1.b",
    ]
    assert len(keys) == len(first) + 9  # the nine other batches went out whole
