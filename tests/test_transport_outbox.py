"""The outbox transport: one readable .eml file per recipient, under the campaign's folder."""

from __future__ import annotations

import email
import email.policy
import os
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from pathlib import Path

import pytest

from digestcli.config import Unsubscribe
from digestcli.errors import TemporaryFailure
from digestcli.message import build_message
from digestcli.models import BatchKey, Content, MergeText, Message, Recipient
from digestcli.transports import transport_class
from digestcli.transports.outbox import OutboxTransport, campaign_folder, recipient_slug

UNSUBSCRIBE = Unsubscribe(url="https://example.org/unsubscribe")
CONTENT = Content(
    subject="Weekly 🚀",
    from_addr="Digest <digest@example.org>",
    html=MergeText(("<p>Hi ", "name", "</p>")),
    text=MergeText(("Hi ", "name", "\n")),
)


def _message(email_addr: str, name: str = "", subject: str = "Weekly 🚀") -> Message:
    content = Content(subject, CONTENT.from_addr, CONTENT.html, CONTENT.text)
    return build_message(content, Recipient(email_addr, name), token="tok", unsubscribe=UNSUBSCRIBE)


def _outbox(tmp_path: Path) -> OutboxTransport:
    return OutboxTransport(tmp_path / "outbox")


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_registered_as_the_outbox_kind() -> None:
    assert transport_class("outbox") is OutboxTransport


def test_files_are_numbered_in_order_and_named_by_recipient(tmp_path: Path) -> None:
    transport = _outbox(tmp_path)
    results = transport.send_batch(
        [_message("alice@example.org"), _message("Bob@Example.NET")], batch_key=BatchKey("7", "1")
    )
    results += transport.send_batch([_message("carol@example.com")], batch_key=BatchKey("7", "2"))

    folder = tmp_path / "outbox" / "7"
    assert _names(folder) == [
        "000001-alice@example.org.eml",
        "000002-bob@example.net.eml",
        "000003-carol@example.com.eml",
    ]
    assert [r.email for r in results] == [
        "alice@example.org",
        "Bob@Example.NET",
        "carol@example.com",
    ]
    assert all(r.ok for r in results)
    assert [r.provider_id for r in results] == [str(folder / n) for n in _names(folder)]


def test_files_parse_as_the_message_that_was_sent(tmp_path: Path) -> None:
    message = _message("alice@example.org", name="Alice <b>")
    (result,) = _outbox(tmp_path).send_batch([message], batch_key=BatchKey("c", "1"))

    assert result.provider_id is not None
    parsed = email.message_from_bytes(
        Path(result.provider_id).read_bytes(), policy=email.policy.default
    )
    assert isinstance(parsed, EmailMessage)
    assert parsed["Subject"] == "Weekly 🚀"
    assert parsed["Message-ID"] == message.message_id
    assert parsed["To"].addresses[0].display_name == "Alice <b>"
    text = parsed.get_body(("plain",))
    html = parsed.get_body(("html",))
    assert text is not None and html is not None
    assert text.get_content().replace("\r\n", "\n") == "Hi Alice <b>\n"
    assert html.get_content().replace("\r\n", "\n") == "<p>Hi Alice &lt;b&gt;</p>\n"
    assert parsed["List-Unsubscribe"] == "<https://example.org/unsubscribe?token=tok>"


def test_a_resend_overwrites_the_recipients_file(tmp_path: Path) -> None:
    transport = _outbox(tmp_path)
    transport.send_batch(
        [_message("alice@example.org"), _message("bob@example.net")], batch_key=BatchKey("c", "1")
    )
    # A retry of bob, then alice, from a new run: same files, no duplicates, new content.
    again = _outbox(tmp_path)
    retried = again.send_batch(
        [
            _message("BOB@example.net", subject="Second"),
            _message("alice@example.org", subject="Second"),
        ],
        batch_key=BatchKey("c", "9"),
    )
    again.send_batch([_message("dave@example.org")], batch_key=BatchKey("c", "10"))

    folder = tmp_path / "outbox" / "c"
    assert _names(folder) == [
        "000001-alice@example.org.eml",
        "000002-bob@example.net.eml",
        "000003-dave@example.org.eml",
    ]
    assert [r.provider_id for r in retried] == [
        str(folder / "000002-bob@example.net.eml"),
        str(folder / "000001-alice@example.org.eml"),
    ]
    for name in _names(folder)[:2]:
        assert b"Subject: Second\r\n" in (folder / name).read_bytes()


