"""A send's messages, built with the campaign's shared parts worked out once, are unchanged."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from hypothesis import given
from hypothesis import strategies as st

from digestcli.config import Unsubscribe
from digestcli.errors import DraftError
from digestcli.journal import Campaign, Delivery, reference
from digestcli.models import Message, Recipient
from digestcli.sending import CampaignMessages, campaign_message
from harness.providers import make_content

_text = st.text(max_size=10)
_readers = st.builds(
    Recipient,
    st.from_regex(r"[A-Za-z0-9.+]{1,8}@[a-z]{1,5}\.(org|例え)", fullmatch=True),
    _text,
    st.dictionaries(st.sampled_from(["city", "plan"]), _text, max_size=2),
)
_unsubscribes = st.sampled_from(
    [
        Unsubscribe("https://example.org/u"),
        Unsubscribe("https://example.org/u?list=a&token=old#top", mailto="stop@example.org"),
        Unsubscribe("", mode="provider"),
    ]
)


def _campaign(nonce: str, key: str) -> Campaign:
    return Campaign(1, key, "issue.md", "h", "weekly", "sendgrid", "t", None, nonce)


def _outcome(build: Callable[[], Message]) -> Message | str:
    try:
        return build()
    except DraftError as exc:
        return str(exc)


@given(
    reader=_readers,
    seq=st.integers(min_value=1, max_value=10**6),
    nonce=st.sampled_from(["", "0123456789abcdef"]),
    key=st.sampled_from(["issue.md:weekly", "Ünï code:list"]),
    unsubscribe=_unsubscribes,
    subject=st.sampled_from(["Weekly 🚀", "Bad\nsubject"]),
    message_ids=st.booleans(),
)
def test_each_message_is_the_one_campaign_message_builds(
    reader: Recipient,
    seq: int,
    nonce: str,
    key: str,
    unsubscribe: Unsubscribe,
    subject: str,
    message_ids: bool,
) -> None:
    content = dataclasses.replace(make_content(), subject=subject)
    campaign = _campaign(nonce, key)
    delivery = Delivery(seq, reader, None, None, 0)
    maker = CampaignMessages(
        content, campaign, secret=b"k", unsubscribe=unsubscribe, message_ids=message_ids
    )
    expected = _outcome(
        lambda: campaign_message(
            content,
            reader,
            campaign_key=key,
            list_name=campaign.list,
            secret=b"k",
            unsubscribe=unsubscribe,
            reference=reference(campaign, seq) if nonce else "",
        )
    )
    if not message_ids and not isinstance(expected, str):
        expected = dataclasses.replace(expected, message_id="")
    assert _outcome(lambda: maker(delivery)) == expected
