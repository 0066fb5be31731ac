"""Resend: /emails/batch with an Idempotency-Key, against a local server speaking its API."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from digestcli import journal
from digestcli.config import Unsubscribe
from digestcli.errors import AmbiguousFailure, ConfigError, PermanentFailure, TemporaryFailure
from digestcli.models import BatchKey
from digestcli.sending import Sender
from digestcli.transports.payload import Body
from digestcli.transports.resend import ResendTransport, idempotency_key, tag_value
from fakes import content, store
from harness.providers import (
    SECRETS,
    Reply,
    ResendFake,
    has_spec,
    make_content,
    make_messages,
    raw_spec,
)

UNSUBSCRIBE = Unsubscribe("https://example.org/u")


@pytest.fixture
def fake() -> Iterator[ResendFake]:
    """A local Resend."""
    with ResendFake() as server:
        yield server


def _ids(fake: ResendFake, index: int = -1) -> list[str]:
    return [item["id"] for item in json.loads(fake.answered[index].body)["data"]]


def test_a_batch_goes_out_with_ids_in_order_and_matches_the_spec(fake: ResendFake) -> None:
    messages = make_messages(3)
    with fake.transport() as transport:
        results = transport.send_batch(messages, batch_key=BatchKey("issue-12", "1"))

    assert fake.violations == []
    assert ResendTransport.capabilities.idempotent is True
    (request,) = fake.requests
    assert request.path == "/emails/batch"
    assert request.headers["authorization"] == f"Bearer {SECRETS['resend']}"
    assert request.headers["x-batch-validation"] == "permissive"
    expected_key = "digest-" + hashlib.sha256(b"issue-12:1").hexdigest()
    assert request.headers["idempotency-key"] == expected_key
    assert [(r.email, r.ok, r.provider_id) for r in results] == [
        (m.to.email, True, i) for m, i in zip(messages, _ids(fake), strict=True)
    ]
    first = request.json()[0]
    assert first["from"] == "China's Digital Digest <digest@example.org>"
    assert first["to"] == ['"Alice <b>Bold</b>" <alice@example.org>']
    assert first["reply_to"] == "editor@example.org"
    assert first["tags"] == [{"name": "campaign", "value": "issue-12"}]
    assert first["headers"] == {
        "List-Unsubscribe": dict(messages[0].headers)["List-Unsubscribe"],
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "Message-ID": "<0.fixed@example.org>",
    }
    for message, mail in zip(messages, fake.received(), strict=True):
        assert mail["to"] == message.to.email
        assert mail["html"] == message.html()
        assert mail["text"] == message.text()


def test_tags_are_sanitised_to_resends_characters(fake: ResendFake) -> None:
    with fake.transport() as transport:
        transport.send_batch(make_messages(1), batch_key=BatchKey("Spring issue #3 — ünï", "1"))
    assert fake.violations == []
    assert fake.requests[0].json()[0]["tags"] == [
        {"name": "campaign", "value": "Spring_issue__3____n_"}
    ]
    assert tag_value("a" * 300) == "a" * 256


def test_a_retry_after_a_dropped_answer_carries_the_same_key_and_sends_once(
    fake: ResendFake,
) -> None:
    # Resend accepted and sent the batch, then the connection died before the answer.
    fake.script(Reply(action="drop", process=True))
    messages = make_messages(3)
    with fake.transport() as transport:
        with pytest.raises(AmbiguousFailure):
            transport.send_batch(messages, batch_key=BatchKey("issue-12", "7"))
        results = transport.send_batch(messages, batch_key=BatchKey("issue-12", "7"))

    first, retry = fake.requests
    assert first.headers["idempotency-key"] == retry.headers["idempotency-key"]
    assert first.body == retry.body
    assert all(r.ok for r in results)
    assert len(fake.received()) == 3  # not 6: the retry was answered from Resend's record
    assert [r.provider_id for r in results] == _ids(fake)


def test_a_new_process_retrying_the_batch_gets_the_first_answer(fake: ResendFake) -> None:
    # A crash after sending: a new transport rebuilds the batch's messages from the journal.
    with fake.transport() as first:
        before = first.send_batch(make_messages(3), batch_key=BatchKey("issue-12", "2"))
    with fake.transport() as second:
        after = second.send_batch(make_messages(3), batch_key=BatchKey("issue-12", "2"))
    assert [r.provider_id for r in after] == [r.provider_id for r in before]
    assert len(fake.received()) == 3


def test_a_changed_batch_under_a_used_key_is_refused_clearly(fake: ResendFake) -> None:
    with fake.transport() as transport:
        transport.send_batch(make_messages(2), batch_key=BatchKey("issue-12", "3"))
        changed = make_messages(2, content=make_content(subject="Edited subject"))
        with pytest.raises(PermanentFailure) as caught:
            transport.send_batch(changed, batch_key=BatchKey("issue-12", "3"))
    message = str(caught.value)
    assert "Idempotency-Key was used in the last 24 hours with a different payload" in message
    assert "nothing was sent again" in message
    assert "invalid_idempotent_request" in message
    assert len(fake.received()) == 2


def test_a_concurrent_attempt_is_temporary(fake: ResendFake) -> None:
    fake.script(fake.error(409, name="concurrent_idempotent_requests"))
    with pytest.raises(TemporaryFailure, match="still processing"), fake.transport() as t:
        t.send_batch(make_messages(1), batch_key=BatchKey("issue-12", "4"))


def test_a_refused_address_fails_alone(fake: ResendFake) -> None:
    fake.refused["bob@example.net"] = "The `to` field must be a valid email address."
    with fake.transport() as transport:
        alice, bob, carol = transport.send_batch(
            make_messages(3), batch_key=BatchKey("issue-12", "5")
        )
    ids = _ids(fake)
    assert (alice.ok, alice.provider_id) == (True, ids[0])
    assert (carol.ok, carol.provider_id) == (True, ids[1])
    assert not bob.ok and bob.permanent
    assert bob.error == "Resend: The `to` field must be a valid email address."
    assert [m["to"] for m in fake.received()] == ["alice@example.org", "carol@example.com"]


def test_422_is_permanent_with_resends_message(fake: ResendFake) -> None:
    fake.script(fake.error(422))
    with pytest.raises(PermanentFailure) as caught, fake.transport() as transport:
        transport.send_batch(make_messages(2))
    assert str(caught.value) == (
        "Resend rejected the batch (HTTP 422): "
        "The `to` field must be a valid email address. (validation_error)"
    )


def test_a_wrong_key_names_the_variable(fake: ResendFake) -> None:
    env = {"DIGEST_RESEND_API_KEY": "re_wrong"}
    with pytest.raises(ConfigError) as caught, fake.transport(env=env) as transport:
        transport.send_batch(make_messages(1))
    assert str(caught.value) == (
        "Resend refused the credentials (HTTP 403: API key is invalid (invalid_api_key)); "
        "check DIGEST_RESEND_API_KEY."
    )


def test_429_waits_for_retry_after_else_the_reset(fake: ResendFake) -> None:
    fake.script(fake.error(429, retry_after=3, reset=9), fake.error(429, reset=9))
    with fake.transport() as transport:
        for expected in (3.0, 9.0):
            with pytest.raises(TemporaryFailure) as caught:
                transport.send_batch(make_messages(1), batch_key=BatchKey("issue-12", "6"))
            assert caught.value.retry_after == expected
            assert "rate_limit_exceeded" in str(caught.value)
    # A refused attempt leaves no record: the key still works.
    with fake.transport() as transport:
        assert transport.send_batch(make_messages(1), batch_key=BatchKey("issue-12", "6"))[0].ok


def test_the_key_is_stable_bounded_and_distinct() -> None:
    key = idempotency_key(BatchKey("issue-12", "1", "n1"), Body([b"body"]))
    assert key == idempotency_key(BatchKey("issue-12", "1", "n1"), Body([b"another body"]))
    assert key != idempotency_key(BatchKey("issue-12", "2", "n1"), Body([b"body"]))
    assert 1 <= len(key) <= 256
    long = idempotency_key(BatchKey("x" * 10_000, "1", "n"), Body([]))
    assert len(long) <= 256
    # No batch key (a test send): the same request body gives the same key.
    assert idempotency_key(None, Body([b"body"])) == idempotency_key(None, Body([b"body"]))
    assert idempotency_key(None, Body([b"body"])) != idempotency_key(None, Body([b"other"]))
    # Campaigns started before nonces existed keep the keys their batches were sent under.
    legacy = "digest-" + hashlib.sha256(b"issue-12:1").hexdigest()
    assert idempotency_key(BatchKey("issue-12", "1"), Body([])) == legacy


def test_two_campaigns_of_the_same_name_never_share_a_key(fake: ResendFake, tmp_path: Path) -> None:
    # Two workspaces (or a store made anew) send draft.md to `default` within Resend's 24 h:
    # the same campaign key, but each campaign has its own random nonce, so Resend sees two
    # keys and sends both (before, the second got a 409 or the first one's answer).
    for workspace in ("first", "second"):
        db = store(tmp_path / workspace / "digest.db", 3)
        campaign = journal.create_campaign(
            db,
            key="draft.md:default",
            draft="draft.md",
            content_hash="h",
            list_name="default",
            transport="resend",
        )
        assert len(campaign.nonce) == 16
        Sender(db, campaign, content(), fake.factory(), secret=b"k", unsubscribe=UNSUBSCRIBE).run()
        db.close()
    first, second = (request.headers["idempotency-key"] for request in fake.requests)
    assert first != second
    assert len(fake.received()) == 6
    assert not fake.violations


def test_the_fake_enforces_the_spec_and_its_gaps(fake: ResendFake) -> None:
    if not has_spec("resend"):
        pytest.skip("../shared/specs/resend.openapi.json is absent")
    auth = {"Authorization": f"Bearer {fake.secret}"}
    no_subject = [{"from": "a@example.org", "to": ["b@example.org"]}]
    assert httpx.post(fake.url + "/emails/batch", json=no_subject, headers=auth).status_code == 400
    assert any("'subject' is a required property" in v for v in fake.violations)

    # Gaps: the spec has no batch maxItems and leaves the tag characters to prose.
    batch_schema = raw_spec("resend")["paths"]["/emails/batch"]["post"]["requestBody"]
    assert "maxItems" not in batch_schema["content"]["application/json"]["schema"]
    fake.violations.clear()
    email = {"from": "a@example.org", "to": ["b@example.org"], "subject": "s", "text": "t"}
    too_many = [email] * 101
    assert httpx.post(fake.url + "/emails/batch", json=too_many, headers=auth).status_code == 400
    bad_tag = [{**email, "tags": [{"name": "campaign", "value": "a b"}]}]
    assert httpx.post(fake.url + "/emails/batch", json=bad_tag, headers=auth).status_code == 400
    assert fake.violations == [
        "a batch holds 1 to 100 emails",
        "email 0: tag value 'a b' may only contain ASCII letters, numbers, underscores, or dashes",
    ]