def test_worker_threads_each_with_a_transport_share_the_numbering(tmp_path: Path) -> None:
    # The send engine gives every worker thread its own transport instance.
    emails = [f"reader{i}@example.org" for i in range(120)]
    batches = [emails[i : i + 15] for i in range(0, len(emails), 15)]

    def send(numbered: tuple[int, list[str]]) -> None:
        number, batch = numbered
        _outbox(tmp_path).send_batch(
            [_message(e) for e in batch], batch_key=BatchKey("c", str(number))
        )

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(send, enumerate(batches)))

    names = _names(tmp_path / "outbox" / "c")
    assert [n[:6] for n in names] == [f"{i:06d}" for i in range(1, 121)]
    assert sorted(n[7:-4] for n in names) == sorted(emails)


def test_writes_are_atomic_and_leave_no_temp_files(tmp_path: Path) -> None:
    transport = _outbox(tmp_path)
    (first,) = transport.send_batch([_message("alice@example.org")], batch_key=BatchKey("c", "1"))
    assert first.provider_id is not None
    path = Path(first.provider_id)
    inode = path.stat().st_ino
    transport.send_batch(
        [_message("alice@example.org", subject="Again")], batch_key=BatchKey("c", "2")
    )

    # os.replace: a new file takes the name in one step, so a reader never sees half of one.
    assert path.stat().st_ino != inode
    assert _names(path.parent) == [path.name]
    assert b"\r\n\r\n" in path.read_bytes()


def test_a_failed_write_leaves_no_temp_file(tmp_path: Path) -> None:
    transport = _outbox(tmp_path)
    (first,) = transport.send_batch([_message("alice@example.org")], batch_key=BatchKey("c", "1"))
    assert first.provider_id is not None
    path = Path(first.provider_id)
    # A directory where the file goes makes os.replace fail once the temp file is written.
    path.unlink()
    path.mkdir()
    with pytest.raises(TemporaryFailure, match="could not write to the outbox folder"):
        transport.send_batch(
            [_message("alice@example.org", subject="New")], batch_key=BatchKey("c", "2")
        )
    assert _names(path.parent) == [path.name]
    assert path.is_dir()


def test_test_sends_without_a_campaign_go_to_the_test_folder(tmp_path: Path) -> None:
    (result,) = _outbox(tmp_path).send_batch([_message("alice@example.org")])
    assert result.provider_id == str(tmp_path / "outbox" / "test" / "000001-alice@example.org.eml")


@pytest.mark.parametrize(
    ("batch_key", "folder"),
    [
        (BatchKey("spring-issue", "3"), "spring-issue"),
        (BatchKey("a:b", "3"), "a_b"),
        (BatchKey("12", "1.2"), "12"),
        (None, "test"),
        (BatchKey("", "1"), "test"),
        (BatchKey("../../etc", "1"), "_.._etc"),
        (BatchKey("..", "1"), "test"),
        (BatchKey("x/y\\z", "1"), "x_y_z"),
    ],
)
def test_campaign_folders_stay_inside_the_outbox(batch_key: BatchKey | None, folder: str) -> None:
    assert campaign_folder(batch_key) == folder


def test_recipient_slugs_are_safe_and_distinct() -> None:
    assert recipient_slug("Alice@Example.org") == "alice@example.org"
    assert recipient_slug('"a/b"@example.org') == "%22a%2Fb%22@example.org"
    assert recipient_slug("a%2Fb@example.org") == "a%252fb@example.org"
    assert recipient_slug("zoë@example.org") == "zo%C3%AB@example.org"
    long = recipient_slug("x" * 64 + "@" + "d" * 180 + ".org")
    assert len(long) == 200
    assert long != recipient_slug("x" * 64 + "@" + "d" * 181 + ".org")


def test_is_idempotent_because_a_resend_overwrites() -> None:
    assert OutboxTransport.capabilities.idempotent


def test_file_mode_keeps_subscriber_data_private(tmp_path: Path) -> None:
    (result,) = _outbox(tmp_path).send_batch(
        [_message("alice@example.org")], batch_key=BatchKey("c", "1")
    )
    assert result.provider_id is not None
    assert os.stat(result.provider_id).st_mode & 0o077 == 0
