"""Postmark's and Resend's bodies, shared fields encoded once a batch, are the dicts' JSON."""

from __future__ import annotations

import dataclasses

from hypothesis import given
from hypothesis import strategies as st

from digestcli.config import TransportSettings
from digestcli.message import build_message
from digestcli.models import BatchKey, Message, Recipient
from digestcli.transports.payload import batch_labels
from digestcli.transports.postmark import PostmarkTransport
from digestcli.transports.resend import ResendTransport
from harness.providers import UNSUBSCRIBE, make_content
from harness.readers import readers as _readers

_keys = st.sampled_from([None, BatchKey("issue-12", "3", "n0"), BatchKey('é "q" ' * 20, "1")])


def _messages(readers: list[Recipient], test: bool, reply_to: bool, mixed: bool) -> list[Message]:
    content = make_content()
    if not reply_to:
        content = dataclasses.replace(content, reply_to=None)
    other = dataclasses.replace(content, from_addr="Other <o@example.org>")
    return [
        build_message(
            other if mixed and i == 1 else content,
            reader,
            token=f"tok{i}",
            unsubscribe=UNSUBSCRIBE,
            test=test and i % 2 == 1,  # some subjects differ, and carry no List-Unsubscribe
            message_id=f"<{i}@example.org>",
        )
        for i, reader in enumerate(readers)
    ]


@given(
    readers=_readers,
    test=st.booleans(),
    reply_to=st.booleans(),
    mixed=st.booleans(),
    key=_keys,
    stream=st.sampled_from(["", "outbound", "ström"]),
)
def test_a_postmark_body_is_the_json_of_its_payloads(
    readers: list[Recipient],
    test: bool,
    reply_to: bool,
    mixed: bool,
    key: BatchKey | None,
    stream: str,
) -> None:
    messages = _messages(readers, test, reply_to, mixed)
    transport = PostmarkTransport(TransportSettings(kind="postmark", message_stream=stream), {})
    campaign, batch = batch_labels(key)
    whole = transport.encoder.body(
        [
            (
                transport.payload(m, campaign, batch, bodies=False),
                transport.encoder.parts(m, "HtmlBody", "TextBody"),
            )
            for m in messages
        ]
    )
    assert bytes(transport.body(messages, key)) == bytes(whole)


@given(readers=_readers, test=st.booleans(), reply_to=st.booleans(), mixed=st.booleans(), key=_keys)
def test_a_resend_body_is_the_json_of_its_payloads(
    readers: list[Recipient], test: bool, reply_to: bool, mixed: bool, key: BatchKey | None
) -> None:
    messages = _messages(readers, test, reply_to, mixed)
    transport = ResendTransport(TransportSettings(kind="resend"), {})
    campaign, _ = batch_labels(key)
    whole = transport.encoder.body(
        [
            (
                transport.payload(m, campaign, bodies=False),
                transport.encoder.parts(m, "html", "text"),
            )
            for m in messages
        ]
    )
    assert bytes(transport.body(messages, key)) == bytes(whole)
