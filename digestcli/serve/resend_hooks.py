"""Resend webhooks, signed by Svix: HMAC-SHA256 over id.timestamp.body, then one event a POST."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from digestcli.events import Event
from digestcli.serve.hookkit import (
    WebhookRefused,
    address,
    check_fresh,
    header,
    iso_from_text,
    obj,
    optional_text,
    parse_json,
    require_key,
    short,
    unusable_key,
    when,
)

KEY = "DIGEST_RESEND_WEBHOOK_SECRET"

# `type` -> kind; email.bounced is split by data.bounce.type below, and a contact update
# counts only when it unsubscribes. email.delivery_delayed is left out: Resend is still
# trying, and the outcome comes later as delivered or bounced.
KINDS = {"email.delivered": "delivery", "email.complained": "complaint"}
# Bounce types that are not (yet) a dead address: counted, soft_limit of them bounce it.
SOFT = frozenset({"Transient", "Undetermined"})


def read(
    headers: Mapping[str, str], body: bytes, env: Mapping[str, str], now: float
) -> list[Event]:
    """The event of one Resend webhook POST, verified by its svix-* headers."""
    secret = _secret(require_key(env, KEY, "resend"))
    message_id = header(headers, "svix-id")
    stamp = header(headers, "svix-timestamp")
    check_fresh(stamp, now)
    _verify(secret, message_id, stamp, header(headers, "svix-signature"), body)
    payload = obj(parse_json(body), "the body")
    event = _event(payload, obj(payload.get("data"), "data"), message_id, now)
    return [event] if event is not None else []


def _secret(configured: str) -> bytes:
    """The HMAC key: the base64 after `whsec_`, decoded, or a 404."""
    encoded = configured.removeprefix("whsec_")
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not key:
        raise unusable_key(KEY, "resend", "the whsec_... signing secret Resend shows")
    return key


def _verify(secret: bytes, message_id: str, stamp: str, signatures: str, body: bytes) -> None:
    """Any `v1,<base64>` entry matching HMAC-SHA256 of id.timestamp.body, or a 401."""
    signed = f"{message_id}.{stamp}.".encode() + body
    expected = base64.b64encode(hmac.new(secret, signed, hashlib.sha256).digest())
    # Several entries while a secret is being rotated; one match is enough.
    for entry in signatures.split():
        version, _, value = entry.partition(",")
        if version == "v1" and hmac.compare_digest(expected, value.encode("utf-8")):
            return
    raise WebhookRefused(401, "the signature does not verify")


def _event(
    payload: dict[str, Any], data: dict[str, Any], message_id: str, now: float
) -> Event | None:
    """One Resend event as digest's event, or None for events digest has no use for."""
    name = optional_text(payload, "type")
    detail = ""
    if name == "contact.updated":
        if data.get("unsubscribed") is not True:
            return None
        kind = "unsubscribe"
        email = address(optional_text(data, "email"), "data.email")
    else:
        if name == "email.bounced":
            bounce = data.get("bounce")
            bounce = bounce if isinstance(bounce, dict) else {}
            kind = "soft_bounce" if optional_text(bounce, "type") in SOFT else "bounce"
            detail = short(bounce.get("message"))
        elif name in KINDS:
            kind = KINDS[name]
        else:
            return None
        email = _recipient(data.get("to"))
    return Event(
        "resend",
        kind,
        email,
        at=when(payload.get("created_at"), "created_at", now, iso_from_text),
        detail=detail,
        # svix-id names the event and stays the same when Svix delivers it again.
        source_id=message_id,
    )


def _recipient(to: object) -> str:
    """The one address in data.to (digest sends each message to one reader), or a 400."""
    if isinstance(to, str):
        to = [to]
    if not isinstance(to, list) or len(to) != 1 or not isinstance(to[0], str):
        raise WebhookRefused(400, "data.to is not one address")
    return address(to[0], "data.to")
