"""What Postmark's bounce types and suppression reasons say of a reader: one reading for
its webhooks (`digest serve`) and its API (`digest sync`)."""

from __future__ import annotations

# Bounce `Type`s (Postmark's bounce-type list) that say the address is dead or failed for now;
# the rest (auto-replies, DMARC, template errors, ...) say nothing about the reader.
HARD = frozenset({"HardBounce", "BadEmailAddress"})
SOFT = frozenset({"SoftBounce", "Transient", "DnsError", "Blocked", "SpamNotification"})
# `SuppressionReason` -> kind; ManualSuppression is the reader's own unsubscribe (or one the
# sender made).
SUPPRESSIONS = {
    "HardBounce": "bounce",
    "SpamComplaint": "complaint",
    "ManualSuppression": "unsubscribe",
}


def bounce_kind(bounce_type: str, inactive: object) -> str | None:
    """The event kind of a bounce record, or None for types that say nothing of the reader."""
    if bounce_type == "SpamComplaint":
        return "complaint"
    if bounce_type == "Unsubscribe":
        # A reader's reply asking to be removed, which Postmark files as a bounce.
        return "unsubscribe"
    if bounce_type in HARD or inactive is True:
        return "bounce"
    if bounce_type in SOFT:
        return "soft_bounce"
    return None
