"""Provider webhooks: verify a delivery by the provider's own scheme, then read its events."""

from __future__ import annotations

from collections.abc import Mapping

from digestcli.events import Event
from digestcli.serve import mailgun_hooks, postmark_hooks, resend_hooks, sendgrid_hooks
from digestcli.serve.hookkit import Reader, WebhookRefused

__all__ = ["READERS", "Reader", "WebhookRefused", "receive"]

READERS: dict[str, Reader] = {
    "postmark": postmark_hooks.read,
    "sendgrid": sendgrid_hooks.read,
    "mailgun": mailgun_hooks.read,
    "resend": resend_hooks.read,
}


def receive(
    provider: str,
    headers: Mapping[str, str],
    body: bytes,
    env: Mapping[str, str],
    *,
    now: float,
) -> list[Event]:
    """The events of one verified webhook delivery (headers are matched case-insensitively).

    Raises WebhookRefused: 404 for a provider digest has no webhook for or no key configured,
    401 when the signature or credentials do not verify or the timestamp is more than five
    minutes away from `now`, 400 for a body that is not what the provider sends.
    """
    reader = READERS.get(provider)
    if reader is None:
        raise WebhookRefused(404, f"no webhook for `{provider}`")
    lowered = {name.lower(): value for name, value in headers.items()}
    return reader(lowered, body, env, now)
