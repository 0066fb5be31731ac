"""The SMTP harness: a real aiosmtpd server on 127.0.0.1 that records what it accepts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, LoginPassword, Session

from digestcli.config import TransportSettings
from digestcli.transports.base import Transport
from digestcli.transports.smtp import SMTPTransport
from harness.mime import Received, parse_eml


@dataclass(frozen=True)
class Delivery:
    """One message the server accepted: its envelope and its bytes."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    peer: str = ""  # the client's address and port: one per connection
    tls: bool = False
    login: str | None = None  # who the session authenticated as


@dataclass
class Recorder:
    """An aiosmtpd handler that keeps accepted messages and answers as a test scripts it.

    rcpt_replies / data_replies: recipient -> the reply to send instead of 250.
    hang_up_after_rcpt: recipients whose RCPT reply is followed by the server hanging up.
    drop_after_data: recipients whose message is taken, then the connection cut unanswered.
    hang_after_data: recipients whose message is taken, then never answered.
    """

    rcpt_replies: dict[str, str] = field(default_factory=dict)
    data_replies: dict[str, str] = field(default_factory=dict)
    hang_up_after_rcpt: set[str] = field(default_factory=set)
    drop_after_data: set[str] = field(default_factory=set)
    hang_after_data: set[str] = field(default_factory=set)
    deliveries: list[Delivery] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        """Accept any sender, noting the command."""
        self.commands.append(f"MAIL {address}")
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        """Accept the recipient unless the test scripted a reply for it."""
        self.commands.append(f"RCPT {address}")
        if address in self.hang_up_after_rcpt:
            assert isinstance(server.transport, asyncio.Transport)
            # close(), unlike abort(), sends the reply still buffered before hanging up.
            asyncio.get_running_loop().call_soon(server.transport.close)
        reply = self.rcpt_replies.get(address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Record the message, then answer, drop or hang as scripted."""
        rcpt_tos = tuple(envelope.rcpt_tos)
        self.commands.append(f"DATA {' '.join(rcpt_tos)}")
        reply = next((self.data_replies[r] for r in rcpt_tos if r in self.data_replies), None)
        if reply is not None:
            return reply
        data = envelope.original_content
        assert isinstance(data, bytes)
        assert envelope.mail_from is not None
        auth = session.auth_data
        login = auth.login.decode() if isinstance(auth, LoginPassword) else None
        self.deliveries.append(
            Delivery(
                envelope.mail_from,
                rcpt_tos,
                data,
                peer=str(session.peer),
                # session.ssl is only set by STARTTLS; the transport knows about implicit TLS too.
                tls=server.transport is not None
                and server.transport.get_extra_info("ssl_object") is not None,
                login=login,
            )
        )
        if self.drop_after_data.intersection(rcpt_tos):
            assert isinstance(server.transport, asyncio.Transport)
            server.transport.abort()
        if self.drop_after_data.union(self.hang_after_data).intersection(rcpt_tos):
            # Never answer: aiosmtpd cancels this when the connection goes (ours or the
            # client's, after its timeout), or when the server stops.
            await asyncio.Event().wait()
        return "250 2.0.0 OK"

    def received(self) -> list[Received]:
        """What was accepted, normalised; one recipient per message, as digest sends."""
        out = []
        for delivery in self.deliveries:
            (to,) = delivery.rcpt_tos
            out.append(parse_eml(delivery.data, to=to))
        return out


class LoopbackController(Controller):
    """An aiosmtpd Controller on 127.0.0.1 with a port the OS picks: no clashes, no races."""

    def __init__(self, handler: Any, **kwargs: Any) -> None:
        # server_hostname: a fixed banner name spares a reverse DNS lookup (socket.getfqdn).
        super().__init__(handler, hostname="127.0.0.1", port=0, server_hostname="mx.test", **kwargs)

    def _create_server(self) -> Any:
        # The documented override point; the port is read back once the socket is bound,
        # before start() connects to it.
        return self._bind()

    async def _bind(self) -> asyncio.AbstractServer:
        server = await super()._create_server()
        assert isinstance(server, asyncio.Server)
        self.port = server.sockets[0].getsockname()[1]
        return server


@contextmanager
def smtp_server(handler: Any, **kwargs: Any) -> Iterator[LoopbackController]:
    """A running LoopbackController; kwargs go to aiosmtpd (tls_context, authenticator...)."""
    controller = LoopbackController(handler, **kwargs)
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()


def smtp_settings(port: int, **overrides: Any) -> TransportSettings:
    """Settings for the loopback server: plain SMTP, short timeouts unless overridden."""
    values: dict[str, Any] = {
        "kind": "smtp",
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "timeout": 5.0,
    }
    values.update(overrides)
    return TransportSettings(**values)


@contextmanager
def smtp_harness() -> Iterator[tuple[Transport, Callable[[], list[Received]]]]:
    """An SMTPTransport talking plain SMTP to a recording aiosmtpd on loopback."""
    recorder = Recorder()
    with smtp_server(recorder) as server:
        yield SMTPTransport(smtp_settings(server.port), {}), recorder.received
