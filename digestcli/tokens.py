"""Signed unsubscribe tokens: HMAC over a send's reference (or an address) and a list."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple
from urllib.parse import parse_qs, urlsplit

from digestcli.errors import ConfigError, UsageError

SECRET_ENV = "DIGEST_SECRET"
_SIG_BYTES = 16


def load_secret(state_dir: Path, env: Mapping[str, str]) -> bytes:
    """The signing secret: $DIGEST_SECRET, or .digest/secret created 0600 on first use."""
    if value := env.get(SECRET_ENV):
        return value.encode("utf-8")
    path = state_dir / "secret"
    if not path.exists():
        state_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w", encoding="ascii") as out:
                out.write(secrets.token_urlsafe(32) + "\n")
    try:
        value = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"{path}: cannot read the signing secret; delete it to make a new one."
        ) from exc
    if not value:
        raise ConfigError(f"{path}: the signing secret is empty; delete it to make a new one.")
    return value.encode("ascii")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# A token's subject is an address (links sent before references existed, and test sends) or
# this prefix and a send's reference. No address starts with it: a bare ':' needs quotes.
REF_PREFIX = "ref:"


class Signed(NamedTuple):
    """What a valid token says: whose address or which send, and the list."""

    email: str  # '' when the token names a send instead
    list: str
    ref: str = ""  # '<campaign nonce>:<row>', for journal.recipient_by_ref


@functools.lru_cache(maxsize=4)
def _keyed(secret: bytes) -> hmac.HMAC:
    """An HMAC-SHA256 keyed with the secret, to copy for each token."""
    return hmac.new(secret, digestmod=hashlib.sha256)


def _signed(payload: bytes, secret: bytes) -> str:
    # A copy of a keyed HMAC, not the one-shot hmac.digest: that one lets go of the GIL for
    # every call, and with the sending threads busy each token then waited ~0.2 ms to get it
    # back (bench/README.md, "Per-recipient cost").
    keyed = _keyed(secret).copy()
    keyed.update(payload)
    return f"{_b64(payload)}.{_b64(keyed.digest()[:_SIG_BYTES])}"


def sign(email: str, list_name: str, secret: bytes) -> str:
    """A URL-safe token binding email and list (test sends, and links sent before refs)."""
    return _signed(f"{email.lower()}\n{list_name}".encode(), secret)


def sign_reference(ref: str, list_name: str, secret: bytes) -> str:
    """A URL-safe token binding a send's reference and list: it spells no address.

    Links travel through scanners, proxies and logs, where base64 is clear text.
    """
    return _signed(f"{REF_PREFIX}{ref}\n{list_name}".encode(), secret)


def verify(token: str, secret: bytes) -> Signed:
    """What a valid token says, or raise UsageError."""
    bad = UsageError(
        "that unsubscribe token is not valid for this workspace; "
        "copy the whole link from the email."
    )
    head, dot, tail = token.strip().partition(".")
    if not dot:
        raise bad
    try:
        payload, mac = _unb64(head), _unb64(tail)
    except (ValueError, TypeError):
        raise bad from None
    expected = hmac.new(secret, payload, hashlib.sha256).digest()[:_SIG_BYTES]
    if not hmac.compare_digest(mac, expected):
        raise bad
    subject, nl, list_name = payload.decode("utf-8", "replace").partition("\n")
    if not nl:
        raise bad
    if subject.startswith(REF_PREFIX):
        return Signed("", list_name, subject.removeprefix(REF_PREFIX))
    return Signed(subject, list_name)


def token_from_link(text: str) -> str:
    """The token itself, from a bare token or an unsubscribe link carrying it as token=..."""
    text = text.strip()
    if "?" not in text and "://" not in text:
        return text
    parts = urlsplit(text)
    # Links from before the token moved into the query carry it after a fragment
    # (https://example.org/u#top?token=...), where it never reached the server: read it there.
    for query in (parts.query, parts.fragment.partition("?")[2]):
        values = [value for value in parse_qs(query).get("token", []) if value.strip()]
        if values:
            # Older links also kept a token= of the configured URL before digest's own.
            return values[-1]
    raise UsageError(
        "that link carries no ?token=...; copy the whole unsubscribe link from the email."
    )


# Fixed, so that the editor's `digest sync` and a serve sharing DIGEST_SECRET derive one key.
_EVENTS_LABEL = b"digest events key"


def events_key(secret: bytes) -> str:
    """The bearer key of a serve's GET /events: HMAC-SHA256(secret, "digest events key"), hex."""
    return hmac.new(secret, _EVENTS_LABEL, hashlib.sha256).hexdigest()
