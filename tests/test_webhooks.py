"""Provider webhooks: real signatures made here, verified first, read into digest's events."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digestcli.events import KINDS, Event, record
from digestcli.serve.webhooks import WebhookRefused, receive
from fakes import store

NOW = 1_760_000_000.0  # 2025-10-09T08:53:20Z
STAMP = str(int(NOW))
AT = "2025-10-09T08:53:20+00:00"

PASSWORD = "pm-webhook-Hunter2-7f3a"
MAILGUN_KEY = "mg-signing-key-5d41402abc4b2a76b9719d911017c592"
RESEND_RAW = b"resend signing secret, 32 bytes!"
RESEND_SECRET = "whsec_" + base64.b64encode(RESEND_RAW).decode()
SG_PRIVATE = ec.generate_private_key(ec.SECP256R1())
SG_PUBLIC = base64.b64encode(
    SG_PRIVATE.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
).decode()
ENV = {
    "DIGEST_WEBHOOK_PASSWORD": PASSWORD,
    "DIGEST_SENDGRID_WEBHOOK_KEY": SG_PUBLIC,
    "DIGEST_MAILGUN_WEBHOOK_KEY": MAILGUN_KEY,
    "DIGEST_RESEND_WEBHOOK_SECRET": RESEND_SECRET,
}
PROVIDERS = ("postmark", "sendgrid", "mailgun", "resend")
SECRETS = (PASSWORD, MAILGUN_KEY, RESEND_SECRET, RESEND_SECRET.removeprefix("whsec_"), SG_PUBLIC)

Delivery = tuple[dict[str, str], bytes]


def raw(payload: object) -> bytes:
    """The bytes a provider would POST for payload (bytes pass through untouched)."""
    return payload if isinstance(payload, bytes) else json.dumps(payload).encode()


def postmark(payload: object, password: str = PASSWORD, user: str = "digest") -> Delivery:
    """A Postmark POST: Basic credentials from the webhook URL."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}, raw(payload)


def sendgrid(
    payload: object, stamp: str = STAMP, key: ec.EllipticCurvePrivateKey = SG_PRIVATE
) -> Delivery:
    """A signed SendGrid Event Webhook POST: ECDSA P-256 over timestamp + body."""
    body = raw(payload)
    signature = key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
    }, body


