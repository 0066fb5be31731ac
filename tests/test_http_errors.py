"""The one error boundary of the HTTP transports, against every provider's local server."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from digestcli.config import TransportSettings
from digestcli.errors import (
    AmbiguousFailure,
    ConfigError,
    DigestError,
    PermanentFailure,
    TemporaryFailure,
)
from digestcli.models import BatchKey
from digestcli.transports import transport_class
from digestcli.transports.http import HTTPTransport, parse_reset_time, parse_retry_after
from harness.providers import FAKES, SECRETS, FakeProvider, Reply, make_messages

PROVIDERS = sorted(FAKES)
NOW = 1_700_000_000.0


def clock() -> float:
    return NOW


@pytest.fixture(params=PROVIDERS)
def fake(request: pytest.FixtureRequest) -> Iterator[FakeProvider]:
    """Each provider's local server in turn."""
    with FAKES[request.param]() as server:
        yield server


def _send(transport: HTTPTransport, count: int = 2) -> None:
    with transport:
        transport.send_batch(make_messages(count), batch_key=BatchKey("errors-1", "1"))


def _env_name(fake: FakeProvider) -> str:
    return fake.transport_cls.secret_env


def test_the_registry_names_the_four_http_transports() -> None:
    for name, fake_cls in FAKES.items():
        assert transport_class(name) is fake_cls.transport_cls
        assert fake_cls.transport_cls.name == name
    assert {n: transport_class(n).capabilities.max_batch for n in PROVIDERS} == {
        "mailgun": 1000,
        "postmark": 500,
        "resend": 100,
        "sendgrid": 1000,
    }


def test_a_missing_secret_fails_before_any_request(fake: FakeProvider) -> None:
    transport = fake.transport(env={})
    with pytest.raises(ConfigError) as caught:
        _send(transport)
    assert str(caught.value) == f"{_env_name(fake)} is not set; export it with your API key."
    assert fake.requests == []


def test_a_blank_secret_counts_as_missing(fake: FakeProvider) -> None:
    with pytest.raises(ConfigError, match="is not set"):
        fake.transport(env={_env_name(fake): "  "}).open()


def test_refused_credentials_name_the_variable_not_the_value(fake: FakeProvider) -> None:
    wrong = "wrong-secret-value-123"
    transport = fake.transport(env={_env_name(fake): wrong})
    with pytest.raises(ConfigError) as caught:
        _send(transport)
    message = str(caught.value)
    assert f"check {_env_name(fake)}." in message
    assert "HTTP 401" in message or "HTTP 403" in message
    assert wrong not in message
    assert fake.secret not in message
    assert fake.delivered == []


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_temporary(fake: FakeProvider, status: int) -> None:
    fake.script(fake.error(status))
    with pytest.raises(TemporaryFailure) as caught:
        _send(fake.transport())
    assert f"HTTP {status}" in str(caught.value)
    assert fake.delivered == []


def test_a_retry_after_a_temporary_failure_goes_through(fake: FakeProvider) -> None:
    fake.script(fake.error(503))
    transport = fake.transport()
    messages = make_messages(2)
    with transport:
        with pytest.raises(TemporaryFailure):
            transport.send_batch(messages, batch_key=BatchKey("errors-2", "1"))
        results = transport.send_batch(messages, batch_key=BatchKey("errors-2", "1"))
    assert [r.ok for r in results] == [True, True]
    assert [m["to"] for m in fake.received()] == [m.to.email for m in messages]


# Each provider's own rate-limit signal, and the wait it means.
RATE_LIMITS: dict[str, tuple[dict[str, Any], float]] = {
    "postmark": ({}, -1),  # documents no header: the sender backs off on its own
    "sendgrid": ({"reset": int(NOW) + 42}, 42.0),
    "mailgun": ({"seconds": 17}, 17.0),
    "resend": ({"retry_after": 3, "reset": 9}, 3.0),
}


def test_429_is_temporary_with_the_providers_wait(fake: FakeProvider) -> None:
    options, expected = RATE_LIMITS[fake.provider]
    fake.script(fake.error(429, **options))
    with pytest.raises(TemporaryFailure) as caught:
        _send(fake.transport(clock=clock))
    assert "HTTP 429" in str(caught.value)
    assert caught.value.retry_after == (None if expected < 0 else expected)


