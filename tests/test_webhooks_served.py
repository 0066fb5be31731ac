"""Each provider's signed webhook, end to end: POSTed to the app, verified, recorded once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_serve import Client
from test_webhooks import ENV, mailgun, mailgun_event, postmark, resend, resend_event, sendgrid

from digestcli import subscribers
from digestcli.db import opened
from digestcli.serve.app import create_app
from digestcli.workspace import Workspace
from fakes import store
from harness.workspaces import copy_workspace

BOUNCED = "user1@example.org"


def bounce(provider: str, stamp: str) -> tuple[dict[str, str], bytes]:
    """A hard bounce of user1, as the provider POSTs it, signed at `stamp`."""
    if provider == "postmark":
        return postmark(
            {
                "RecordType": "Bounce",
                "ID": 77,
                "Type": "HardBounce",
                "Email": BOUNCED,
                "BouncedAt": "2026-11-30T08:00:00Z",
                "Inactive": True,
                "MessageID": "m-1",
            }
        )
    if provider == "sendgrid":
        return sendgrid(
            [
                {
                    "email": BOUNCED,
                    "timestamp": int(stamp),
                    "event": "bounce",
                    "type": "bounce",
                    "reason": "550 5.1.1",
                    "sg_event_id": "sg-77",
                }
            ],
            stamp=stamp,
        )
    if provider == "mailgun":
        return mailgun(mailgun_event("failed", severity="permanent"), stamp=stamp)
    return resend(resend_event("email.bounced", bounce={"type": "Permanent"}), stamp=stamp)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = copy_workspace(tmp_path / "ws")
    store(root / ".digest" / "digest.db", 3).close()
    return root


@pytest.fixture
def served(root: Path) -> Iterator[Client]:
    app = create_app(Workspace(root), {**ENV, "DIGEST_SECRET": "s"})
    yield Client(app)
    app.state.served.store.close()


def state(root: Path) -> str:
    with opened(root / ".digest" / "digest.db") as db:
        found = subscribers.get(db, BOUNCED)
    assert found is not None
    return found.state


@pytest.mark.parametrize("provider", ["postmark", "sendgrid", "mailgun", "resend"])
def test_a_signed_bounce_is_applied_once_and_a_forged_one_not_at_all(
    served: Client, root: Path, provider: str
) -> None:
    now = str(int(time.time()))
    headers, body = bounce(provider, now)
    forged = body.replace(b"user1@", b"user2@")  # altered after signing
    if provider == "mailgun":  # Mailgun signs its timestamp and token, not the body
        event = mailgun_event("failed", severity="permanent")
        forged = mailgun(event, stamp=now, key="not the key")[1]
    if provider != "postmark":  # Postmark signs nothing: Basic credentials are its proof
        refused = served.post(f"/webhooks/{provider}", content=forged, headers=headers)
        assert refused.status_code == 401
        assert state(root) == "active"
    first = served.post(f"/webhooks/{provider}", content=body, headers=headers)
    assert first.status_code == 200, first.text
    assert first.json() == {"recorded": 1, "duplicates": 0}
    assert state(root) == "bounced"
    again = served.post(f"/webhooks/{provider}", content=body, headers=headers)
    assert again.json() == {"recorded": 0, "duplicates": 1}
    stale = bounce(provider, str(int(time.time()) - 3600))
    if provider != "postmark":
        assert (
            served.post(f"/webhooks/{provider}", content=stale[1], headers=stale[0]).status_code
            == 401
        )
