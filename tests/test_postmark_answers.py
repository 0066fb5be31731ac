"""Postmark's bounce records mean the same through its webhooks and through its API."""

from __future__ import annotations

from typing import Any, cast

import pytest

from digestcli.serve import postmark_hooks
from digestcli.sync.api import ProviderAPI
from digestcli.sync.postmark import PostmarkFetcher

TYPES = [
    ("HardBounce", False, "bounce"),
    ("BadEmailAddress", False, "bounce"),
    ("Unknown", True, "bounce"),  # Postmark deactivated the address
    ("SoftBounce", False, "soft_bounce"),
    ("Transient", False, "soft_bounce"),
    ("DnsError", False, "soft_bounce"),
    ("Blocked", False, "soft_bounce"),
    ("SpamNotification", False, "soft_bounce"),
    ("SpamComplaint", False, "complaint"),
    ("Unsubscribe", False, "unsubscribe"),
    ("AutoResponder", False, None),
    ("DMARCPolicy", False, None),
]


def _record(bounce_type: str, inactive: bool) -> dict[str, Any]:
    return {
        "ID": 4242,
        "Type": bounce_type,
        "Inactive": inactive,
        "Email": "ann@example.org",
        "BouncedAt": "2026-11-30T09:00:00Z",
        "Details": "smtp;550",
    }


@pytest.mark.parametrize(("bounce_type", "inactive", "kind"), TYPES)
def test_a_bounce_type_is_read_alike_by_webhook_and_by_sync(
    bounce_type: str, inactive: bool, kind: str | None
) -> None:
    record = _record(bounce_type, inactive)
    hooked = postmark_hooks._event("Bounce", record, now=1_796_000_000.0)
    fetched = PostmarkFetcher(cast(ProviderAPI, None)).bounce(record)
    assert (hooked and hooked.kind) == kind
    assert (fetched and fetched.kind) == kind
