"""SMTP with PIPELINING (RFC 2920): the same answers per recipient, in half the round trips."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from digestcli.config import Unsubscribe
from digestcli.errors import AmbiguousFailure, TemporaryFailure
from digestcli.message import build_message
from digestcli.models import BatchKey, Content, MergeText, Message, Recipient
from digestcli.transports.smtp import SMTPTransport, dot_stuffed
from harness.smtp import Recorder, smtp_server, smtp_settings

CONTENT = Content(
    subject="Weekly",
    from_addr="Digest <digest@example.org>",
    html=MergeText(("<p>Hi ", "name", "</p>\n.\n")),
    text=MergeText(("Hi ", "name", "\n.\n..two dots\n")),
)
ALICE, BOB, CAROL = "alice@example.org", "bob@example.net", "carol@example.com"


@dataclass
class PipeliningRecorder(Recorder):
    """A Recorder whose server offers PIPELINING, noting what was already buffered at RCPT."""

    buffered_at_rcpt: list[bytes] = field(default_factory=list)

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: Any
    ) -> list[str]:
        """Offer PIPELINING with the usual extensions."""
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        """Note the bytes the client sent past this RCPT (DATA, when it pipelines)."""
        self.buffered_at_rcpt.append(bytes(server._reader._buffer))  # type: ignore[attr-defined]
        return await super().handle_RCPT(server, session, envelope, address, options)


def _messages(*emails: str) -> list[Message]:
    unsubscribe = Unsubscribe(url="https://example.org/unsubscribe")
    return [
        build_message(
            CONTENT, Recipient(e, e.split("@")[0].title()), token="t", unsubscribe=unsubscribe
        )
        for e in emails
    ]


def _transport(port: int, **settings: Any) -> SMTPTransport:
    return SMTPTransport(smtp_settings(port, **settings), {})


def test_commands_of_a_message_go_out_together_and_every_message_arrives() -> None:
    recorder = PipeliningRecorder()
    messages = _messages(ALICE, BOB, CAROL)
    with smtp_server(recorder) as server:
        results = _transport(server.port).send_batch(messages, batch_key=BatchKey("c", "1"))

    assert [(r.email, r.ok, r.provider_id) for r in results] == [
        (m.to.email, True, m.message_id) for m in messages
    ]
    assert [d.rcpt_tos for d in recorder.deliveries] == [(ALICE,), (BOB,), (CAROL,)]
    # When the server read each RCPT, the DATA after it was already there: one write.
    assert all(b.lower().startswith(b"data\r\n") for b in recorder.buffered_at_rcpt)
    assert recorder.commands[:3] == ["MAIL digest@example.org", f"RCPT {ALICE}", f"DATA {ALICE}"]
    # The bytes are the message's own, dots and all.
    received = recorder.deliveries[0].data.replace(b"\r\n", b"\n")
    assert b"\n.\n" in received and b"\n..two dots\n" in received


def test_a_5xx_on_rcpt_fails_that_recipient_only() -> None:
    reply = "550 5.1.1 <bob@example.net>: Recipient address rejected: User unknown"
    recorder = PipeliningRecorder(rcpt_replies={BOB: reply})
    with smtp_server(recorder) as server:
        alice, bob, carol = _transport(server.port).send_batch(_messages(ALICE, BOB, CAROL))
    assert alice.ok and carol.ok
    assert (bob.ok, bob.permanent, bob.inactive) == (False, True, True)
    assert bob.error == f"RCPT TO refused: {reply}"
    assert [d.rcpt_tos for d in recorder.deliveries] == [(ALICE,), (CAROL,)]


def test_a_reply_to_the_data_fails_that_message_only() -> None:
    recorder = PipeliningRecorder(data_replies={ALICE: "452 4.3.1 Insufficient storage"})
    with smtp_server(recorder) as server:
        alice, bob = _transport(server.port).send_batch(_messages(ALICE, BOB))
    assert (alice.ok, alice.permanent) == (False, False)
    assert alice.error == "DATA refused: 452 4.3.1 Insufficient storage"
    assert bob.ok


def test_421_before_anything_was_sent_makes_the_batch_retryable() -> None:
    recorder = PipeliningRecorder(rcpt_replies={ALICE: "421 4.7.0 Too many connections"})
    with smtp_server(recorder) as server, pytest.raises(TemporaryFailure, match="Too many"):
        _transport(server.port).send_batch(_messages(ALICE, BOB))
    assert recorder.deliveries == []


def test_a_rejection_followed_by_a_hang_up_keeps_the_rejection() -> None:
    reply = "550 5.1.1 No such user"
    recorder = PipeliningRecorder(rcpt_replies={BOB: reply}, hang_up_after_rcpt={BOB})
    with smtp_server(recorder) as server:
        alice, bob, carol = _transport(server.port).send_batch(_messages(ALICE, BOB, CAROL))
    assert alice.ok
    assert (bob.error, bob.permanent) == (f"RCPT TO refused: {reply}", True)
    assert (carol.ok, carol.permanent) == (False, False)
    assert carol.error is not None and carol.error.startswith("not sent: connection lost")


def test_a_drop_after_the_data_is_ambiguous_for_that_message_only() -> None:
    recorder = PipeliningRecorder(drop_after_data={BOB})
    with smtp_server(recorder) as server, pytest.raises(AmbiguousFailure) as caught:
        _transport(server.port).send_batch(_messages(ALICE, BOB, CAROL))
    alice, bob, carol = caught.value.results
    assert alice is not None and alice.ok
    assert bob is None
    assert carol is not None and (carol.ok, carol.permanent) == (False, False)
    assert carol.error is not None and carol.error.startswith("not sent: ")


def test_no_reply_to_the_data_within_the_timeout_is_ambiguous() -> None:
    recorder = PipeliningRecorder(hang_after_data={ALICE})
    with smtp_server(recorder) as server, pytest.raises(AmbiguousFailure) as caught:
        _transport(server.port, timeout=0.3).send_batch(_messages(ALICE, BOB))
    assert caught.value.results[0] is None


@pytest.mark.parametrize(
    ("payload", "stuffed"),
    [
        (b"a\r\n.b\r\n", b"a\r\n..b\r\n"),
        (b".a\r\n", b"..a\r\n"),
        (b"a.\r\n..\r\n", b"a.\r\n...\r\n"),
        (b"", b""),
    ],
)
def test_dot_stuffing_doubles_every_leading_dot(payload: bytes, stuffed: bytes) -> None:
    assert dot_stuffed(payload) == stuffed
