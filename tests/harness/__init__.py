"""Test harnesses: a transport wired to a far side the test can read back.

A harness is a zero-argument context manager factory. Entering it starts whatever the far
side needs (a folder, a local SMTP server, a local HTTP server speaking a provider's API) and
yields (transport, received): `received()` returns what the far side got so far, one dict per
message, in arrival order, normalised to:

    {"to": "alice@example.org",            # the recipient the far side delivers to
     "subject": "...",                      # decoded
     "text": "...", "html": "...",          # decoded bodies, "\\n" line endings
     "headers": {"list-unsubscribe": ...}}  # lower-case name -> decoded value

A harness whose wire format is MIME checks part order (text/plain, then text/html) in
harness.mime.parse_eml; one whose wire format has an order of its own (SendGrid's `content`)
checks it while normalising. tests/test_contract.py runs one suite over every entry of
HARNESSES.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from digestcli.transports.base import Transport
from harness import providers
from harness.memory import memory_harness
from harness.mime import Received
from harness.outbox import outbox_harness
from harness.smtp import smtp_harness

Harnessed = tuple[Transport, Callable[[], list[Received]]]
Harness = Callable[[], AbstractContextManager[Harnessed]]

HARNESSES: dict[str, Harness] = {
    "outbox": outbox_harness,
    "memory": memory_harness,
    "smtp": smtp_harness,
    # HTTP providers: local servers speaking each API (tests/harness/providers.py).
    "postmark": providers.postmark_harness,
    "sendgrid": providers.sendgrid_harness,
    "mailgun": providers.mailgun_harness,
    "resend": providers.resend_harness,
}
