"""Postmark: /email/batch against a local server that speaks Postmark's API."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from digestcli.config import TransportSettings
from digestcli.errors import AmbiguousFailure, ConfigError, PermanentFailure
from digestcli.models import BatchKey, Content, MergeText
from digestcli.transports.postmark import PostmarkTransport
from harness.providers import (
    POSTMARK_UNLISTED_FIELDS,
    SECRETS,
    PostmarkFake,
    Reply,
    has_spec,
    make_messages,
    raw_spec,
)


@pytest.fixture
def fake() -> Iterator[PostmarkFake]:
    """A local Postmark."""
    with PostmarkFake() as server:
        yield server


def needs_spec() -> None:
    if not has_spec("postmark"):
        pytest.skip("../shared/specs/postmark-send.swagger2.yaml is absent: no spec validation")


def test_a_batch_goes_out_whole_per_message_and_matches_the_spec(fake: PostmarkFake) -> None:
    messages = make_messages(3)
    with fake.transport() as transport:
        results = transport.send_batch(messages, batch_key=BatchKey("issue-12", "4"))

    assert fake.violations == []
    assert [r.email for r in results] == [m.to.email for m in messages]
    assert all(r.ok and r.provider_id for r in results)
    assert len({r.provider_id for r in results}) == 3
    (request,) = fake.requests
    assert request.path == "/email/batch"
    assert request.headers["x-postmark-server-token"] == SECRETS["postmark"]
    assert request.headers["accept"] == "application/json"
    assert request.headers["content-type"] == "application/json"
    batch = request.json()
    first = batch[0]
    assert first["From"] == "China's Digital Digest <digest@example.org>"
    assert first["To"] == '"Alice <b>Bold</b>" <alice@example.org>'
    assert first["MessageStream"] == "broadcast"
    assert first["ReplyTo"] == "editor@example.org"
    assert first["Tag"] == "issue-12"
    assert first["Metadata"] == {"campaign": "issue-12", "batch": "issue-12:4"}
    assert first["Headers"] == [
        {"Name": "List-Unsubscribe", "Value": dict(messages[0].headers)["List-Unsubscribe"]},
        {"Name": "List-Unsubscribe-Post", "Value": "List-Unsubscribe=One-Click"},
        {"Name": "Message-ID", "Value": "<0.fixed@example.org>"},
    ]
    for message, item, mail in zip(messages, batch, fake.received(), strict=True):
        assert item["HtmlBody"] == message.html()
        assert item["TextBody"] == message.text()
        assert mail["to"] == message.to.email
        assert mail["html"] == message.html()
        assert mail["subject"] == message.subject


def test_the_message_stream_comes_from_the_settings(fake: PostmarkFake) -> None:
    with fake.transport(message_stream="newsletters") as transport:
        transport.send_batch(make_messages(1))
    assert fake.requests[0].json()[0]["MessageStream"] == "newsletters"
    assert "Tag" not in fake.requests[0].json()[0]  # no batch key, no campaign to tag


def test_an_inactive_recipient_fails_alone_inside_a_200(fake: PostmarkFake) -> None:
    fake.inactive("bob@example.net")
    with fake.transport() as transport:
        alice, bob, carol = transport.send_batch(make_messages(3), batch_key=BatchKey("c", "1"))

    assert alice.ok and carol.ok
    assert not bob.ok
    assert bob.permanent and bob.inactive
    assert bob.provider_id is None
    assert bob.error is not None
    assert "inactive" in bob.error and "ErrorCode 406" in bob.error
    assert [m["to"] for m in fake.received()] == ["alice@example.org", "carol@example.com"]


def test_another_error_code_is_a_permanent_failure_for_that_recipient(
    fake: PostmarkFake,
) -> None:
    fake.element_errors["carol@example.com"] = (300, "Invalid 'To' address: 'carol'.")
    with fake.transport() as transport:
        *_, carol = transport.send_batch(make_messages(3))
    assert not carol.ok and carol.permanent and not carol.inactive
    assert carol.error == "Postmark: Invalid 'To' address: 'carol'. (ErrorCode 300)"


def test_422_is_permanent_with_postmarks_message(fake: PostmarkFake) -> None:
    fake.script(fake.error(422))
    with pytest.raises(PermanentFailure) as caught, fake.transport() as transport:
        transport.send_batch(make_messages(2))
    assert str(caught.value) == (
        "Postmark rejected the batch (HTTP 422): Invalid 'From' address: 'nobody'. (ErrorCode 300)"
    )


def test_401_names_the_token_variable(fake: PostmarkFake) -> None:
    with (
        pytest.raises(ConfigError) as caught,
        fake.transport(env={"DIGEST_POSTMARK_TOKEN": "nope"}) as transport,
    ):
        transport.send_batch(make_messages(1))
    assert str(caught.value) == (
        "Postmark refused the credentials (HTTP 401: Request does not contain a valid Server "
        "token. (ErrorCode 10)); check DIGEST_POSTMARK_TOKEN."
    )


def test_a_200_that_cannot_be_read_is_ambiguous(fake: PostmarkFake) -> None:
    fake.script(Reply(200, b"<html>proxy page</html>", {"Content-Type": "text/html"}, process=True))
    with pytest.raises(AmbiguousFailure, match="not JSON"), fake.transport() as transport:
        transport.send_batch(make_messages(2))


def test_a_200_with_the_wrong_number_of_answers_is_ambiguous(fake: PostmarkFake) -> None:
    fake.script(Reply(200, b'[{"ErrorCode": 0, "MessageID": "x"}]', process=True))
    with pytest.raises(AmbiguousFailure, match="unreadable"), fake.transport() as transport:
        transport.send_batch(make_messages(2))


def test_a_batch_over_50_mb_is_refused_before_sending() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, json=[])

    big = Content("S", "a@example.org", MergeText(("x" * 26_000_000,)), MergeText(("y",)))
    settings = TransportSettings(kind="postmark")
    transport = PostmarkTransport(
        settings, {"DIGEST_POSTMARK_TOKEN": "t"}, http=httpx.MockTransport(handler)
    )
    with pytest.raises(PermanentFailure, match=r"50 MB.*batch_size"), transport:
        transport.send_batch(make_messages(2, content=big))
    assert calls == []


# ----- the spec ------------------------------------------------------------------------------


def test_the_fake_enforces_the_spec(fake: PostmarkFake) -> None:
    needs_spec()
    token = {"X-Postmark-Server-Token": fake.secret, "Accept": "application/json"}
    bad = [{"From": "a@example.org", "To": "b@example.org", "Subject": "s", "TrackOpens": "yes"}]
    response = httpx.post(fake.url + "/email/batch", json=bad, headers=token)
    assert response.status_code == 422
    assert any("'yes' is not of type 'boolean'" in v for v in fake.violations)


def test_the_spec_gap_fields_are_the_only_unlisted_ones_accepted(fake: PostmarkFake) -> None:
    needs_spec()
    # Postmark's 2017 spec predates MessageStream and Metadata; the fake accepts those two
    # as providers.md documents them, and refuses any other unlisted field (a typo).
    listed = raw_spec("postmark")["definitions"]["SendEmailRequest"]["properties"]
    assert not POSTMARK_UNLISTED_FIELDS & set(listed), "the spec caught up: drop the overlay"
    token = {"X-Postmark-Server-Token": fake.secret, "Accept": "application/json"}
    typo = [{"From": "a@example.org", "To": "b@example.org", "Subject": "s", "HTMLBody": "x"}]
    response = httpx.post(fake.url + "/email/batch", json=typo, headers=token)
    assert response.status_code == 422
    assert fake.violations == ["message 0: unknown fields ['HTMLBody']"]


def test_a_missing_token_header_is_refused_like_postmark(fake: PostmarkFake) -> None:
    response = httpx.post(
        fake.url + "/email/batch", json=[], headers={"Accept": "application/json"}
    )
    assert response.status_code == 401
    assert response.json()["ErrorCode"] == 10
