"""Batch sending: batches, concurrency, recovery and resume, keeping the journal true."""

from __future__ import annotations

import random
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

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
from digestcli.journal import Campaign, Delivery
from digestcli.message import (
    build_message,
    check_header,
    make_message_id,
    recipient_values,
    sender_domain,
    unsubscribe_headers,
    unsubscribe_url,
)
from digestcli.models import BatchKey, Content, Message, Recipient, Result
from digestcli.ratelimit import RateLimiter
from digestcli.retry import RetryPolicy, Tries
from digestcli.tokens import sign, sign_reference
from digestcli.transports import Factory
from digestcli.transports.base import Transport


@dataclass
class Outcome:
    """What became of one batch: each row's final state for this run."""

    delivered: list[tuple[Delivery, Result]] = field(default_factory=list)
    failed: list[tuple[Delivery, str]] = field(default_factory=list)
    uncertain: list[tuple[Delivery, str]] = field(default_factory=list)
    requeue: list[Delivery] = field(default_factory=list)
    keep_in_flight: list[Delivery] = field(default_factory=list)
    abort: BaseException | None = None


@dataclass
class Progress:
    """Running totals for the progress display."""

    total: int
    sent: int = 0
    failed: int = 0
    uncertain: int = 0


def campaign_message(
    content: Content,
    recipient: Recipient,
    *,
    campaign_key: str,
    list_name: str,
    secret: bytes,
    unsubscribe: Unsubscribe,
    reference: str = "",
) -> Message:
    """A list-send message whose every byte is a function of campaign and recipient.

    With a reference (journal.reference), the unsubscribe token names the send, not the
    address; campaigns started before references existed keep address tokens, so a batch
    re-sent under its idempotency key carries the same bytes.
    """
    seed = f"{campaign_key}\n{recipient.email.lower()}"
    if reference:
        token = sign_reference(reference, list_name, secret)
    else:
        token = sign(recipient.email, list_name, secret)
    return build_message(
        content,
        recipient,
        token=token,
        unsubscribe=unsubscribe,
        message_id=make_message_id(sender_domain(content.from_addr), seed),
    )


class CampaignMessages:
    """Builds a campaign's messages, one per row: campaign_message, less its per-reader setup.

    What every reader shares (the domain, the subject's check, the unsubscribe settings) is
    worked out once; each message equals campaign_message's for the same row, except that
    message_ids=False (a provider that sets its own, Mailgun) leaves its Message-ID empty.
    """

    def __init__(
        self,
        content: Content,
        campaign: Campaign,
        *,
        secret: bytes,
        unsubscribe: Unsubscribe,
        message_ids: bool = True,
    ) -> None:
        self.content = content
        self.campaign = campaign
        self.secret = secret
        self.unsubscribe = unsubscribe
        self.domain = sender_domain(content.from_addr) if message_ids else ""
        # A subject with a line break fails each message, as build_message does.
        subject = content.subject
        self.subject_ok = "\r" not in subject and "\n" not in subject

    def __call__(self, delivery: Delivery) -> Message:
        """The row's message, identical on every attempt and after a restart."""
        recipient = delivery.recipient
        content, campaign, unsubscribe = self.content, self.campaign, self.unsubscribe
        if not self.subject_ok:
            check_header("Subject", content.subject)
        check_header("To", recipient.email)
        check_header("To", recipient.name)
        url = None
        headers: tuple[tuple[str, str], ...] = ()
        if not unsubscribe.by_provider:  # else the provider's link: no token, no headers
            if campaign.nonce:
                ref = journal.reference(campaign, delivery.seq)
                token = sign_reference(ref, campaign.list, self.secret)
            else:
                token = sign(recipient.email, campaign.list, self.secret)
            url = unsubscribe_url(unsubscribe.url, token)
            headers = unsubscribe_headers(url, token, unsubscribe.mailto)
        message_id = ""
        if self.domain:
            seed = f"{campaign.key}\n{recipient.email.lower()}"
            message_id = make_message_id(self.domain, seed)
        return Message(
            content=content,
            to=recipient,
            subject=content.subject,
            message_id=message_id,
            values=recipient_values(recipient, url),
            headers=headers,
        )


