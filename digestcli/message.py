"""From a rendered issue and a recipient: the message, its headers and its MIME bytes."""

from __future__ import annotations

import email.policy
import email.utils
import hashlib
import secrets
import time
from collections.abc import Mapping
from email.headerregistry import Address
from email.message import EmailMessage
from urllib.parse import quote, urlencode

from digestcli.config import Unsubscribe
from digestcli.errors import DraftError
from digestcli.models import Content, Message, Recipient

TEST_PREFIX = "[TEST] "
# SMTP line endings, folding only past RFC 5322's hard limit: a long List-Unsubscribe URL must
# stay a plain header (an RFC 2047-encoded one breaks one-click unsubscribe).
_POLICY = email.policy.SMTP.clone(max_line_length=998)


def check_header(name: str, value: str) -> str:
    """Refuse a header value with a line break, which could inject headers."""
    if "\r" in value or "\n" in value:
        raise DraftError(f"the {name} header would contain a line break; remove it before sending.")
    return value


def unsubscribe_url(base: str, token: str) -> str:
    """The reader's one-click unsubscribe URL: the configured URL plus ?token=."""
    joiner = "&" if "?" in base else "?"
    return f"{base}{joiner}{urlencode({'token': token})}"


def recipient_values(recipient: Recipient, unsubscribe: str) -> dict[str, str]:
    """The merge values for one recipient (raw; escaped by the part that uses them)."""
    values = {"email": recipient.email, "name": recipient.name, "unsubscribe_url": unsubscribe}
    for key, value in recipient.fields.items():
        values[f"fields.{key}"] = value
    return values


def sender_domain(from_addr: str) -> str:
    """The domain of the From address, for Message-IDs."""
    _, addr = email.utils.parseaddr(from_addr)
    return addr.rpartition("@")[2] or "localhost"


def make_message_id(domain: str, seed: str | None = None) -> str:
    """A unique Message-ID on the sender's domain; the same seed always gives the same ID."""
    if seed is None:
        return f"<{int(time.time())}.{secrets.token_hex(12)}@{domain}>"
    # Deterministic per (campaign, recipient): a re-sent batch is byte-identical, which an
    # idempotent provider requires, and receivers can drop a duplicate by its Message-ID.
    return f"<{hashlib.sha256(seed.encode()).hexdigest()[:32]}@{domain}>"


def build_message(
    content: Content,
    recipient: Recipient,
    *,
    token: str,
    unsubscribe: Unsubscribe,
    list_send: bool = True,
    test: bool = False,
    message_id: str | None = None,
) -> Message:
    """One recipient's message: values, List-Unsubscribe headers (list sends), Message-ID."""
    url = unsubscribe_url(unsubscribe.url, token)
    headers: list[tuple[str, str]] = []
    if list_send and not test:
        targets = [f"<{url}>"]
        if unsubscribe.mailto:
            subject = quote(f"unsubscribe {token}")
            targets.append(f"<mailto:{unsubscribe.mailto}?subject={subject}>")
        headers.append(("List-Unsubscribe", ", ".join(targets)))
        headers.append(("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
    subject = (TEST_PREFIX if test else "") + content.subject
    check_header("Subject", subject)
    check_header("To", recipient.email)
    check_header("To", recipient.name)
    return Message(
        content=content,
        to=recipient,
        subject=subject,
        message_id=message_id or make_message_id(sender_domain(content.from_addr)),
        values=recipient_values(recipient, url),
        headers=tuple(headers),
    )


def to_header(recipient: Recipient) -> str:
    """The To header value, with an encoded display name when there is one."""
    if not recipient.name:
        return recipient.email
    return str(Address(display_name=recipient.name, addr_spec=recipient.email))


def to_mime(message: Message, *, date: float | None = None) -> EmailMessage:
    """The standards-correct multipart/alternative message (text, then HTML)."""
    content = message.content
    mime = EmailMessage(policy=_POLICY)
    fixed: Mapping[str, str | None] = {
        "From": content.from_addr,
        "To": to_header(message.to),
        "Subject": message.subject,
        "Date": email.utils.formatdate(date, localtime=False),
        "Message-ID": message.message_id,
        "Reply-To": content.reply_to,
    }
    for name, value in (*fixed.items(), *message.headers):
        if value:
            mime[name] = check_header(name, value)
    mime["MIME-Version"] = "1.0"
    mime.set_content(message.text(), subtype="plain", charset="utf-8", cte="quoted-printable")
    mime.add_alternative(message.html(), subtype="html", charset="utf-8", cte="quoted-printable")
    return mime


def to_bytes(message: Message, *, date: float | None = None) -> bytes:
    """The message as bytes with CRLF line endings, ready for SMTP or a .eml file."""
    return to_mime(message, date=date).as_bytes()
