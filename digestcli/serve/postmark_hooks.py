"""Postmark webhooks: HTTP Basic credentials (Postmark signs nothing), then one record a POST."""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping
from typing import Any

from digestcli.events import Event
from digestcli.postmark_answers import SUPPRESSIONS, bounce_kind
from digestcli.serve.hookkit import (
    WebhookRefused,
    address,
    iso_from_text,
    obj,
    optional_text,
    parse_json,
    require_key,
    short,
    text,
    when,
)

KEY = "DIGEST_WEBHOOK_PASSWORD"


def read(
    headers: Mapping[str, str], body: bytes, env: Mapping[str, str], now: float
) -> list[Event]:
    """The events of one Postmark webhook POST (Bounce, SpamComplaint, SubscriptionChange...)."""
    password = require_key(env, KEY, "postmark")
    _authenticate(headers.get("authorization", ""), password)
    record = obj(parse_json(body), "the body")
    record_type = optional_text(record, "RecordType")
    event = _event(record_type, record, now)
    return [event] if event is not None else []


def _authenticate(authorization: str, password: str) -> None:
    """Basic credentials whose password is the configured one; the user name is not checked."""
    scheme, _, encoded = authorization.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        raise WebhookRefused(401, "Basic credentials required")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise WebhookRefused(401, "the Basic credentials are not base64") from None
    _, colon, given = decoded.partition(b":")
    if not colon or not hmac.compare_digest(given, password.encode("utf-8")):
        raise WebhookRefused(401, "wrong webhook password")


def _event(record_type: str, record: dict[str, Any], now: float) -> Event | None:
    """One Postmark record as digest's event, or None for records digest has no use for."""
    if record_type in ("Bounce", "SpamComplaint"):
        if record_type == "SpamComplaint":
            kind = "complaint"
        else:
            kind_or_none = bounce_kind(optional_text(record, "Type"), record.get("Inactive"))
            if kind_or_none is None:
                return None
            kind = kind_or_none
        return Event(
            "postmark",
            kind,
            address(text(record, "Email", record_type), f"{record_type} Email"),
            at=when(record.get("BouncedAt"), "BouncedAt", now, iso_from_text),
            detail=short(record.get("Details") or record.get("Description")),
            # Bounce and complaint records carry Postmark's bounce ID, the same on a retry.
            source_id=f"bounce:{_bounce_id(record)}",
        )
    if record_type == "SubscriptionChange":
        if record.get("SuppressSending") is not True:
            # A reactivation: nothing but `subscribers add` makes an address active again.
            return None
        email = address(text(record, "Recipient", record_type), "SubscriptionChange Recipient")
        at = when(record.get("ChangedAt"), "ChangedAt", now, iso_from_text)
        reason = optional_text(record, "SuppressionReason")
        # No event ID here: who, when and on which message make one that a retry repeats.
        return Event(
            "postmark",
            # Anything new is an unsubscribe too: the reader's address is suppressed.
            SUPPRESSIONS.get(reason, "unsubscribe"),
            email,
            at=at,
            detail=short(" ".join(filter(None, (reason, optional_text(record, "Origin"))))),
            source_id=f"subscription:{email}:{at}:{optional_text(record, 'MessageID')}",
        )
    if record_type == "Delivery":
        email = address(text(record, "Recipient", record_type), "Delivery Recipient")
        message_id = text(record, "MessageID", record_type)
        return Event(
            "postmark",
            "delivery",
            email,
            at=when(record.get("DeliveredAt"), "DeliveredAt", now, iso_from_text),
            detail=short(record.get("Details")),
            source_id=f"delivery:{message_id}:{email}",
        )
    return None


def _bounce_id(record: dict[str, Any]) -> str:
    """Postmark's bounce ID (a number) as text, or a 400."""
    value = record.get("ID")
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, bool) or not isinstance(value, int):
        raise WebhookRefused(400, "the bounce record has no ID")
    return str(value)
