"""Mailgun webhooks: an HMAC-SHA256 signature inside the JSON body, then one event a POST."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from digestcli.events import Event
from digestcli.serve.hookkit import (
    WebhookRefused,
    address,
    check_fresh,
    iso_from_unix,
    obj,
    optional_text,
    parse_json,
    require_key,
    short,
    text,
    when,
)

KEY = "DIGEST_MAILGUN_WEBHOOK_KEY"

# `event` -> kind; `failed` is split by severity (and by reason for addresses Mailgun
# already suppresses) below. Opens, clicks, accepted and rejected say nothing about the reader.
KINDS = {"delivered": "delivery", "complained": "complaint", "unsubscribed": "unsubscribe"}
# A permanent failure for an address on one of Mailgun's suppression lists names the list.
SUPPRESSED = {"suppress-unsubscribe": "unsubscribe", "suppress-complaint": "complaint"}


def read(
    headers: Mapping[str, str], body: bytes, env: Mapping[str, str], now: float
) -> list[Event]:
    """The event of one Mailgun webhook POST ({"signature": {...}, "event-data": {...}})."""
    key = require_key(env, KEY, "mailgun")
    # Mailgun signs inside the body, so the JSON is read before it can be verified.
    payload = obj(parse_json(body), "the body")
    _verify(key, payload.get("signature"), now)
    data = obj(payload.get("event-data"), "event-data")
    event = _event(data, now)
    return [event] if event is not None else []


def _verify(key: str, block: object, now: float) -> None:
    """A fresh hex HMAC-SHA256 of timestamp + token under the signing key, or a 401."""
    if not isinstance(block, dict):
        raise WebhookRefused(401, "no signature block")
    stamp, token, signature = (block.get(k) for k in ("timestamp", "token", "signature"))
    if isinstance(stamp, int) and not isinstance(stamp, bool):
        stamp = str(stamp)
    if not (isinstance(stamp, str) and isinstance(token, str) and isinstance(signature, str)):
        raise WebhookRefused(401, "the signature block lacks timestamp, token or signature")
    check_fresh(stamp, now)
    expected = hmac.new(
        key.encode("utf-8"), (stamp + token).encode("utf-8"), hashlib.sha256
    ).hexdigest()
    if not hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8")):
        raise WebhookRefused(401, "the signature does not verify")


def _event(data: dict[str, Any], now: float) -> Event | None:
    """Mailgun's event-data as digest's event, or None for events digest has no use for."""
    name = optional_text(data, "event")
    reason = optional_text(data, "reason")
    if name == "failed":
        if optional_text(data, "severity") == "permanent":
            kind: str | None = SUPPRESSED.get(reason, "bounce")
        else:
            kind = "soft_bounce"
    else:
        kind = KINDS.get(name)
    if kind is None:
        return None
    status = data.get("delivery-status")
    status = status if isinstance(status, dict) else {}
    at = when(data.get("timestamp"), "event-data timestamp", now, iso_from_unix)
    return Event(
        "mailgun",
        kind,
        address(text(data, "recipient", f"the {name} event"), "recipient"),
        at=at,
        detail=short(
            optional_text(status, "description") or optional_text(status, "message") or reason
        ),
        # Mailgun's event id is unique within a day only; with the event's time it is unique.
        source_id=f"{text(data, 'id', f'the {name} event')}@{at}",
    )