class Sender:
    """Sends a campaign's pending rows through a transport, keeping the journal true."""

    def __init__(
        self,
        db: sqlite3.Connection,
        campaign: Campaign,
        content: Content,
        transports: Factory,
        *,
        secret: bytes,
        unsubscribe: Unsubscribe,
        concurrency: int = 4,
        limiter: RateLimiter | None = None,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], object] | None = None,
        rng: random.Random | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.db = db
        self.campaign = campaign
        self.content = content
        self.transports = transports
        self.secret = secret
        self.unsubscribe = unsubscribe
        self.concurrency = max(1, concurrency)
        self.limiter = limiter or RateLimiter()
        self.policy = policy or RetryPolicy()
        # Set by the caller (Ctrl-C) or by an abort: no new batch starts, those in flight end.
        self.stop = stop or threading.Event()
        self._sleep = sleep or self.stop.wait
        self.rng = rng or random.Random()
        self.on_progress = on_progress
        self._local = threading.local()
        self._transports: list[Transport] = []
        self._lock = threading.Lock()
        self.batch_size = transports.batch_size
        self.idempotent = transports.capabilities.idempotent
        self._messages = CampaignMessages(
            content,
            campaign,
            secret=secret,
            unsubscribe=unsubscribe,
            message_ids=transports.capabilities.message_ids,
        )

    # ----- workers ---------------------------------------------------------------------------
    def _transport(self) -> Transport:
        transport: Transport | None = getattr(self._local, "transport", None)
        if transport is None:
            transport = self.transports()
            transport.open()
            with self._lock:
                self._transports.append(transport)
            self._local.transport = transport
        return transport

    def message_for(self, delivery: Delivery) -> Message:
        """One recipient's message, identical on every attempt and after a restart."""
        return self._messages(delivery)

    def deliver(self, batch: int, deliveries: Sequence[Delivery]) -> Outcome:
        """Send one batch with retries; never raises, always accounts for every row."""
        outcome = Outcome()
        try:
            self._deliver(batch, list(deliveries), outcome)
        except ConfigError as exc:
            # Credentials or settings: nothing was accepted; stop the whole run.
            done = {d.seq for d, _ in outcome.delivered} | {d.seq for d, _ in outcome.failed}
            outcome.requeue.extend(d for d in deliveries if d.seq not in done)
            outcome.abort = exc
        except Exception as exc:  # a bug or an unexpected library error mid-request
            accounted = {
                d.seq
                for d in (
                    *(d for d, _ in outcome.delivered),
                    *(d for d, _ in outcome.failed),
                    *outcome.requeue,
                )
            }
            reason = f"unexpected {type(exc).__name__} while sending: {exc}"
            outcome.uncertain.extend((d, reason) for d in deliveries if d.seq not in accounted)
        return outcome

    def _deliver(self, batch: int, rows: list[Delivery], outcome: Outcome) -> None:
        transport = self._transport()
        # Parts of the batch still to send, the next one last. A batch refused because of
        # some of its recipients goes on in smaller parts, each under a key of its own.
        parts = [(rows, BatchKey(self.campaign.key, str(batch), self.campaign.nonce))]
        first = True
        while parts:
            rows, start = parts.pop()
            key = start
            tries = Tries(self.policy)
            while rows:
                attempt = tries.next()
                if self.stop.is_set() and not first:
                    outcome.requeue.extend(rows)  # not sent in this attempt: safe to resend
                    break
                first = False
                self.limiter.acquire(len(rows))
                messages = list(map(self._messages, rows))
                try:
                    results = transport.send_batch(messages, batch_key=key)
                except TemporaryFailure as exc:
                    delay = tries.wait_after(exc, self.rng)
                    if delay is None:
                        reason = f"{exc} (gave up after {tries.count} attempts)"
                        outcome.failed.extend((d, reason) for d in rows)
                        break
                    if exc.throttled:
                        self.limiter.throttled()
                    if exc.retry_after is not None:
                        self.limiter.pause(exc.retry_after)
                    self._sleep(delay)
                    continue
                except AmbiguousFailure as exc:
                    known = exc.results if len(exc.results) == len(rows) else ()
                    if not any(known):
                        if self._retry_ambiguous(attempt, rows, exc, outcome):
                            continue
                        break
                    answered = self._answered(rows, known, exc, outcome)
                    rows = self._settle(answered, attempt, outcome)
                except RecipientsRejected as exc:
                    parts.extend(self._without_rejected(rows, start, exc, outcome))
                    break
                except PermanentFailure as exc:
                    outcome.failed.extend((d, str(exc)) for d in rows)
                    break
                else:
                    self.limiter.accepted()
                    rows = self._settle(list(zip(rows, results, strict=True)), attempt, outcome)
                if rows:
                    # Only recipients surely refused for now; a retry has its own key.
                    key = start.part(str(attempt))
                    self._sleep(self.policy.delay(attempt, None, self.rng))

    @staticmethod
    def _without_rejected(
        rows: list[Delivery], key: BatchKey, exc: RecipientsRejected, outcome: Outcome
    ) -> list[tuple[list[Delivery], BatchKey]]:
        """Fail the recipients a refused request names; return the parts to send again.

        Nothing of a refused request was sent, so sending the rest again is safe. When the
        provider names nobody, halves are sent until the refused ones stand alone.
        """
        named = {i: reason for i, reason in exc.rejected.items() if 0 <= i < len(rows)}
        if named:
            outcome.failed.extend((rows[i], reason) for i, reason in sorted(named.items()))
            rest = [d for i, d in enumerate(rows) if i not in named]
            return [(rest, key.part("r"))] if rest else []
        if len(rows) == 1:
            outcome.failed.append((rows[0], str(exc)))
            return []
        half = len(rows) // 2
        # Last out first: the first half goes next.
        return [(rows[half:], key.part("b")), (rows[:half], key.part("a"))]

    def _retry_ambiguous(
        self, attempt: int, rows: list[Delivery], exc: AmbiguousFailure, outcome: Outcome
    ) -> bool:
        """Whether to send a batch in doubt again; if not, record it in doubt."""
        if self.idempotent and attempt < self.policy.attempts and not self.stop.is_set():
            self._sleep(self.policy.delay(attempt, None, self.rng))
            return True  # same key, same payload: the provider will not send twice
        if self.idempotent:
            outcome.keep_in_flight.extend(rows)  # re-sent under its key on resume
        else:
            outcome.uncertain.extend((d, str(exc)) for d in rows)
        return False

    @staticmethod
    def _answered(
        rows: list[Delivery],
        known: Sequence[Result | None],
        exc: AmbiguousFailure,
        outcome: Outcome,
    ) -> list[tuple[Delivery, Result]]:
        """The answered part of a dropped batch (SMTP); only the unanswered are in doubt."""
        pairs: list[tuple[Delivery, Result]] = []
        for delivery, answer in zip(rows, known, strict=True):
            if answer is None:
                outcome.uncertain.append((delivery, str(exc)))
            else:
                pairs.append((delivery, answer))
        return pairs

    def _settle(
        self, pairs: list[tuple[Delivery, Result]], attempt: int, outcome: Outcome
    ) -> list[Delivery]:
        """Record final answers; return the recipients refused only for now, to retry."""
        retry: list[Delivery] = []
        for delivery, result in pairs:
            if result.ok or result.permanent or attempt >= self.policy.attempts:
                outcome.delivered.append((delivery, result))
            else:
                retry.append(delivery)
        return retry

    # ----- the run ---------------------------------------------------------------------------
    def recover(self) -> int:
        """Deal with rows a dead process left in flight; return how many were made uncertain."""
        if self.idempotent:
            return 0  # re-sent first by run(), under their old batch numbers and keys
        return journal.mark_in_flight_uncertain(self.db, self.campaign.id)

    def _apply(self, outcome: Outcome, progress: Progress) -> None:
        cid = self.campaign.id
        if outcome.delivered:
            journal.record(self.db, cid, *zip(*outcome.delivered, strict=True))
        for rows, state in ((outcome.failed, "failed"), (outcome.uncertain, "uncertain")):
            by_reason: dict[str, list[Delivery]] = {}
            for delivery, reason in rows:
                by_reason.setdefault(reason, []).append(delivery)
            for reason, group in by_reason.items():
                journal.set_state(self.db, cid, group, state, reason)
        if outcome.requeue:
            journal.set_state(self.db, cid, outcome.requeue, "pending", None)
        progress.sent += sum(1 for _, r in outcome.delivered if r.ok)
        progress.failed += sum(1 for _, r in outcome.delivered if not r.ok) + len(outcome.failed)
        progress.uncertain += len(outcome.uncertain)
        if self.on_progress:
            self.on_progress(progress)

    def run(self, limit: int | None = None) -> journal.Counts:
        """Send pending rows (at most limit) until done, interrupted or aborted."""
        cid = self.campaign.id
        counts = journal.counts(self.db, cid)
        progress = Progress(total=min(counts.pending, limit) if limit else counts.pending)
        leftovers = journal.in_flight_batches(self.db, cid) if self.idempotent else []
        progress.total += sum(len(rows) for _, rows in leftovers)
        budget = limit if limit is not None else counts.pending
        next_batch = journal.next_batch_number(self.db, cid)
        abort: BaseException | None = None
        pending: set[Future[Outcome]] = set()
        try:
            with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
                while True:
                    while len(pending) < self.concurrency and not self.stop.is_set():
                        if leftovers:
                            batch, rows = leftovers.pop(0)
                        elif budget > 0:
                            batch = next_batch
                            rows = journal.claim(self.db, cid, batch, min(self.batch_size, budget))
                            next_batch += 1
                            budget = budget - len(rows) if rows else 0
                            if not rows:
                                break
                        else:
                            break
                        pending.add(pool.submit(self.deliver, batch, rows))
                    if not pending:
                        break
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        outcome = future.result()
                        self._apply(outcome, progress)
                        if outcome.abort is not None and abort is None:
                            abort = outcome.abort
                            self.stop.set()
        finally:
            for transport in self._transports:
                transport.close()
        journal.finish_if_done(self.db, cid)
        if abort is not None:
            raise abort
        if self.stop.is_set():
            raise Interrupted("interrupted; the batches in flight were finished and saved.")
        return journal.counts(self.db, cid)
