"""SendGrid's Signed Event Webhook: ECDSA P-256 over timestamp + body, then a batch of events."""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from digestcli.events import Event
from digestcli.serve.hookkit import (
    WebhookRefused,
    address,
    check_fresh,
    header,
    iso_from_unix,
    obj,
    optional_text,
    parse_json,
    require_key,
    short,
    text,
    unusable_key,
    when,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey

KEY = "DIGEST_SENDGRID_WEBHOOK_KEY"
SIGNATURE = "x-twilio-email-event-webhook-signature"
TIMESTAMP = "x-twilio-email-event-webhook-timestamp"

# `event` -> kind for the events that are about the reader; `bounce` is split by its `type`
# (a block is the receiving server refusing this message, not the address dying), `dropped`
# by its `reason` below. deferred is left out: SendGrid is still retrying, and the outcome
# comes later as delivered, bounce or dropped.
KINDS = {
    "delivered": "delivery",
    "spamreport": "complaint",
    "unsubscribe": "unsubscribe",
    "group_unsubscribe": "unsubscribe",
}
# A drop for an address already on one of SendGrid's suppression lists says which list;
# other drops (spam content, a bad SMTPAPI header, over quota) are about the message.
DROPPED = {
    "Bounced Address": "bounce",
    "Invalid": "bounce",
    "Spam Reporting Address": "complaint",
    "Unsubscribed Address": "unsubscribe",
}


def read(
    headers: Mapping[str, str], body: bytes, env: Mapping[str, str], now: float
) -> list[Event]:
    """The events of one signed SendGrid Event Webhook POST (a JSON array)."""
    key = require_key(env, KEY, "sendgrid")
    signature = header(headers, SIGNATURE)
    stamp = header(headers, TIMESTAMP)
    check_fresh(stamp, now)
    _verify(key, signature, stamp.encode("ascii") + body)
    batch = parse_json(body)
    if not isinstance(batch, list):
        raise WebhookRefused(400, "the body is not a JSON array of events")
    events = []
    for index, item in enumerate(batch):
        event = _event(obj(item, f"event {index}"), index, now)
        if event is not None:
            events.append(event)
    return events


def _verify(key: str, signature: str, signed: bytes) -> None:
    """An ECDSA-SHA256 signature (base64 DER) by the configured key over signed, or a 401."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    public = _public_key(key)
    try:
        der = base64.b64decode(signature, validate=True)
        public.verify(der, signed, ec.ECDSA(hashes.SHA256()))
    except (binascii.Error, ValueError, InvalidSignature):
        raise WebhookRefused(401, "the signature does not verify") from None


@functools.lru_cache(maxsize=4)
def _public_key(key: str) -> EllipticCurvePublicKey:
    """The P-256 key SendGrid shows (base64 DER; PEM armour is tolerated), or a 404."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    lines = [line for line in key.splitlines() if not line.startswith("-----")]
    try:
        public = load_der_public_key(base64.b64decode("".join("".join(lines).split())))
    except (binascii.Error, ValueError, TypeError, UnsupportedAlgorithm):
        public = None
    if not isinstance(public, ec.EllipticCurvePublicKey) or public.curve.name != "secp256r1":
        raise unusable_key(KEY, "sendgrid", "the base64 DER P-256 public key SendGrid shows")
    return public


def _event(item: dict[str, Any], index: int, now: float) -> Event | None:
    """One SendGrid event as digest's event, or None for events digest has no use for."""
    name = optional_text(item, "event")
    reason = optional_text(item, "reason")
    if name == "bounce":
        kind: str | None = "soft_bounce" if optional_text(item, "type") == "blocked" else "bounce"
    elif name == "dropped":
        kind = DROPPED.get(reason)
    else:
        kind = KINDS.get(name)
    if kind is None:
        return None
    what = f"event {index} ({name})"
    return Event(
        "sendgrid",
        kind,
        address(text(item, "email", what), f"{what} email"),
        at=when(item.get("timestamp"), f"{what} timestamp", now, iso_from_unix),
        detail=short(reason or item.get("response")),
        # Older drop events carry no sg_event_id: then the event's content is its key.
        source_id=optional_text(item, "sg_event_id"),
    )
