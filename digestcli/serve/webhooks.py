"""Provider webhooks: verify a delivery by the provider's own scheme, then read its events."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from digestcli.events import Event

# provider -> reader: (headers, body, env, now) -> events; raises WebhookRefused.
Reader = Callable[[Mapping[str, str], bytes, Mapping[str, str], float], list[Event]]
READERS: dict[str, Reader] = {}


class WebhookRefused(Exception):
    """A webhook delivery digest will not record: the HTTP status to answer, and why."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


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
