"""Mailgun: one multipart request per batch against a local server that speaks Mailgun's API."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import httpx
import pytest

from digestcli.errors import AmbiguousFailure, ConfigError, PermanentFailure, TemporaryFailure
from digestcli.models import BatchKey, Content, MergeText, Message
from digestcli.transports.mailgun import LiteralEscaper
from harness.providers import (
    HTML_MARKER,
    LITERALS,
    SECRETS,
    MailgunFake,
    Reply,
    form_fields,
    has_spec,
    make_content,
    make_messages,
    substitute_recipient,
)

KEY = BatchKey("issue-12", "1")


@pytest.fixture
def fake() -> Iterator[MailgunFake]:
    """A local Mailgun."""
    with MailgunFake() as server:
        yield server


def _form(fake: MailgunFake, index: int = 0) -> list[tuple[str, str]]:
    request = fake.requests[index]
    return form_fields(request.body, request.headers["content-type"])


def _send(fake: MailgunFake, messages: list[Message], key: BatchKey | None = KEY) -> None:
    with fake.transport() as transport:
        results = transport.send_batch(messages, batch_key=key)
    assert all(r.ok for r in results), results


def test_one_request_per_batch_readers_get_their_own_message(fake: MailgunFake) -> None:
    messages = make_messages(5)
    with fake.transport() as transport:
        results = transport.send_batch(messages, batch_key=BatchKey("issue-12", "1"))

    assert fake.violations == []
    (request,) = fake.requests
    assert request.path == "/v3/mg.example.org/messages"
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    basic = base64.b64encode(f"api:{SECRETS['mailgun']}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {basic}"
    (reply,) = fake.answered
    mailgun_id = json.loads(reply.body)["id"]
    assert [(r.email, r.ok, r.provider_id) for r in results] == [
        (m.to.email, True, mailgun_id) for m in messages
    ]
    got = fake.received()
    assert [m["to"] for m in got] == [m.to.email for m in messages]
    for message, mail in zip(messages, got, strict=True):
        assert mail["html"] == message.html()
        assert mail["text"] == message.text()
        assert mail["subject"] == message.subject
        for name, value in message.headers:
            assert mail["headers"][name.lower()] == value
        assert mail["headers"]["reply-to"] == "editor@example.org"


def test_the_form_repeats_to_and_keys_variables_by_address(fake: MailgunFake) -> None:
    messages = make_messages(3)
    _send(fake, messages)
    form = _form(fake)
    names = [name for name, _ in form]
    assert [value for name, value in form if name == "to"] == [
        '"Alice <b>Bold</b>" <alice@example.org>',
        '"Bob \\"the builder\\" & Co" <bob@example.net>',
        "卡罗尔 🌸 <carol@example.com>",
    ]
    for once in ("from", "subject", "text", "html", "recipient-variables"):
        assert names.count(once) == 1, once
    fields = dict(form)
    variables = json.loads(fields["recipient-variables"])
    assert list(variables) == [m.to.email for m in messages]
    assert fields["h:List-Unsubscribe"].startswith("%recipient.")
    assert fields["h:List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert fields["h:Reply-To"] == "editor@example.org"
    assert "h:Message-Id" not in fields  # Mailgun sets it: one id for the request
    assert fields["o:tag"] == "issue-12"
    assert fields["v:campaign"] == "issue-12"
    assert fields["v:batch"] == "issue-12:1"


def test_the_html_travels_once_per_batch(fake: MailgunFake) -> None:
    _send(fake, make_messages(20))
    assert fake.requests[0].body.decode().count(HTML_MARKER) == 1
    assert len(fake.received()) == 20


def test_html_gets_escaped_values_and_text_raw_ones(fake: MailgunFake) -> None:
    _send(fake, make_messages(2))
    fields = dict(_form(fake))
    alice = json.loads(fields["recipient-variables"])["alice@example.org"]
    html_name = next(k for k, v in alice.items() if v == "Alice &lt;b&gt;Bold&lt;/b&gt;")
    text_name = next(k for k, v in alice.items() if v == "Alice <b>Bold</b>")
    assert f"Hello %recipient.{html_name}%" in fields["html"]
    assert f"Hello %recipient.{text_name}%" in fields["text"]
    assert f"%recipient.{text_name}%" not in fields["html"]


def test_literal_recipient_placeholders_are_escaped(fake: MailgunFake) -> None:
    messages = make_messages(3)
    _send(fake, messages)
    fields = dict(_form(fake))
    # Unescaped, Mailgun would have replaced these with a reader's values or nothing.
    for part in ("html", "text"):
        assert "%recipient.email%" not in fields[part]
        assert "%recipient.lit0%email%" in fields[part]
    for message, mail in zip(messages, fake.received(), strict=True):
        assert LITERALS in mail["text"]
        assert mail["html"] == message.html()
        assert mail["text"] == message.text()


def test_a_value_that_looks_like_a_placeholder_is_not_rescanned(fake: MailgunFake) -> None:
    _send(fake, make_messages(2))
    bob = fake.received()[1]
    assert "City: %recipient.t0%" in bob["text"]  # Bob's city, inserted once, kept as is


def test_a_literal_placeholder_in_the_subject_survives(fake: MailgunFake) -> None:
    content = make_content(subject="Your %recipient.name% issue, 100% fresh")
    messages = make_messages(2, content=content)
    _send(fake, messages)
    assert dict(_form(fake))["subject"] != content.subject
    assert [m["subject"] for m in fake.received()] == [content.subject] * 2


def test_different_subjects_in_one_batch_become_a_variable(fake: MailgunFake) -> None:
    messages = make_messages(1) + make_messages(2, test=True)[1:]
    _send(fake, messages)
    assert dict(_form(fake))["subject"] == "%recipient.subject%"
    assert [m["subject"] for m in fake.received()] == [m.subject for m in messages]


def test_the_escape_is_exactly_undone_by_one_substitution_pass() -> None:
    tricky = "%recipient.a% %RECIPIENT.b% %Recipient.% %%recipient.x%% recipient.y% %recipient"
    escape = LiteralEscaper()
    escaped = escape(tricky)
    assert "%recipient.a%" not in escaped
    assert substitute_recipient(escaped, escape.variables) == tricky


def test_a_missing_domain_is_a_config_error_before_any_request(fake: MailgunFake) -> None:
    transport = fake.transport(domain=None)
    with pytest.raises(ConfigError, match=r"\[transport\] domain"):
        transport.open()
    assert fake.requests == []


def test_401_forbidden_names_the_api_key_variable(fake: MailgunFake) -> None:
    env = {"DIGEST_MAILGUN_API_KEY": "wrong"}
    with pytest.raises(ConfigError) as caught, fake.transport(env=env) as transport:
        transport.send_batch(make_messages(1))
    assert str(caught.value) == (
        "Mailgun refused the credentials (HTTP 401: Forbidden); check DIGEST_MAILGUN_API_KEY."
    )


def test_400_is_permanent_with_mailguns_message(fake: MailgunFake) -> None:
    fake.script(fake.error(400))
    with pytest.raises(PermanentFailure) as caught, fake.transport() as transport:
        transport.send_batch(make_messages(2))
    assert str(caught.value) == (
        "Mailgun rejected the batch (HTTP 400): "
        "to parameter is not a valid address. please check documentation"
    )


def test_429_waits_the_seconds_mailgun_names(fake: MailgunFake) -> None:
    fake.script(fake.error(429, seconds=17))
    with pytest.raises(TemporaryFailure) as caught, fake.transport() as transport:
        transport.send_batch(make_messages(1))
    assert caught.value.retry_after == 17.0
    assert "try again after 17 seconds" in str(caught.value)


def test_a_200_without_an_id_is_ambiguous(fake: MailgunFake) -> None:
    fake.script(Reply(200, b'{"message": "Queued. Thank you."}', process=True))
    with pytest.raises(AmbiguousFailure, match="no id"), fake.transport() as transport:
        transport.send_batch(make_messages(2))


def test_a_text_only_slot_and_no_slots_at_all_work(fake: MailgunFake) -> None:
    content = Content(
        "Plain",
        "digest@example.org",
        html=MergeText(("<p>No slots 100%</p>",)),
        text=MergeText(("Hi ", "name", "\n")),
    )
    messages = make_messages(2, content=content)
    _send(fake, messages)
    assert [m["html"] for m in fake.received()] == ["<p>No slots 100%</p>"] * 2
    assert [m["text"] for m in fake.received()] == [m.text() for m in messages]


# ----- the spec ------------------------------------------------------------------------------


def test_the_fake_enforces_the_spec(fake: MailgunFake) -> None:
    if not has_spec("mailgun"):
        pytest.skip("../shared/specs/mailgun.openapi.patched.yaml is absent")
    basic = base64.b64encode(f"api:{fake.secret}".encode()).decode()
    # `from` twice, no `to`: the spec wants one string and a required `to`.
    files = [("from", (None, "a@example.org")), ("from", (None, "b@example.org"))]
    files += [("subject", (None, "s")), ("o:testmode", (None, "no"))]
    response = httpx.post(
        fake.url + "/v3/mg.example.org/messages",
        files=files,
        headers={"Authorization": f"Basic {basic}"},
    )
    assert response.status_code == 400
    problems = " ".join(fake.violations)
    assert "'to' is a required property" in problems
    assert "is not of type 'string'" in problems
    assert "'no' is not one of ['yes']" in problems
