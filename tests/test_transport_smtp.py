"""The SMTP transport against a real aiosmtpd server on 127.0.0.1: TLS, AUTH, replies, drops."""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import traceback
from collections.abc import Iterator
from typing import Any

import pytest
import trustme
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from digestcli.config import TransportSettings, Unsubscribe
from digestcli.errors import (
    AmbiguousFailure,
    ConfigError,
    DigestError,
    PermanentFailure,
    TemporaryFailure,
)
from digestcli.message import build_message
from digestcli.models import BatchKey, Content, MergeText, Message, Recipient
from digestcli.transports import transport_class
from digestcli.transports.smtp import SMTPTransport
from harness.smtp import Recorder, smtp_server, smtp_settings

USER = "digest-sender"
PASSWORD = "correct horse battery staple 7f3a"
CONTENT = Content(
    subject="Weekly ✉",
    from_addr="Digest <digest@example.org>",
    html=MergeText(("<p>Hi ", "name", "</p>\n.\n<p>a line with only a dot above</p>")),
    text=MergeText(("Hi ", "name", "\n.\n..two dots\n")),
)
UNSUBSCRIBE = Unsubscribe(url="https://example.org/unsubscribe")
ALICE, BOB, CAROL = "alice@example.org", "bob@example.net", "carol@example.com"


def _messages(*emails: str) -> list[Message]:
    return [
        build_message(
            CONTENT, Recipient(e, e.split("@")[0].title()), token="t", unsubscribe=UNSUBSCRIBE
        )
        for e in emails
    ]


def _transport(port: int, env: dict[str, str] | None = None, **settings: Any) -> SMTPTransport:
    ssl_context = settings.pop("ssl_context", None)
    return SMTPTransport(smtp_settings(port, **settings), env or {}, ssl_context=ssl_context)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    """A throwaway certificate authority; its certificate names 127.0.0.1."""
    return trustme.CA()


@pytest.fixture(scope="module")
def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    """The server side: a certificate for 127.0.0.1 signed by the test CA."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture(scope="module")
def client_tls(ca: trustme.CA) -> ssl.SSLContext:
    """The client side: default verification, trusting the test CA as well."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@pytest.fixture
def refusing_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound, so nothing else takes it, not listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        yield port