def test_a_standard_retry_after_date_is_honoured(fake: FakeProvider) -> None:
    when = format_datetime(datetime.fromtimestamp(NOW + 90, UTC), usegmt=True)
    reply = fake.error(429)
    reply.headers["Retry-After"] = when
    fake.script(reply)
    with pytest.raises(TemporaryFailure) as caught:
        _send(fake.transport(clock=clock))
    assert caught.value.retry_after == 90.0


def test_a_connection_dropped_after_the_request_is_ambiguous(fake: FakeProvider) -> None:
    fake.script(Reply(action="drop"))
    with pytest.raises(AmbiguousFailure) as caught:
        _send(fake.transport())
    assert "may have been accepted" in str(caught.value)
    assert len(fake.requests) == 1  # the server did read the whole request


def test_an_answer_later_than_the_timeout_is_ambiguous(fake: FakeProvider) -> None:
    fake.script(Reply(action="stall"))
    with pytest.raises(AmbiguousFailure, match="ReadTimeout"):
        _send(fake.transport(timeout=0.2))
    assert len(fake.requests) == 1


def test_nobody_listening_is_temporary_and_nothing_was_sent() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for provider, fake_cls in FAKES.items():
        settings = TransportSettings(
            kind=provider, base_url=f"http://127.0.0.1:{port}", domain="mg.example.org"
        )
        transport = fake_cls.transport_cls(settings, {fake_cls.transport_cls.secret_env: "k"})
        with pytest.raises(TemporaryFailure, match="nothing was sent") as caught:
            _send(transport)
        assert caught.value.retry_after is None


def _mock(exc: Exception) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return httpx.MockTransport(handler)


def _transport(provider: str, http: httpx.BaseTransport) -> HTTPTransport:
    cls = FAKES[provider].transport_cls
    settings = TransportSettings(kind=provider, domain="mg.example.org")
    return cls(settings, {cls.secret_env: SECRETS[provider]}, http=http)


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (httpx.ConnectTimeout("connect timed out"), TemporaryFailure),
        (httpx.PoolTimeout("no free connection"), TemporaryFailure),
        (httpx.ConnectError("name resolution failed"), TemporaryFailure),
        (httpx.ReadTimeout("read timed out"), AmbiguousFailure),
        (httpx.ReadError("connection reset"), AmbiguousFailure),
        (httpx.WriteError("broken pipe"), AmbiguousFailure),
        (httpx.WriteTimeout("write timed out"), AmbiguousFailure),
        (httpx.RemoteProtocolError("server disconnected"), AmbiguousFailure),
    ],
)
def test_network_failures_map_to_retry_safety(
    provider: str, exc: Exception, expected: type[DigestError]
) -> None:
    with pytest.raises(expected) as caught:
        _send(_transport(provider, _mock(exc)))
    assert caught.value.__cause__ is exc


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_base_url_that_is_not_http_is_a_config_error(provider: str) -> None:
    cls = FAKES[provider].transport_cls
    settings = TransportSettings(kind=provider, base_url="ftp://example.org", domain="x.org")
    with pytest.raises(ConfigError, match="base_url"):
        _send(cls(settings, {cls.secret_env: "k"}))


def test_a_wrong_endpoint_is_a_config_error(fake: FakeProvider) -> None:
    with pytest.raises(ConfigError, match=r"HTTP 404 .*base_url"):
        _send(fake.transport(base_url=fake.url + "/wrong"))


def test_a_refused_payload_is_permanent_with_the_providers_words(fake: FakeProvider) -> None:
    fake.script(fake.error(413))
    with pytest.raises(PermanentFailure, match="HTTP 413"):
        _send(fake.transport())


def test_a_provider_echoing_the_secret_is_redacted(fake: FakeProvider) -> None:
    fake.script(fake.error(400 if fake.provider != "postmark" else 422, f"bad key {fake.secret}"))
    with pytest.raises(PermanentFailure) as caught:
        _send(fake.transport())
    assert fake.secret not in str(caught.value)
    assert "[redacted]" in str(caught.value)


