"""What a far side received, normalised: the dict shape every harness returns."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from typing import Any

# {"to", "subject", "text", "html", "headers"}: see the harness package docstring.
Received = dict[str, Any]


def parse_eml(raw: bytes, to: str) -> Received:
    """Normalise a MIME message; fails unless it is text/plain then text/html alternatives."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    assert message.get_content_type() == "multipart/alternative", message.get_content_type()
    parts = list(message.iter_parts())
    types = [part.get_content_type() for part in parts]
    assert types == ["text/plain", "text/html"], f"parts out of shape: {types}"
    text, html = (_body(part) for part in parts)
    return {
        "to": to,
        "subject": str(message["subject"]),
        "text": text,
        "html": html,
        "headers": {name.lower(): str(value) for name, value in message.items()},
    }


def _body(part: Any) -> str:
    assert isinstance(part, EmailMessage)
    assert part.get_content_charset() == "utf-8", part.get_content_charset()
    content: str = part.get_content()
    return content.replace("\r\n", "\n")
