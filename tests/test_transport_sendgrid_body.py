"""SendGrid's body, each personalization encoded on its own, is json_body of the payload."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from digestcli.config import TransportSettings
from digestcli.message import build_message
from digestcli.models import BatchKey, Recipient
from digestcli.transports.payload import json_body
from digestcli.transports.sendgrid import SendGridTransport
from harness.providers import UNSUBSCRIBE, make_content
from harness.readers import readers as _readers

_NONCE = re.compile(rb"-([0-9a-f]{16})-")


@given(
    readers=_readers,
    test=st.booleans(),
    key=st.sampled_from([None, BatchKey("issue-12", "3", "n0"), BatchKey('é "q"', "1")]),
    asm=st.sampled_from([None, 42]),
)
def test_the_lean_body_is_the_json_of_the_whole_payload(
    readers: list[Recipient], test: bool, key: BatchKey | None, asm: int | None
) -> None:
    content = make_content()
    messages = [
        build_message(
            content,
            reader,
            token=f"tok{i}",
            unsubscribe=UNSUBSCRIBE,
            test=test and i % 2 == 1,  # some subjects differ from the first
            message_id=f"<{i}@example.org>",
        )
        for i, reader in enumerate(readers)
    ]
    settings = TransportSettings(kind="sendgrid", asm_group_id=asm)
    transport = SendGridTransport(settings, {})
    lean = transport.body(messages, key)
    whole = json_body(transport.payload(messages, key))
    # Each call draws its own random tag nonce: compare with the lean body's put in.
    nonce = _NONCE.search(lean)
    other = _NONCE.search(whole)
    if nonce and other:
        whole = whole.replace(other[1], nonce[1])
    assert lean == whole