def _authenticator(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data == (USER.encode(), PASSWORD.encode())
    return AuthResult(success=ok, auth_data=auth_data if ok else None, handled=False)


# --- the basics ------------------------------------------------------------------------


def test_registered_as_the_smtp_kind() -> None:
    assert transport_class("smtp") is SMTPTransport


@pytest.mark.parametrize(("configured", "used"), [(None, 50), (200, 200), (5000, 1000), (1, 1)])
def test_batch_size_defaults_to_50_and_is_configurable(configured: int | None, used: int) -> None:
    settings = TransportSettings(kind="smtp", batch_size=configured)
    assert SMTPTransport.capabilities.batch_size(settings.batch_size) == used


def test_plain_smtp_one_transaction_per_message_over_one_connection() -> None:
    recorder = Recorder()
    messages = _messages(ALICE, BOB, CAROL)
    with smtp_server(recorder) as server, _transport(server.port) as transport:
        results = transport.send_batch(messages, batch_key=BatchKey("c", "1"))
        transport.send_batch(_messages(ALICE), batch_key=BatchKey("c", "2"))

    assert [(r.email, r.ok) for r in results] == [(ALICE, True), (BOB, True), (CAROL, True)]
    assert [r.provider_id for r in results] == [m.message_id for m in messages]
    first, second, third, next_batch = recorder.deliveries
    assert [d.rcpt_tos for d in (first, second, third)] == [(ALICE,), (BOB,), (CAROL,)]
    assert {d.mail_from for d in recorder.deliveries} == {"digest@example.org"}
    assert first.peer == second.peer == third.peer != next_batch.peer
    assert not first.tls
    assert recorder.commands[:6] == [
        "MAIL digest@example.org",
        f"RCPT {ALICE}",
        f"DATA {ALICE}",
        "MAIL digest@example.org",
        f"RCPT {BOB}",
        f"DATA {BOB}",
    ]


def test_lines_of_dots_arrive_unchanged() -> None:
    recorder = Recorder()
    (message,) = _messages(ALICE)
    with smtp_server(recorder) as server:
        _transport(server.port).send_batch([message])
    (mail,) = recorder.received()
    assert mail["text"] == "Hi Alice\n.\n..two dots\n"
    assert "\n.\n<p>a line with only a dot above</p>" in mail["html"]


# --- TLS -------------------------------------------------------------------------------


def test_starttls_with_a_certificate_the_client_trusts(
    server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    recorder = Recorder()
    with smtp_server(recorder, tls_context=server_tls, require_starttls=True) as server:
        transport = _transport(server.port, security="starttls", ssl_context=client_tls)
        (result,) = transport.send_batch(_messages(ALICE))
    assert result.ok
    (delivery,) = recorder.deliveries
    assert delivery.tls


def test_starttls_refuses_a_certificate_it_cannot_verify(server_tls: ssl.SSLContext) -> None:
    recorder = Recorder()
    with smtp_server(recorder, tls_context=server_tls, require_starttls=True) as server:
        # No injected context: the system's trust store, which knows nothing of the test CA.
        transport = _transport(server.port, security="starttls")
        with pytest.raises(ConfigError, match=r"certificate of the SMTP server 127\.0\.0\.1:\d+"):
            transport.send_batch(_messages(ALICE))
    assert recorder.deliveries == []


def test_starttls_configured_but_not_offered_sends_nothing_in_the_clear() -> None:
    recorder = Recorder()
    with smtp_server(recorder) as server:
        transport = _transport(server.port, security="starttls")
        with pytest.raises(ConfigError, match="does not offer STARTTLS"):
            transport.send_batch(_messages(ALICE))
    assert recorder.commands == []


def test_implicit_tls(server_tls: ssl.SSLContext, client_tls: ssl.SSLContext) -> None:
    recorder = Recorder()
    with smtp_server(recorder, ssl_context=server_tls) as server:
        transport = _transport(server.port, security="ssl", ssl_context=client_tls)
        results = transport.send_batch(_messages(ALICE, BOB))
    assert [r.ok for r in results] == [True, True]
    assert [d.tls for d in recorder.deliveries] == [True, True]


def test_implicit_tls_against_a_plain_server_is_a_config_error() -> None:
    with smtp_server(Recorder()) as server:
        transport = _transport(server.port, security="ssl", timeout=2.0)
        with pytest.raises(ConfigError, match="check `security` and `port`"):
            transport.send_batch(_messages(ALICE))


# --- AUTH and the password ----------------------------------------------------------------


@pytest.fixture
def auth_server(server_tls: ssl.SSLContext) -> Iterator[tuple[Recorder, int]]:
    """A STARTTLS server that wants AUTH (only offered once TLS is up, as aiosmtpd insists)."""
    recorder = Recorder()
    with smtp_server(
        recorder,
        tls_context=server_tls,
        require_starttls=True,
        authenticator=_authenticator,
        auth_required=True,
    ) as server:
        yield recorder, server.port


def test_auth_with_the_password_from_the_environment(
    auth_server: tuple[Recorder, int], client_tls: ssl.SSLContext
) -> None:
    recorder, port = auth_server
    env = {"DIGEST_SMTP_PASSWORD": PASSWORD}
    with _transport(
        port, env, security="starttls", username=USER, ssl_context=client_tls
    ) as transport:
        results = transport.send_batch(_messages(ALICE, BOB))
    assert [r.ok for r in results] == [True, True]
    assert [d.login for d in recorder.deliveries] == [USER, USER]


def _assert_no_password(exc: BaseException, capsys: pytest.CaptureFixture[str], log: str) -> None:
    out, err = capsys.readouterr()
    shown = [str(exc), repr(exc), "".join(traceback.format_exception(exc)), out, err, log]
    assert not [text for text in shown if PASSWORD in text]


def test_a_wrong_password_is_a_config_error_without_the_password(
    auth_server: tuple[Recorder, int],
    client_tls: ssl.SSLContext,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    recorder, port = auth_server
    env = {"DIGEST_SMTP_PASSWORD": PASSWORD + "-wrong"}
    transport = _transport(port, env, security="starttls", username=USER, ssl_context=client_tls)
    with pytest.raises(ConfigError) as caught:
        transport.send_batch(_messages(ALICE))
    message = str(caught.value)
    assert message.startswith(f"SMTP login as {USER} at 127.0.0.1:{port} failed (535 ")
    assert message.endswith("check the username and DIGEST_SMTP_PASSWORD.")
    assert recorder.deliveries == []
    _assert_no_password(caught.value, capsys, caplog.text)


@pytest.mark.parametrize("env", [{}, {"DIGEST_SMTP_PASSWORD": ""}])
def test_a_missing_password_is_reported_before_connecting(
    refusing_port: int, env: dict[str, str]
) -> None:
    # Had it tried to connect, the refused connection would be a TemporaryFailure instead.
    transport = _transport(refusing_port, env, security="starttls", username=USER)
    with pytest.raises(ConfigError, match="set the DIGEST_SMTP_PASSWORD environment variable"):
        transport.open()
    with pytest.raises(ConfigError, match=f"SMTP user {USER} needs a password"):
        transport.send_batch(_messages(ALICE))


def test_a_connection_error_does_not_show_the_password(
    refusing_port: int, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    transport = _transport(refusing_port, {"DIGEST_SMTP_PASSWORD": PASSWORD}, username=USER)
    transport.open()
    with pytest.raises(TemporaryFailure) as caught:
        transport.send_batch(_messages(ALICE))
    _assert_no_password(caught.value, capsys, caplog.text)


def test_auth_not_offered_in_the_clear_is_a_config_error(server_tls: ssl.SSLContext) -> None:
    recorder = Recorder()
    with smtp_server(recorder, tls_context=server_tls, authenticator=_authenticator) as server:
        env = {"DIGEST_SMTP_PASSWORD": PASSWORD}
        transport = _transport(server.port, env, security="none", username=USER)
        with pytest.raises(ConfigError, match="does not offer AUTH over an unencrypted connection"):
            transport.send_batch(_messages(ALICE))


# --- per-recipient replies ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "inactive"),
    [
        ("550 5.1.1 <bob@example.net>: Recipient address rejected: User unknown", True),
        ("550 5.7.1 Relaying denied", False),
        ("553 mailbox name not allowed", False),
    ],
)
def test_a_5xx_on_rcpt_fails_that_recipient_only(reply: str, inactive: bool) -> None:
    recorder = Recorder(rcpt_replies={BOB: reply})
    with smtp_server(recorder) as server:
        results = _transport(server.port).send_batch(_messages(ALICE, BOB, CAROL))

    alice, bob, carol = results
    assert alice.ok and carol.ok
    assert (bob.email, bob.ok, bob.permanent, bob.inactive) == (BOB, False, True, inactive)
    assert bob.error == f"RCPT TO refused: {reply}"
    assert [d.rcpt_tos for d in recorder.deliveries] == [(ALICE,), (CAROL,)]


def test_a_4xx_on_rcpt_is_retryable_for_that_recipient() -> None:
    recorder = Recorder(rcpt_replies={BOB: "451 4.7.1 Greylisted, try again later"})
    with smtp_server(recorder) as server:
        alice, bob, carol = _transport(server.port).send_batch(_messages(ALICE, BOB, CAROL))
    assert alice.ok and carol.ok
    assert (bob.ok, bob.permanent, bob.inactive) == (False, False, False)
    assert bob.error == "RCPT TO refused: 451 4.7.1 Greylisted, try again later"


@pytest.mark.parametrize(
    ("reply", "permanent"),
    [("552 5.3.4 Message too big", True), ("452 4.3.1 Insufficient storage", False)],
)
def test_a_reply_to_the_data_fails_that_message_only(reply: str, permanent: bool) -> None:
    recorder = Recorder(data_replies={ALICE: reply})
    with smtp_server(recorder) as server:
        alice, bob = _transport(server.port).send_batch(_messages(ALICE, BOB))
    assert (alice.ok, alice.permanent, alice.error) == (False, permanent, f"DATA refused: {reply}")
    assert bob.ok
    assert [d.rcpt_tos for d in recorder.deliveries] == [(BOB,)]


# --- the connection -------------------------------------------------------------------------


def test_a_refused_connection_is_a_temporary_failure(refusing_port: int) -> None:
    port = refusing_port
    with pytest.raises(
        TemporaryFailure, match=f"could not connect to the SMTP server 127.0.0.1:{port}"
    ):
        _transport(port).send_batch(_messages(ALICE))


@pytest.mark.parametrize(
    ("greeting", "error"),
    [
        (b"421 4.3.2 Busy, come back later", TemporaryFailure),
        (b"554 5.7.1 Go away", PermanentFailure),
    ],
)
def test_a_refusing_greeting(greeting: bytes, error: type[DigestError]) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def greet_and_hang_up() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.sendall(greeting + b"\r\n")
                conn.recv(1024)  # smtplib says QUIT or closes; either ends this

        thread = threading.Thread(target=greet_and_hang_up)
        thread.start()
        with pytest.raises(error, match=greeting.decode()[4:]):
            _transport(port).send_batch(_messages(ALICE))
        thread.join()


def test_421_before_anything_was_sent_makes_the_batch_retryable() -> None:
    recorder = Recorder(rcpt_replies={ALICE: "421 4.7.0 Too many connections, slow down"})
    retryable = pytest.raises(TemporaryFailure, match="Too many connections, slow down")
    with smtp_server(recorder) as server, retryable:
        _transport(server.port).send_batch(_messages(ALICE, BOB))
    assert recorder.deliveries == []


def test_421_mid_batch_keeps_the_answers_and_marks_the_rest_retryable() -> None:
    recorder = Recorder(rcpt_replies={BOB: "421 4.7.0 Too many messages, closing"})
    with smtp_server(recorder) as server:
        alice, bob, carol = _transport(server.port).send_batch(_messages(ALICE, BOB, CAROL))
    assert alice.ok
    for result in (bob, carol):
        assert (result.ok, result.permanent) == (False, False)
        assert result.error is not None and result.error.startswith(
            "not sent: RCPT TO answered 421"
        )
    assert [d.rcpt_tos for d in recorder.deliveries] == [(ALICE,)]


@pytest.mark.parametrize("rejected", [ALICE, BOB])
def test_a_rejection_followed_by_a_hang_up_keeps_the_rejection(rejected: str) -> None:
    reply = "550 5.1.1 No such user"
    recorder = Recorder(rcpt_replies={rejected: reply}, hang_up_after_rcpt={rejected})
    with smtp_server(recorder) as server:
        results = _transport(server.port).send_batch(_messages(ALICE, BOB, CAROL))

    by_email = {r.email: r for r in results}
    assert [r.email for r in results] == [ALICE, BOB, CAROL]
    assert by_email[rejected].error == f"RCPT TO refused: {reply}"
    assert by_email[rejected].permanent
    carol = by_email[CAROL]
    assert (carol.ok, carol.permanent) == (False, False)
    assert carol.error is not None and carol.error.startswith("not sent: connection lost")
    assert [d.rcpt_tos for d in recorder.deliveries] == ([(ALICE,)] if rejected == BOB else [])


def test_a_drop_after_the_data_is_ambiguous_for_that_message_only() -> None:
    recorder = Recorder(drop_after_data={BOB})
    with smtp_server(recorder) as server, pytest.raises(AmbiguousFailure) as caught:
        _transport(server.port).send_batch(_messages(ALICE, BOB, CAROL))

    alice, bob, carol = caught.value.results
    assert alice is not None and alice.ok
    assert bob is None  # the server did take it: it may well be delivered
    assert carol is not None and (carol.ok, carol.permanent) == (False, False)
    assert carol.error is not None and carol.error.startswith("not sent: ")
    assert f"after the message to {BOB} was sent" in str(caught.value)
    assert "it may have been delivered" in str(caught.value)
    assert [d.rcpt_tos for d in recorder.deliveries] == [(ALICE,), (BOB,)]


def test_no_reply_to_the_data_within_the_timeout_is_ambiguous() -> None:
    recorder = Recorder(hang_after_data={ALICE})
    with smtp_server(recorder) as server, pytest.raises(AmbiguousFailure) as caught:
        _transport(server.port, timeout=0.3).send_batch(_messages(ALICE, BOB))
    assert caught.value.results[0] is None
    assert caught.value.results[1] is not None and not caught.value.results[1].permanent


def test_a_bad_message_fails_before_anything_is_sent() -> None:
    recorder = Recorder()
    good = _messages(ALICE)[0]
    bad = good.__class__(
        content=good.content,
        to=Recipient(BOB),
        subject="line\r\nBcc: everyone@example.org",
        message_id=good.message_id,
    )
    with smtp_server(recorder) as server, pytest.raises(DigestError, match="line break"):
        _transport(server.port).send_batch([good, bad])
    assert recorder.commands == []
