"""One contract, every transport: what a reader receives is what digest rendered for them."""

from __future__ import annotations

import pytest

from digestcli.config import Unsubscribe
from digestcli.message import build_message
from digestcli.models import BatchKey, Content, MergeText, Message, Recipient
from harness import HARNESSES

UNSUBSCRIBE = Unsubscribe(url="https://example.org/unsubscribe", mailto="unsubscribe@example.org")

SUBJECT = "中国数字周报 第 12 期 🚀 AI, chips & 5G"

CONTENT = Content(
    subject=SUBJECT,
    from_addr="China's Digital Digest <digest@example.org>",
    reply_to="editor@example.org",
    text=MergeText(
        (
            "Hello ",
            "name",
            ",\n\nThis week: 深度学习 🤖. Literal text stays literal: %recipient.email% "
            "and {{ 7*7 }} and {% if x %}.\n\nSent to ",
            "email",
            ". Unsubscribe: ",
            "unsubscribe_url",
            "\n",
        )
    ),
    html=MergeText(
        (
            '<!DOCTYPE html><html><body><p style="color:#333">Hello ',
            "name",
            ",</p><p>This week: 深度学习 🤖. Literal text stays literal: %recipient.email% "
            "and {{ 7*7 }} and {% if x %}.</p><p>Sent to ",
            "email",
            '. <a href="',
            "unsubscribe_url",
            '">Unsubscribe</a></p></body></html>',
        )
    ),
)

RECIPIENTS = (
    Recipient("alice@example.org", "Alice <b>Bold</b>"),
    Recipient("bob@example.net", "Bob & Co"),
    Recipient("carol@example.com", "卡罗尔 🌸"),
)


def _messages(*, test: bool = False) -> list[Message]:
    return [
        build_message(
            CONTENT,
            recipient,
            token=f"token-{recipient.email.split('@')[0]}",
            unsubscribe=UNSUBSCRIBE,
            test=test,
        )
        for recipient in RECIPIENTS
    ]


def _body(text: str) -> str:
    # MIME adds a final newline to text parts; an API body arrives as it was given.
    return text.replace("\r\n", "\n").rstrip("\n")


@pytest.fixture(params=sorted(HARNESSES))
def harness_name(request: pytest.FixtureRequest) -> str:
    """Each registered harness in turn."""
    name: str = request.param
    return name


def test_a_batch_arrives_intact_once_each_in_order(harness_name: str) -> None:
    messages = _messages()
    with HARNESSES[harness_name]() as (transport, received):
        with transport:
            results = transport.send_batch(messages, batch_key=BatchKey("contract-1", "1"))
        got = received()

    assert [r.email for r in results] == [r.email for r in RECIPIENTS]
    assert all(r.ok for r in results), results
    assert all(r.provider_id for r in results), results
    assert [g["to"] for g in got] == [r.email for r in RECIPIENTS]
    for message, mail in zip(messages, got, strict=True):
        assert mail["subject"] == SUBJECT
        assert _body(mail["text"]) == _body(message.text())
        assert _body(mail["html"]) == _body(message.html())
        headers = mail["headers"]
        assert headers["list-unsubscribe"] == dict(message.headers)["List-Unsubscribe"]
        assert headers["list-unsubscribe-post"] == "List-Unsubscribe=One-Click"


def test_personal_values_are_escaped_and_literals_survive(harness_name: str) -> None:
    with HARNESSES[harness_name]() as (transport, received):
        with transport:
            transport.send_batch(_messages(), batch_key=BatchKey("contract-2", "1"))
        alice, bob, carol = received()

    assert "Hello Alice &lt;b&gt;Bold&lt;/b&gt;," in alice["html"]
    assert "<b>" not in alice["html"]
    assert "Hello Alice <b>Bold</b>," in alice["text"]
    assert "Hello Bob &amp; Co," in bob["html"]
    assert "Hello 卡罗尔 🌸," in carol["text"]
    for mail in (alice, bob, carol):
        for part in (mail["text"], mail["html"]):
            assert "%recipient.email%" in part
            assert "{{ 7*7 }}" in part
            assert "{% if x %}" in part
            assert "49" not in part
            assert f"Sent to {mail['to']}." in part
    # Each reader's own one-click link, in the header and in the body.
    for mail, name in ((alice, "alice"), (bob, "bob"), (carol, "carol")):
        url = f"https://example.org/unsubscribe?token=token-{name}"
        assert mail["headers"]["list-unsubscribe"].startswith(f"<{url}>, <mailto:")
        assert url in mail["text"]
        assert f'href="{url}"' in mail["html"]


def test_a_test_send_has_the_prefix_and_no_list_headers(harness_name: str) -> None:
    (message, *_) = _messages(test=True)
    with HARNESSES[harness_name]() as (transport, received):
        with transport:
            (result,) = transport.send_batch([message])
        (mail,) = received()

    assert result.ok
    assert result.email == "alice@example.org"
    assert mail["to"] == "alice@example.org"
    assert mail["subject"] == "[TEST] " + SUBJECT
    assert "list-unsubscribe" not in mail["headers"]
    assert "list-unsubscribe-post" not in mail["headers"]


def test_an_empty_batch_sends_nothing(harness_name: str) -> None:
    with HARNESSES[harness_name]() as (transport, received):
        with transport:
            assert transport.send_batch([], batch_key=BatchKey("contract-3", "1")) == []
        assert received() == []
