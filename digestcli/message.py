"""From a rendered issue and a recipient: the message, its headers and its MIME bytes."""

from __future__ import annotations

import email.policy
import email.utils
import functools
import hashlib
import re
import secrets
import time
from collections.abc import Mapping
from email.message import EmailMessage
from urllib.parse import quote, unquote_plus, urlencode, urlsplit, urlunsplit

from digestcli.config import Unsubscribe
from digestcli.errors import DraftError
from digestcli.models import Content, Message, Recipient

TEST_PREFIX = "[TEST] "
_URL_SAFE = re.compile(r"[A-Za-z0-9_.\-]*")
# SMTP line endings, folding only past RFC 5322's hard limit: a long List-Unsubscribe URL must
# stay a plain header (an RFC 2047-encoded one breaks one-click unsubscribe).
_POLICY = email.policy.SMTP.clone(max_line_length=998)


def check_header(name: str, value: str) -> str:
    """Refuse a header value with a line break, which could inject headers."""
    if "\r" in value or "\n" in value:
        raise DraftError(f"the {name} header would contain a line break; remove it before sending.")
    return value


# Each base URL's cut (below), looked up once per recipient. A plain dict: behind an lru_cache
# the lookup made unsubscribe_url a tenth slower than the string concatenation it replaced.
_CUTS: dict[str, tuple[str, str]] = {}


def _cut(base: str) -> tuple[str, str]:
    """Split the base URL where the token's value goes: what comes before it, and after it."""
    parts = urlsplit(base)
    # The base's own parameters stay as written, in order; a token= of its own gives way to ours.
    kept = [
        field
        for field in parts.query.split("&")
        if field and unquote_plus(field.partition("=")[0]) != "token"
    ]
    head = urlunsplit(parts._replace(query="&".join([*kept, "token="]), fragment=""))
    # The fragment stays last: a token after the '#' never reaches the server.
    cut = head, f"#{parts.fragment}" if parts.fragment else ""
    if len(_CUTS) >= 64:  # one base per send; only tests see many
        _CUTS.clear()
    _CUTS[base] = cut
    return cut


def unsubscribe_url(base: str, token: str) -> str:
    """The reader's one-click unsubscribe URL: the configured URL with token= in its query."""
    head, tail = _CUTS.get(base) or _cut(base)
    # Tokens are URL-safe base64 and a dot; anything else is encoded (cheap path first).
    value = token if _URL_SAFE.fullmatch(token) else urlencode({"token": token})[6:]
    return f"{head}{value}{tail}"


def recipient_values(recipient: Recipient, unsubscribe: str | None) -> dict[str, str]:
    """The merge values for one recipient (raw; escaped by the part that uses them).

    unsubscribe is None when the provider's link fills that slot for every reader.
    """
    values = {"email": recipient.email, "name": recipient.name}
    if unsubscribe is not None:
        values["unsubscribe_url"] = unsubscribe
    for key, value in recipient.fields.items():
        values[f"fields.{key}"] = value
    return values


@functools.lru_cache(maxsize=64)  # called once per recipient with the same From
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


def unsubscribe_headers(url: str, token: str, mailto: str | None) -> tuple[tuple[str, str], ...]:
    """A list send's List-Unsubscribe (the link, and a mailto if configured) and its -Post."""
    targets = f"<{url}>"
    if mailto:
        safe = _URL_SAFE.fullmatch(token)  # the usual case; quote() is slow per recipient
        subject = f"unsubscribe%20{token}" if safe else quote(f"unsubscribe {token}")
        targets += f", <mailto:{mailto}?subject={subject}>"
    return (
        ("List-Unsubscribe", targets),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
    )


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
    """One recipient's message: values, List-Unsubscribe headers (list sends), Message-ID.

    In provider mode the provider adds the headers and its own link, so neither comes from here.
    """
    url = None if unsubscribe.by_provider else unsubscribe_url(unsubscribe.url, token)
    headers: tuple[tuple[str, str], ...] = ()
    if list_send and not test and url is not None:
        headers = unsubscribe_headers(url, token, unsubscribe.mailto)
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
        headers=headers,
    )


# RFC 5322 specials: a display name holding any of them must be a quoted string.
_SPECIALS = frozenset('()<>@,:;.\\"[]')


def to_header(recipient: Recipient) -> str:
    """The To header value: `Name <address>`, the name quoted when it needs to be.

    Built by hand (as email.headerregistry.Address would print it) because it runs once per
    recipient and must not choke on an internationalised address; MIME encoding of a
    non-ASCII name happens when the message is serialised.
    """
    name = recipient.name
    if not name:
        return recipient.email
    if not _SPECIALS.isdisjoint(name):
        name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{name} <{recipient.email}>"


def to_mime(message: Message, *, date: float | None = None) -> EmailMessage:
    """The standards-correct multipart/alternative message (text, then HTML)."""
    content = message.content
    # An internationalised address needs SMTPUTF8 (RFC 6531): UTF-8 headers, not encoded words.
    policy = _POLICY if message.to.email.isascii() else _POLICY.clone(utf8=True)
    mime = EmailMessage(policy=policy)
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