def test_the_secret_stays_in_the_auth_header(
    fake: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    transport = fake.transport()
    fake.script(fake.error(503), Reply(action="drop"))
    errors: list[Exception] = []
    with transport:
        for _ in range(2):
            with pytest.raises(DigestError) as caught:
                transport.send_batch(make_messages(2), batch_key=BatchKey("errors-3", "1"))
            errors.append(caught.value)
        transport.send_batch(make_messages(2), batch_key=BatchKey("errors-3", "2"))
        assert fake.secret not in repr(transport)
        assert fake.secret not in str(vars(transport).get("settings"))
    auth_header = {
        "postmark": "x-postmark-server-token",
        "sendgrid": "authorization",
        "mailgun": "authorization",
        "resend": "authorization",
    }[fake.provider]
    assert len(fake.requests) == 3
    for request in fake.requests:
        assert fake.secret.encode() not in request.body
        for name, value in request.headers.items():
            if name != auth_header:
                assert fake.secret not in value, name
    for error in errors:
        assert fake.secret not in str(error)
        assert fake.secret not in repr(error)
    for record in caplog.records:
        assert fake.secret not in record.getMessage()


def test_close_forgets_the_secret_and_a_later_send_reopens(fake: FakeProvider) -> None:
    transport = fake.transport()
    transport.open()
    transport.open()  # opening twice keeps one client
    transport.close()
    transport.close()
    assert {k: v for k, v in vars(transport).items() if k != "env"}.get("_secret") == ""
    _send(transport)
    assert len(fake.received()) == 2


def test_more_than_the_providers_batch_is_refused(fake: FakeProvider) -> None:
    transport = fake.transport()
    most = fake.transport_cls.capabilities.max_batch
    messages = make_messages(1) * (most + 1)
    with pytest.raises(ValueError, match=f"at most {most}"), transport:
        transport.send_batch(messages)
    assert fake.requests == []


def test_an_empty_batch_makes_no_request(fake: FakeProvider) -> None:
    with fake.transport() as transport:
        assert transport.send_batch([]) == []
    assert fake.requests == []


def test_batch_size_is_capped_at_the_providers_maximum(fake: FakeProvider) -> None:
    caps = fake.transport_cls.capabilities
    assert caps.batch_size(10) == fake.factory(batch_size=10).batch_size == 10
    assert caps.batch_size(100_000) == fake.factory(batch_size=100_000).batch_size
    assert caps.batch_size(100_000) == caps.max_batch


# ----- parsing waits ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 1.5 ", 1.5),
        ("-3", 0.0),
        ("Tue, 14 Nov 2023 22:13:50 GMT", 30.0),
        ("Tue, 14 Nov 2023 22:00:00 GMT", 0.0),
        ("soon", None),
        ("", None),
        (None, None),
        ("nan", None),
    ],
)
def test_retry_after_takes_seconds_or_an_http_date(value: str | None, expected: float) -> None:
    assert parse_retry_after(value, NOW) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(str(int(NOW) + 5), 5.0), (str(int(NOW) - 5), 0.0), ("x", None), (None, None)],
)
def test_a_reset_time_is_seconds_from_now(value: str | None, expected: float | None) -> None:
    assert parse_reset_time(value, NOW) == expected


def test_the_default_endpoints_are_the_documented_ones() -> None:
    urls = {}
    for name in PROVIDERS:
        cls = FAKES[name].transport_cls
        urls[name] = cls(TransportSettings(kind=name), {}).base_url
    assert urls == {
        "mailgun": "https://api.mailgun.net",
        "postmark": "https://api.postmarkapp.com",
        "resend": "https://api.resend.com",
        "sendgrid": "https://api.sendgrid.com",
    }


def test_a_secret_with_a_line_break_is_refused_before_any_request(fake: FakeProvider) -> None:
    transport = fake.transport(env={_env_name(fake): "s3cr3t\r\nX-Injected: 1"})
    with pytest.raises(ConfigError, match="line break") as caught:
        _send(transport)
    assert "s3cr3t" not in str(caught.value)
    assert fake.requests == []


def test_request_bytes_is_the_body_that_goes_out_and_sends_nothing(fake: FakeProvider) -> None:
    messages = make_messages(3)
    estimate = fake.transport(env={}).request_bytes(messages, batch_key=BatchKey("errors-4", "1"))
    assert fake.requests == []
    with fake.transport() as transport:
        transport.send_batch(messages, batch_key=BatchKey("errors-4", "1"))
    assert estimate == len(fake.requests[0].body)
    assert fake.transport(env={}).request_bytes([]) == 0
