"""One address a provider refuses fails alone: its batch-mates are sent once, exit 5.

SendGrid and Mailgun refuse a whole request when one recipient's address fails their own
validator (stricter than email-validator, which let it into the list). A real `digest send`
process runs against each local fake; the fake's record of deliveries decides.
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from digestcli.errors import PermanentFailure, RecipientsRejected
from harness.providers import (
    FakeProvider,
    MailgunFake,
    SendGridFake,
    has_spec,
    make_messages,
    openapi,
)
from harness.workspaces import digest_env, provider_workspace, run_digest

RECIPIENTS = 1000
BAD = "user417@example.org"


def digest(root: Path, fake: FakeProvider, *args: str) -> subprocess.CompletedProcess[str]:
    return run_digest(root, digest_env("reject-test-secret", **fake.env), *args, timeout=300)


def send_with_one_refused(tmp_path: Path, fake: FakeProvider) -> dict[str, Any]:
    """Send to 1,000 with BAD refused; check the promise and return `digest status --json`."""
    if has_spec(fake.provider):
        openapi(fake.provider)
    fake.refused[BAD] = "refused"
    root = provider_workspace(tmp_path / "ws", fake, subscribers=RECIPIENTS, batch=1000, timeout=60)
    sent = digest(root, fake, "send", "--yes")
    assert sent.returncode == 5, sent.stderr
    assert "1 recipients failed" in sent.stderr
    copies = Counter(str(mail["to"]) for mail in fake.received())
    assert BAD not in copies
    assert len(copies) == RECIPIENTS - 1 and set(copies.values()) == {1}
    assert not fake.violations
    status = digest(root, fake, "status", "--json")
    assert status.returncode == 0, status.stderr
    report: dict[str, Any] = json.loads(status.stdout)
    assert report["counts"]["sent"] == RECIPIENTS - 1
    assert report["counts"]["failed"] == 1
    assert report["uncertain"] == []
    (failure,) = report["failures"]
    assert failure["email"] == BAD
    return report


def test_sendgrid_fails_only_the_personalization_it_names(tmp_path: Path) -> None:
    with SendGridFake() as fake:
        report = send_with_one_refused(tmp_path, fake)
        # The refused request, then one for the 999 others.
        assert len(fake.requests) == 2
    assert report["failures"][0]["error"] == (
        "SendGrid: Does not contain a valid address. (personalizations.417.to.0.email)"
    )


def test_mailgun_fails_only_the_address_it_names(tmp_path: Path) -> None:
    with MailgunFake() as fake:
        report = send_with_one_refused(tmp_path, fake)
        assert len(fake.requests) == 2
    assert report["failures"][0]["error"] == f"Mailgun: '{BAD}' is not a valid address"


def test_mailgun_naming_nobody_is_halved_until_the_bad_address_stands_alone(
    tmp_path: Path,
) -> None:
    with MailgunFake() as fake:
        fake.names_refused = False
        report = send_with_one_refused(tmp_path, fake)
        # Each level halves the part holding the bad address: about 2 * log2(1000) requests.
        assert len(fake.requests) <= 2 * 11
    error = report["failures"][0]["error"]
    assert "to parameter is not a valid address" in error


@pytest.mark.parametrize("fake_cls", [SendGridFake, MailgunFake], ids=["sendgrid", "mailgun"])
def test_a_refusal_about_the_sender_still_fails_the_whole_batch(
    fake_cls: type[FakeProvider],
) -> None:
    # Not about any recipient: splitting would only send the same refusal many times.
    with fake_cls() as fake:
        fake.script(fake.error(400, "from parameter is not a valid address"))
        transport = fake.transport()
        with pytest.raises(PermanentFailure, match="not a valid address") as caught, transport:
            transport.send_batch(make_messages(4))
    assert not isinstance(caught.value, RecipientsRejected)
