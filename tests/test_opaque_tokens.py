"""Unsubscribe links name the send, not the reader: no address in any link, and every store
that holds the send resolves it (the CLI, `digest serve`, and `digest sync` for a bare serve)."""

from __future__ import annotations

import base64
import email
import email.policy
import re
from email.message import EmailMessage
from pathlib import Path

import httpx
from test_serve import ONE_CLICK, Client

from digestcli import journal, subscribers, tokens
from digestcli.db import opened
from digestcli.events import after
from digestcli.serve.app import create_app
from digestcli.sync import sync
from digestcli.workspace import Workspace
from fakes import store
from harness.workspaces import REPO, copy_workspace, digest_env, run_digest

SECRET = "opaque-secret"
LINK = re.compile(r"<(https://[^>]+token=([A-Za-z0-9_.\-]+))>")


def sent_links(tmp_path: Path) -> tuple[Path, dict[str, tuple[str, str]]]:
    """A workspace that sent the example issue to 3 readers: reader -> (link, token)."""
    root = copy_workspace(tmp_path / "desk")
    store(root / ".digest" / "digest.db", 3).close()
    done = run_digest(root, digest_env(SECRET), "send", "--yes")
    assert done.returncode == 0, done.stderr
    links = {}
    for path in (root / ".digest" / "outbox").glob("*/*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        found = LINK.search(str(message["List-Unsubscribe"]))
        assert found is not None
        links[str(message["To"].addresses[0].addr_spec)] = (found.group(1), found.group(2))
    return root, links


def test_no_link_spells_the_readers_address(tmp_path: Path) -> None:
    _, links = sent_links(tmp_path)
    assert sorted(links) == [f"user{i}@example.org" for i in range(3)]
    for address, (link, token) in links.items():
        payload = base64.urlsafe_b64decode(token.split(".")[0] + "==")
        assert address.encode() not in payload and b"@" not in payload
        assert address not in link
        signed = tokens.verify(token, SECRET.encode())
        assert (signed.email, signed.list) == ("", "default") and signed.ref


def test_the_cli_and_the_editors_serve_resolve_the_send(tmp_path: Path) -> None:
    root, links = sent_links(tmp_path)
    link, _ = links["user1@example.org"]
    from typer.testing import CliRunner

    from digestcli.cli import app

    result = CliRunner().invoke(
        app, ["--workspace", str(root), "unsubscribe", link], env={"DIGEST_SECRET": SECRET}
    )
    assert result.exit_code == 0, result.output
    assert "Unsubscribed user1@example.org from `default`" in result.stderr
    served = create_app(Workspace(root), {"DIGEST_SECRET": SECRET})
    try:
        page = Client(served).get(links["user2@example.org"][0].split("example.org", 1)[1])
        assert page.status_code == 200 and "u***@example.org" in page.text
    finally:
        served.state.served.store.close()


def test_a_bare_serve_keeps_the_reference_and_the_editors_sync_resolves_it(
    tmp_path: Path,
) -> None:
    desk, links = sent_links(tmp_path)
    # The serve host: the same secret and config, a store that holds no readers.
    host = copy_workspace(tmp_path / "host")
    served = create_app(Workspace(host), {"DIGEST_SECRET": SECRET})
    try:
        client = Client(served)
        path = links["user0@example.org"][0].split("example.org", 1)[1]
        assert "your address" in client.get(path).text  # it cannot know whose link it is
        assert client.post(path, content=ONE_CLICK).status_code == 200
        with opened(host / ".digest" / "digest.db") as db:
            ((_, recorded),) = after(db, 0)
        assert (recorded.email, recorded.list) == ("", "default") and recorded.ref
        feed = [
            {
                "id": 1,
                **{
                    k: getattr(recorded, k)
                    for k in ("source", "kind", "email", "list", "at", "detail", "source_id", "ref")
                },
            }
        ]
    finally:
        served.state.served.store.close()

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"events": feed, "cursor": 1, "more": False})

    config = (REPO / "digest.toml").read_text(encoding="utf-8")
    (desk / "digest.toml").write_text(config + '\n[serve]\nurl = "https://news.example.org"\n')
    report = sync(
        Workspace(desk), {"DIGEST_SECRET": SECRET}, serve_http=httpx.MockTransport(answer)
    )
    assert report.changes["unsubscribed"] == 1, report.as_dict()
    with opened(desk / ".digest" / "digest.db") as db:
        active = [r.email for r in subscribers.active_recipients(db, "default")]
        campaign = journal.latest_campaign(db, next(iter((desk / "drafts").glob("*.md"))).name)
    assert active == ["user1@example.org", "user2@example.org"]
    assert campaign is not None and campaign.nonce