def mailgun_signature(stamp: str = STAMP, key: str = MAILGUN_KEY, token: str = "t" * 50) -> Any:
    """Mailgun's signature block: hex HMAC-SHA256 of timestamp + token."""
    digest = hmac.new(key.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()
    return {"timestamp": stamp, "token": token, "signature": digest}


def mailgun(event_data: object, stamp: str = STAMP, key: str = MAILGUN_KEY) -> Delivery:
    """A Mailgun POST: the signature travels inside the JSON body (raw bytes go as they are)."""
    if isinstance(event_data, bytes):
        return {}, event_data
    return {}, raw({"signature": mailgun_signature(stamp, key), "event-data": event_data})


def resend(
    payload: object, msg_id: str = "msg_2Kp7", stamp: str = STAMP, secret: bytes = RESEND_RAW
) -> Delivery:
    """A Resend POST signed the Svix way: HMAC-SHA256 over id.timestamp.body."""
    body = raw(payload)
    mac = hmac.new(secret, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    signature = "v1," + base64.b64encode(mac).decode()
    return {"svix-id": msg_id, "svix-timestamp": stamp, "svix-signature": signature}, body


SIGNERS: dict[str, Callable[[object], Delivery]] = {
    "postmark": postmark,
    "sendgrid": sendgrid,
    "mailgun": mailgun,
    "resend": resend,
}


def refused(provider: str, delivery: Delivery, env: dict[str, str] = ENV) -> WebhookRefused:
    """The refusal receive raises for delivery (failing the test when it accepts it)."""
    headers, body = delivery
    with pytest.raises(WebhookRefused) as caught:
        receive(provider, headers, body, env, now=NOW)
    return caught.value


def events(provider: str, delivery: Delivery) -> list[Event]:
    """The events receive reads from a delivery that verifies."""
    headers, body = delivery
    return receive(provider, headers, body, ENV, now=NOW)


# -- What each provider's bounce, complaint and unsubscribe become -------------------------

PM_MESSAGE = "883953f4-6105-42a2-a16a-77a8eac79483"


def test_postmark_bounces_complaints_and_unsubscribes_become_events() -> None:
    hard = {
        "RecordType": "Bounce",
        "ID": 4323372036,
        "Type": "HardBounce",
        "TypeCode": 1,
        "MessageID": PM_MESSAGE,
        "Description": "The server was unable to deliver your message.",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist",
        "Email": "user1@example.org",
        "BouncedAt": "2025-10-09T04:53:20.2735393-04:00",
        "Inactive": True,
        "MessageStream": "broadcast",
    }
    soft = {**hard, "ID": 4323372037, "Type": "SoftBounce", "Inactive": False, "Details": "full"}
    complaint = {**hard, "RecordType": "SpamComplaint", "ID": 4323372038, "Type": "SpamComplaint"}
    complaint |= {"Email": "user2@example.org", "Details": "Test spam complaint details"}
    change = {
        "RecordType": "SubscriptionChange",
        "MessageID": PM_MESSAGE,
        "ServerID": 23,
        "MessageStream": "broadcast",
        "ChangedAt": "2025-10-09T08:53:20Z",
        "Recipient": "user3@example.org",
        "Origin": "Recipient",
        "SuppressSending": True,
        "SuppressionReason": "ManualSuppression",
        "Metadata": {},
    }
    assert [events("postmark", postmark(p))[0] for p in (hard, soft, complaint, change)] == [
        Event(
            "postmark",
            "bounce",
            "user1@example.org",
            at=AT,
            detail="smtp;550 5.1.1 The email account that you tried to reach does not exist",
            source_id="bounce:4323372036",
        ),
        Event(
            "postmark",
            "soft_bounce",
            "user1@example.org",
            at=AT,
            detail="full",
            source_id="bounce:4323372037",
        ),
        Event(
            "postmark",
            "complaint",
            "user2@example.org",
            at=AT,
            detail="Test spam complaint details",
            source_id="bounce:4323372038",
        ),
        Event(
            "postmark",
            "unsubscribe",
            "user3@example.org",
            at=AT,
            detail="ManualSuppression Recipient",
            source_id=f"subscription:user3@example.org:{AT}:{PM_MESSAGE}",
        ),
    ]


def test_postmark_reactivations_and_other_records_are_answered_but_not_recorded() -> None:
    reactivated: dict[str, object] = {
        "RecordType": "SubscriptionChange",
        "Recipient": "a@example.org",
        "SuppressSending": False,
        "ChangedAt": "2025-10-09T08:53:20Z",
    }
    auto_reply = {"RecordType": "Bounce", "ID": 7, "Type": "AutoResponder", "Inactive": False}
    opened = {"RecordType": "Open", "Recipient": "a@example.org"}
    for payload in (reactivated, auto_reply | {"Email": "a@example.org"}, opened):
        assert events("postmark", postmark(payload)) == []


def test_sendgrid_reads_every_event_of_a_signed_batch() -> None:
    batch = [
        {
            "email": "user1@example.org",
            "timestamp": int(NOW),
            "event": "bounce",
            "type": "bounce",
            "reason": "550 5.1.1 no such user",
            "status": "5.1.1",
            "sg_event_id": "sg-1",
        },
        {
            "email": "user2@example.org",
            "timestamp": int(NOW),
            "event": "bounce",
            "type": "blocked",
            "reason": "554 blocked by policy",
            "status": "5.7.1",
            "sg_event_id": "sg-2",
        },
        {
            "email": "user3@example.org",
            "timestamp": int(NOW),
            "event": "spamreport",
            "sg_event_id": "sg-3",
            "sg_message_id": "m.1",
        },
        {
            "email": "user4@example.org",
            "timestamp": int(NOW),
            "event": "group_unsubscribe",
            "asm_group_id": 42,
            "sg_event_id": "sg-4",
        },
        {
            "email": "user5@example.org",
            "timestamp": int(NOW),
            "event": "dropped",
            "reason": "Bounced Address",
            "sg_event_id": "sg-5",
        },
        {"email": "user6@example.org", "timestamp": int(NOW), "event": "open", "sg_event_id": "x"},
        {
            "email": "user6@example.org",
            "timestamp": int(NOW),
            "event": "deferred",
            "response": "400 try again later",
            "attempt": "5",
            "sg_event_id": "y",
        },
        {
            "email": "user7@example.org",
            "timestamp": int(NOW),
            "event": "delivered",
            "response": "250 OK",
            "sg_event_id": "sg-7",
        },
    ]
    assert events("sendgrid", sendgrid(batch)) == [
        Event(
            "sendgrid",
            "bounce",
            "user1@example.org",
            at=AT,
            detail="550 5.1.1 no such user",
            source_id="sg-1",
        ),
        Event(
            "sendgrid",
            "soft_bounce",
            "user2@example.org",
            at=AT,
            detail="554 blocked by policy",
            source_id="sg-2",
        ),
        Event("sendgrid", "complaint", "user3@example.org", at=AT, source_id="sg-3"),
        Event("sendgrid", "unsubscribe", "user4@example.org", at=AT, source_id="sg-4"),
        Event(
            "sendgrid",
            "bounce",
            "user5@example.org",
            at=AT,
            detail="Bounced Address",
            source_id="sg-5",
        ),
        Event(
            "sendgrid", "delivery", "user7@example.org", at=AT, detail="250 OK", source_id="sg-7"
        ),
    ]


def test_sendgrid_unsubscribes_come_through_too() -> None:
    batch = [
        {
            "email": "a@example.org",
            "timestamp": int(NOW),
            "event": "unsubscribe",
            "sg_event_id": "sg-9",
        }
    ]
    assert events("sendgrid", sendgrid(batch)) == [
        Event("sendgrid", "unsubscribe", "a@example.org", at=AT, source_id="sg-9")
    ]


def mailgun_event(event: str, **fields: Any) -> dict[str, Any]:
    """Mailgun event-data as its webhooks send it."""
    return {
        "event": event,
        "id": f"id-{event}",
        "timestamp": NOW + 0.521243,
        "recipient": "user1@example.org",
        "tags": ["weekly"],
        "user-variables": {},
        "message": {"headers": {"message-id": "20251009.1@mg.example.org"}},
        **fields,
    }


def test_mailgun_failures_complaints_and_unsubscribes_become_events() -> None:
    status = {
        "code": 550,
        "message": "5.1.1 The email account does not exist",
        "description": "Not delivering to a mailbox that does not exist",
    }
    permanent = mailgun_event("failed", severity="permanent", reason="bounce")
    permanent["delivery-status"] = status
    temporary = mailgun_event("failed", severity="temporary", reason="generic")
    temporary["delivery-status"] = {"code": 452, "message": "mailbox full"}
    suppressed = mailgun_event("failed", severity="permanent", reason="suppress-unsubscribe")
    complained = mailgun_event("complained")
    unsubscribed = mailgun_event("unsubscribed")
    read = [
        events("mailgun", mailgun(e))
        for e in (permanent, temporary, suppressed, complained, unsubscribed)
    ]
    assert [e for batch in read for e in batch] == [
        Event(
            "mailgun",
            "bounce",
            "user1@example.org",
            at=AT,
            detail="Not delivering to a mailbox that does not exist",
            source_id=f"id-failed@{AT}",
        ),
        Event(
            "mailgun",
            "soft_bounce",
            "user1@example.org",
            at=AT,
            detail="mailbox full",
            source_id=f"id-failed@{AT}",
        ),
        Event(
            "mailgun",
            "unsubscribe",
            "user1@example.org",
            at=AT,
            detail="suppress-unsubscribe",
            source_id=f"id-failed@{AT}",
        ),
        Event("mailgun", "complaint", "user1@example.org", at=AT, source_id=f"id-complained@{AT}"),
        Event(
            "mailgun", "unsubscribe", "user1@example.org", at=AT, source_id=f"id-unsubscribed@{AT}"
        ),
    ]
    assert events("mailgun", mailgun(mailgun_event("opened"))) == []


def resend_event(kind: str, **data: Any) -> dict[str, Any]:
    """A Resend webhook body."""
    email = {
        "created_at": "2025-10-09T08:50:00.000Z",
        "email_id": "4ef9a417-02e9",
        "from": "Digest <news@example.org>",
        "to": ["Reader One <user1@example.org>"],
        "subject": "This week",
    }
    return {"type": kind, "created_at": "2025-10-09T08:53:20.678Z", "data": email | data}


def test_resend_bounces_complaints_and_unsubscribes_become_events() -> None:
    bounced = resend_event(
        "email.bounced",
        bounce={
            "message": "The recipient's email provider sent a hard bounce message.",
            "subType": "Suppressed",
            "type": "Permanent",
        },
    )
    transient = resend_event("email.bounced", bounce={"message": "inbox full", "type": "Transient"})
    complained = resend_event("email.complained")
    unsubscribed = {
        "type": "contact.updated",
        "created_at": "2025-10-09T08:53:20.678Z",
        "data": {
            "id": "e169aa45",
            "audience_id": "78261eea",
            "email": "user2@example.org",
            "unsubscribed": True,
        },
    }
    read = [
        events("resend", resend(p, msg_id=f"msg_{i}"))
        for i, p in enumerate((bounced, transient, complained, unsubscribed))
    ]
    assert [e for batch in read for e in batch] == [
        Event(
            "resend",
            "bounce",
            "user1@example.org",
            at=AT,
            detail="The recipient's email provider sent a hard bounce message.",
            source_id="msg_0",
        ),
        Event(
            "resend",
            "soft_bounce",
            "user1@example.org",
            at=AT,
            detail="inbox full",
            source_id="msg_1",
        ),
        Event("resend", "complaint", "user1@example.org", at=AT, source_id="msg_2"),
        Event("resend", "unsubscribe", "user2@example.org", at=AT, source_id="msg_3"),
    ]
    delayed = resend_event("email.delivery_delayed")
    still_subscribed = json.loads(json.dumps(unsubscribed))
    still_subscribed["data"]["unsubscribed"] = False
    assert events("resend", resend(delayed)) == events("resend", resend(still_subscribed)) == []


# -- Refusals ------------------------------------------------------------------------------

BOUNCES: dict[str, object] = {
    "postmark": {
        "RecordType": "Bounce",
        "ID": 1,
        "Type": "HardBounce",
        "Inactive": True,
        "Email": "user1@example.org",
        "BouncedAt": "2025-10-09T08:53:20Z",
    },
    "sendgrid": [
        {
            "email": "user1@example.org",
            "timestamp": int(NOW),
            "event": "bounce",
            "type": "bounce",
            "sg_event_id": "sg-1",
        }
    ],
    "mailgun": mailgun_event("failed", severity="permanent"),
    "resend": resend_event("email.bounced"),
}
KEYS = {
    "postmark": "DIGEST_WEBHOOK_PASSWORD",
    "sendgrid": "DIGEST_SENDGRID_WEBHOOK_KEY",
    "mailgun": "DIGEST_MAILGUN_WEBHOOK_KEY",
    "resend": "DIGEST_RESEND_WEBHOOK_SECRET",
}


def forged(provider: str) -> Delivery:
    """The bounce signed with some other key."""
    payload = BOUNCES[provider]
    if provider == "postmark":
        return postmark(payload, password="guess")
    if provider == "sendgrid":
        return sendgrid(payload, key=ec.generate_private_key(ec.SECP256R1()))
    if provider == "mailgun":
        return mailgun(payload, key="another-key")
    return resend(payload, secret=b"another secret")


def stale(provider: str, offset: float) -> Delivery:
    """The bounce, validly signed, offset seconds away from now."""
    stamp = str(int(NOW + offset))
    payload = BOUNCES[provider]
    if provider == "sendgrid":
        return sendgrid(payload, stamp=stamp)
    if provider == "mailgun":
        return mailgun(payload, stamp=stamp)
    return resend(payload, stamp=stamp)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_provider_without_a_key_gets_404_naming_the_variable_to_set(provider: str) -> None:
    others = {k: v for k, v in ENV.items() if k != KEYS[provider]}
    refusal = refused(provider, SIGNERS[provider](BOUNCES[provider]), others)
    assert refusal.status == 404
    assert refusal.reason == f"no webhook key configured for {provider}; set {KEYS[provider]}"


def test_a_provider_digest_has_no_webhook_for_gets_404() -> None:
    assert refused("mandrill", ({}, b"[]")).status == 404


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_forged_signature_is_refused_with_401(provider: str) -> None:
    assert refused(provider, forged(provider)).status == 401


@pytest.mark.parametrize("provider", ["sendgrid", "mailgun", "resend"])
@pytest.mark.parametrize("offset", [-301.0, 301.0, -86_400.0])
def test_a_stale_or_future_timestamp_is_refused_with_401(provider: str, offset: float) -> None:
    refusal = refused(provider, stale(provider, offset))
    assert (refusal.status, refusal.reason) == (
        401,
        "the signature timestamp is more than 5 minutes from now",
    )


@pytest.mark.parametrize("provider", ["sendgrid", "mailgun", "resend"])
def test_five_minutes_of_clock_skew_is_accepted(provider: str) -> None:
    assert len(events(provider, stale(provider, -299.0))) == 1


@pytest.mark.parametrize("provider", PROVIDERS)
def test_malformed_json_is_refused_with_400(provider: str) -> None:
    refusal = refused(provider, SIGNERS[provider](b'{"signature": {"timestamp": "1", '))
    assert (refusal.status, refusal.reason) == (400, "the body is not JSON")


@pytest.mark.parametrize(
    ("provider", "payload"),
    [
        ("postmark", [1, 2]),
        ("postmark", {"RecordType": "Bounce", "Type": "HardBounce", "ID": 3}),
        ("sendgrid", {"event": "bounce"}),
        ("sendgrid", [{"event": "bounce", "email": "not an address", "sg_event_id": "1"}]),
        ("mailgun", "event-data"),
        ("mailgun", {"event": "failed", "severity": "permanent", "id": "x"}),
        ("resend", {"type": "email.bounced", "data": {"to": []}}),
        (
            "resend",
            {"type": "email.bounced", "data": {"to": ["a@example.org"]}, "created_at": "yesterday"},
        ),
    ],
)
def test_a_body_that_is_not_what_the_provider_sends_is_refused_with_400(
    provider: str, payload: object
) -> None:
    assert refused(provider, SIGNERS[provider](payload)).status == 400


def test_postmark_wants_basic_credentials_with_the_configured_password() -> None:
    body = raw(BOUNCES["postmark"])
    for headers in (
        {},
        {"Authorization": "Bearer " + PASSWORD},
        {"Authorization": "Basic not-base64!"},
        {"Authorization": "Basic " + base64.b64encode(PASSWORD.encode()).decode()},  # no colon
        postmark(body, password=PASSWORD + "x")[0],
    ):
        assert refused("postmark", (headers, body)).status == 401
    assert len(events("postmark", postmark(body, user="any user name"))) == 1


def test_sendgrid_refuses_a_missing_header_and_a_key_that_is_not_one() -> None:
    headers, body = sendgrid(BOUNCES["sendgrid"])
    del headers["X-Twilio-Email-Event-Webhook-Signature"]
    refusal = refused("sendgrid", (headers, body))
    assert (refusal.status, refusal.reason) == (
        401,
        "missing x-twilio-email-event-webhook-signature header",
    )
    broken = ENV | {"DIGEST_SENDGRID_WEBHOOK_KEY": "bm90IGEga2V5"}
    assert refused("sendgrid", sendgrid(BOUNCES["sendgrid"]), broken).status == 404


def test_sendgrid_also_takes_the_key_as_pem() -> None:
    pem = SG_PRIVATE.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    headers, body = sendgrid(BOUNCES["sendgrid"])
    env = ENV | {"DIGEST_SENDGRID_WEBHOOK_KEY": pem.decode()}
    assert len(receive("sendgrid", headers, body, env, now=NOW)) == 1


def test_resend_accepts_any_matching_v1_signature_while_a_secret_is_rotated() -> None:
    headers, body = resend(BOUNCES["resend"])
    headers["svix-signature"] = "v1,b2xkIHNpZ25hdHVyZQ== " + headers["svix-signature"]
    assert len(events("resend", (headers, body))) == 1
    headers["svix-signature"] = "v1,b2xkIHNpZ25hdHVyZQ== v2,whatever"
    assert refused("resend", (headers, body)).status == 401


def test_a_body_altered_after_signing_is_refused() -> None:
    for provider in ("sendgrid", "resend"):
        headers, body = SIGNERS[provider](BOUNCES[provider])
        altered = body.replace(b"user1@example.org", b"user2@example.org")
        assert refused(provider, (headers, altered)).status == 401
    payload = json.loads(mailgun(BOUNCES["mailgun"])[1])
    payload["signature"]["token"] = "u" * 50
    assert refused("mailgun", ({}, raw(payload))).status == 401


def test_no_refusal_gives_away_a_key_or_a_signature() -> None:
    deliveries: list[tuple[str, Delivery]] = [(p, forged(p)) for p in PROVIDERS]
    deliveries += [(p, stale(p, 900.0)) for p in ("sendgrid", "mailgun", "resend")]
    deliveries += [(p, SIGNERS[p](b"{")) for p in PROVIDERS]
    reasons = []
    for provider, delivery in deliveries:
        refusal = refused(provider, delivery)
        reasons.append(refusal.reason)
        assert refusal.status in (400, 401)
        given = [*delivery[0].values(), *SECRETS]
        if provider == "mailgun" and delivery[1].startswith(b'{"signature"'):
            given.append(json.loads(delivery[1])["signature"]["signature"])
        for secret in given:
            assert secret not in refusal.reason and secret not in str(refusal)
    assert all(reason and len(reason) < 120 for reason in reasons)


# -- Replays -------------------------------------------------------------------------------


def test_a_replayed_delivery_has_the_same_source_id_and_is_recorded_once(tmp_path: Path) -> None:
    db = store(tmp_path / "digest.db", 3)
    # Retries come signed anew (a later timestamp) but carry the same event.
    later = str(int(NOW) + 60)
    pairs = {
        "postmark": (postmark(BOUNCES["postmark"]), postmark(BOUNCES["postmark"])),
        "sendgrid": (sendgrid(BOUNCES["sendgrid"]), sendgrid(BOUNCES["sendgrid"], stamp=later)),
        "mailgun": (mailgun(BOUNCES["mailgun"]), mailgun(BOUNCES["mailgun"], stamp=later)),
        "resend": (resend(BOUNCES["resend"]), resend(BOUNCES["resend"], stamp=later)),
    }
    for provider, (first, again) in pairs.items():
        one, two = events(provider, first), events(provider, again)
        assert [e.source_id for e in one] == [e.source_id for e in two] != [""]
        applied = record(db, one)
        replayed = record(db, two)
        assert (applied.recorded, replayed.recorded, replayed.duplicates) == (1, 0, 1), provider
    state = db.execute("SELECT state FROM subscribers WHERE email = 'user1@example.org'")
    assert state.fetchone()[0] == "bounced"
    assert db.execute("SELECT count(*) FROM events").fetchone()[0] == 4


# -- Any input: a refusal with its status, or events; never another exception ---------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["", "a@example.org", "Name <b@example.org>", STAMP, "9" * 40])
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
times = st.sampled_from(
    ["2025-10-09T08:53:20Z", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "2025"]
)
stamps = st.sampled_from([NOW, int(NOW), STAMP, 1e300, -1, float("nan"), float("inf"), "x"])


def shaped(fields: dict[str, st.SearchStrategy[object]]) -> st.SearchStrategy[dict[str, object]]:
    """Objects with a payload's keys: all or some of them, plausible or mixed with arbitrary."""
    plausible = st.fixed_dictionaries({}, optional=fields)
    mixed = st.fixed_dictionaries({}, optional={k: s | values for k, s in fields.items()})
    return st.fixed_dictionaries(fields) | plausible | mixed


POSTMARK = shaped(
    {
        "RecordType": st.sampled_from(
            ["Bounce", "SpamComplaint", "SubscriptionChange", "Delivery"]
        ),
        "Type": st.sampled_from(["HardBounce", "SoftBounce", "Unsubscribe", "Blocked", "Unknown"]),
        "Inactive": st.booleans(),
        "SuppressSending": st.booleans(),
        "SuppressionReason": st.sampled_from(["HardBounce", "SpamComplaint", "ManualSuppression"]),
        "Email": st.just("a@example.org"),
        "Recipient": st.just("a@example.org"),
        "ID": st.integers(),
        "MessageID": st.just(PM_MESSAGE),
        "BouncedAt": times,
        "ChangedAt": times,
        "DeliveredAt": times,
        "Details": st.text(),
    }
)
SENDGRID_EVENT = shaped(
    {
        "event": st.sampled_from(
            [
                "bounce",
                "dropped",
                "delivered",
                "spamreport",
                "unsubscribe",
                "group_unsubscribe",
                "deferred",
                "open",
            ]
        ),
        "type": st.sampled_from(["bounce", "blocked"]),
        "email": st.just("a@example.org"),
        "timestamp": stamps,
        "sg_event_id": st.text(),
        "reason": st.sampled_from(["Invalid", "x"]),
    }
)
MAILGUN_EVENT = shaped(
    {
        "event": st.sampled_from(["failed", "delivered", "complained", "unsubscribed", "opened"]),
        "severity": st.sampled_from(["permanent", "temporary"]),
        "id": st.text(min_size=1),
        "recipient": st.just("a@example.org"),
        "timestamp": stamps,
        "reason": st.sampled_from(["bounce", "suppress-complaint"]),
        "delivery-status": st.fixed_dictionaries({"message": st.text()}),
    }
)
RESEND_DATA = shaped(
    {
        "to": st.lists(
            st.sampled_from(["a@example.org", "Bo <b@example.org>"]), min_size=1, max_size=1
        )
        | st.lists(st.sampled_from(["a@example.org", "nobody", ""]), max_size=3),
        "email": st.just("a@example.org"),
        "unsubscribed": st.booleans(),
        "bounce": st.fixed_dictionaries(
            {}, optional={"type": st.sampled_from(["Permanent", "Transient"]), "message": st.text()}
        ),
    }
)
RESEND = shaped(
    {
        "type": st.sampled_from(
            [
                "email.bounced",
                "email.complained",
                "email.delivered",
                "contact.updated",
                "email.opened",
            ]
        ),
        "created_at": times,
        "data": RESEND_DATA,
    }
)
PAYLOADS: dict[str, st.SearchStrategy[object]] = {
    "postmark": POSTMARK | values,
    "sendgrid": st.lists(SENDGRID_EVENT | values, max_size=4) | values,
    "mailgun": MAILGUN_EVENT | values,
    "resend": RESEND | values,
}


def outcome(provider: str, headers: dict[str, str], body: bytes, allowed: set[int]) -> None:
    """receive either refuses with an allowed status or returns well-formed events."""
    try:
        found = receive(provider, headers, body, ENV, now=NOW)
    except WebhookRefused as refusal:
        assert refusal.status in allowed, refusal.reason
        assert not any(secret in refusal.reason for secret in SECRETS)
        return
    for event in found:
        assert (event.source, event.list) == (provider, None)
        assert event.kind in KINDS and "@" in event.email
        assert len(event.detail) <= 200 and "\n" not in event.detail
        assert dt.datetime.fromisoformat(event.at).utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize("provider", PROVIDERS)
@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.binary(max_size=300), headers=st.dictionaries(st.text(max_size=40), st.text()))
def test_arbitrary_unsigned_bytes_are_refused_with_400_or_401(
    provider: str, body: bytes, headers: dict[str, str]
) -> None:
    outcome(provider, headers, body, {400, 401})


@pytest.mark.parametrize("provider", PROVIDERS)
@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.binary(max_size=300))
def test_arbitrary_signed_bytes_are_read_or_refused_with_400(provider: str, body: bytes) -> None:
    if provider == "mailgun":
        # The signature is part of Mailgun's JSON: arbitrary bytes cannot carry one.
        outcome(provider, {}, body, {400, 401})
    else:
        outcome(provider, *SIGNERS[provider](body), {400})


@pytest.mark.parametrize("provider", PROVIDERS)
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_signed_payload_becomes_well_formed_events_or_a_400(
    provider: str, data: st.DataObject
) -> None:
    payload = data.draw(PAYLOADS[provider])
    outcome(provider, *SIGNERS[provider](payload), {400})


def test_cryptography_is_imported_only_when_a_sendgrid_webhook_is_verified() -> None:
    code = "import sys, digestcli.serve.webhooks as w\nprint('cryptography' in sys.modules)\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
