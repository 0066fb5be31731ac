"""SendGrid: one mail/send per batch against a local server that speaks SendGrid's API."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from digestcli.errors import ConfigError, PermanentFailure, TemporaryFailure
from digestcli.models import BatchKey, Message
from harness.providers import (
    HTML_MARKER,
    LITERALS,
    SECRETS,
    SendGridFake,
    has_spec,
    make_content,
    make_messages,
    raw_spec,
)

NOW = 1_700_000_000.0


KEY = BatchKey("issue-12", "1")


@pytest.fixture
def fake() -> Iterator[SendGridFake]:
    """A local SendGrid."""
    with SendGridFake() as server:
        yield server


def _sent(
    fake: SendGridFake, messages: list[Message], key: BatchKey | None = KEY
) -> dict[str, Any]:
    with fake.transport() as transport:
        results = transport.send_batch(messages, batch_key=key)
    assert all(r.ok for r in results)
    (request,) = fake.requests
    mail: dict[str, Any] = request.json()
    return mail


def test_one_request_per_batch_readers_get_their_own_message(fake: SendGridFake) -> None:
    messages = make_messages(5)
    with fake.transport() as transport:
        results = transport.send_batch(messages, batch_key=BatchKey("issue-12", "1"))

    assert fake.violations == []
    assert [r.email for r in results] == [m.to.email for m in messages]
    assert all(r.ok for r in results)
    (request,) = fake.requests
    (reply,) = fake.answered
    assert {r.provider_id for r in results} == {reply.headers["X-Message-Id"]}
    assert request.headers["authorization"] == f"Bearer {SECRETS['sendgrid']}"
    got = fake.received()
    assert [m["to"] for m in got] == [m.to.email for m in messages]
    for message, mail in zip(messages, got, strict=True):
        assert mail["html"] == message.html()
        assert mail["text"] == message.text()
        assert mail["subject"] == message.subject
        for name, value in message.headers:
            assert mail["headers"][name.lower()] == value
        assert mail["headers"]["message-id"] == message.message_id


def test_the_provider_id_is_the_x_message_id(fake: SendGridFake) -> None:
    with fake.transport() as transport:
        results = transport.send_batch(make_messages(2))
    ids = {r.provider_id for r in results}
    assert len(ids) == 1
    (only,) = ids
    assert only and re.fullmatch(r"[0-9a-f]{22}", only)


def test_the_html_travels_once_per_batch(fake: SendGridFake) -> None:
    body = _sent(fake, make_messages(20))
    raw = fake.requests[0].body.decode()
    assert raw.count(HTML_MARKER) == 1
    assert [part["type"] for part in body["content"]] == ["text/plain", "text/html"]
    assert len(body["personalizations"]) == 20


def test_each_personalization_carries_its_own_envelope(fake: SendGridFake) -> None:
    messages = make_messages(2)
    body = _sent(fake, messages)
    alice, bob = body["personalizations"]
    assert alice["to"] == [{"email": "alice@example.org", "name": "Alice <b>Bold</b>"}]
    assert alice["headers"] == {
        "List-Unsubscribe": dict(messages[0].headers)["List-Unsubscribe"],
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "Message-ID": "<0.fixed@example.org>",
    }
    assert alice["custom_args"] == {"campaign": "issue-12", "batch": "issue-12:1"}
    assert bob["headers"]["List-Unsubscribe"] != alice["headers"]["List-Unsubscribe"]
    assert body["from"] == {"email": "digest@example.org", "name": "China's Digital Digest"}
    assert body["reply_to"] == {"email": "editor@example.org"}
    assert body["categories"] == ["issue-12"]
    assert body["tracking_settings"] == {"subscription_tracking": {"enable": False}}
    assert "custom_args" not in body  # the spec types the top-level one as a string


def test_html_and_text_use_different_tags_when_escaping_matters(fake: SendGridFake) -> None:
    body = _sent(fake, make_messages(2))
    text, html = (part["value"] for part in body["content"])
    subs = body["personalizations"][0]["substitutions"]
    html_tags = {tag for tag in subs if tag in html}
    text_tags = {tag for tag in subs if tag in text}
    by_value = {value: tag for tag, value in subs.items()}
    # Alice's name needs escaping: two tags, two values.
    assert by_value["Alice &lt;b&gt;Bold&lt;/b&gt;"] in html_tags
    assert by_value["Alice <b>Bold</b>"] in text_tags
    assert by_value["Alice <b>Bold</b>"] not in html_tags
    # The address needs none in this batch: one tag serves both parts.
    assert by_value["alice@example.org"] in html_tags & text_tags


def test_tags_occur_only_in_the_slots(fake: SendGridFake) -> None:
    content = make_content()
    body = _sent(fake, make_messages(3, content=content))
    text, html = (part["value"] for part in body["content"])
    for tag in body["personalizations"][0]["substitutions"]:
        assert tag not in "".join(content.html.literals + content.text.literals)
        assert tag not in LITERALS
    slots = len(content.html.parts) // 2 + len(content.text.parts) // 2
    tags = "|".join(re.escape(t) for t in body["personalizations"][0]["substitutions"])
    assert len(re.findall(tags, html + text)) == slots
    # What is left once the tags are out is exactly the literal text of the issue.
    assert re.sub(tags, "", html) == "".join(content.html.literals)
    assert re.sub(tags, "", text) == "".join(content.text.literals)


def test_literal_text_and_tricky_values_reach_readers_unchanged(fake: SendGridFake) -> None:
    messages = make_messages(3)
    _sent(fake, messages)
    for message, mail in zip(messages, fake.received(), strict=True):
        assert LITERALS in mail["text"]
        assert mail["html"] == message.html()
    assert "City: %recipient.t0%" in fake.received()[1]["text"]


def test_a_test_send_subject_goes_in_the_personalization(fake: SendGridFake) -> None:
    messages = make_messages(1) + make_messages(2, test=True)[1:]
    body = _sent(fake, messages)
    assert body["subject"] == messages[0].subject
    assert "subject" not in body["personalizations"][0]
    assert body["personalizations"][1]["subject"].startswith("[TEST] ")
    assert fake.received()[1]["subject"] == messages[1].subject


def test_400_is_permanent_with_sendgrids_message(fake: SendGridFake) -> None:
    fake.script(fake.error(400))
    with pytest.raises(PermanentFailure) as caught, fake.transport() as transport:
        transport.send_batch(make_messages(2))
    assert str(caught.value) == (
        "SendGrid rejected the batch (HTTP 400): "
        "The from email does not contain a valid address. (from.email)"
    )


def test_401_names_the_api_key_variable(fake: SendGridFake) -> None:
    env = {"DIGEST_SENDGRID_API_KEY": "SG.wrong"}
    with pytest.raises(ConfigError) as caught, fake.transport(env=env) as transport:
        transport.send_batch(make_messages(1))
    assert str(caught.value) == (
        "SendGrid refused the credentials (HTTP 401: The provided authorization grant is "
        "invalid, expired, or revoked); check DIGEST_SENDGRID_API_KEY."
    )


def test_429_waits_until_the_rate_limit_reset(fake: SendGridFake) -> None:
    fake.script(fake.error(429, reset=int(NOW) + 42))
    transport = fake.transport(clock=lambda: NOW)
    with pytest.raises(TemporaryFailure) as caught, transport:
        transport.send_batch(make_messages(1))
    assert caught.value.retry_after == 42.0
    assert "too many requests" in str(caught.value)


def test_a_reset_already_past_means_retry_now(fake: SendGridFake) -> None:
    fake.script(fake.error(429, reset=int(NOW) - 5))
    transport = fake.transport(clock=lambda: NOW)
    with pytest.raises(TemporaryFailure) as caught, transport:
        transport.send_batch(make_messages(1))
    assert caught.value.retry_after == 0.0


# ----- the spec ------------------------------------------------------------------------------


def test_the_fake_enforces_the_spec(fake: SendGridFake) -> None:
    if not has_spec("sendgrid"):
        pytest.skip("../shared/specs/sendgrid-mail-send.openapi.json is absent")
    bad = {
        "personalizations": [{"to": [{"email": "not an address"}]}],
        "from": {"email": "digest@example.org"},
        "subject": "s",
        "content": [{"type": "text/plain", "value": "x"}],
    }
    auth = {"Authorization": f"Bearer {fake.secret}"}
    response = httpx.post(fake.url + "/v3/mail/send", json=bad, headers=auth)
    assert response.status_code == 400
    assert any("'not an address' is not a 'email'" in v for v in fake.violations)


def test_the_top_level_custom_args_gap(fake: SendGridFake) -> None:
    if not has_spec("sendgrid"):
        pytest.skip("../shared/specs/sendgrid-mail-send.openapi.json is absent")
    # The spec types top-level custom_args as a string (SendGrid takes an object); the
    # transport only uses the per-personalization object, which the spec types right.
    body = raw_spec("sendgrid")["components"]["requestBodies"]["PostMailSend"]
    schema = body["content"]["application/json"]["schema"]["properties"]
    assert schema["custom_args"]["type"] == "string"
    per = schema["personalizations"]["items"]["properties"]["custom_args"]
    assert per["type"] == "object"


def test_duplicate_addresses_are_refused_like_sendgrid(fake: SendGridFake) -> None:
    twice = make_messages(1) * 2
    with pytest.raises(PermanentFailure, match="unique"), fake.transport() as transport:
        transport.send_batch(twice)
