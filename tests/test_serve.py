"""`digest serve`: readers unsubscribe by link or one click, providers post webhooks, sync reads.

Quick cases speak HTTP to the app in-process (httpx.ASGITransport); the end-to-end ones start
a real `digest serve` process on loopback and speak to it over a socket.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import socket
import sqlite3
import subprocess
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Cli
from starlette.applications import Starlette

from digestcli import subscribers
from digestcli.db import connect
from digestcli.events import Event
from digestcli.serve import webhooks
from digestcli.serve.app import PAGE, create_app, masked
from digestcli.serve.guard import MAX_BODY
from digestcli.tokens import events_key, sign
from digestcli.workspace import Workspace
from fakes import store
from harness.serving import Served, serving
from harness.workspaces import REPO, copy_workspace, digest_env, run_digest

SECRET = "serve-test-secret"
ONE_CLICK = b"List-Unsubscribe=One-Click"  # the RFC 8058 body
FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A copy of the repository's workspace with three readers on the default list."""
    root = copy_workspace(tmp_path / "ws")
    store(root / ".digest" / "digest.db", 3).close()
    return root


class Client:
    """Requests to the app in this process (Starlette 1.10's TestClient wants httpx2)."""

    def __init__(self, app: Starlette) -> None:
        self.app = app

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One request through httpx.ASGITransport, its body read."""

        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://serve.test") as http:
                answer = await http.request(method, url, **kwargs)
                await answer.aread()
                return answer

        return asyncio.run(go())

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        """GET url."""
        return self.request("GET", url, **kwargs)

    def head(self, url: str, **kwargs: Any) -> httpx.Response:
        """HEAD url."""
        return self.request("HEAD", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        """POST url."""
        return self.request("POST", url, **kwargs)


@pytest.fixture
def client(root: Path) -> Iterator[Client]:
    app = create_app(Workspace(root), {"DIGEST_SECRET": SECRET})
    yield Client(app)
    # ASGITransport runs no lifespan: close the store connections the app kept.
    app.state.served.store.close()


def token(
    email: str = "user0@example.org", list_name: str = "default", secret: str = SECRET
) -> str:
    return sign(email, list_name, secret.encode())


def link(value: str) -> str:
    return f"/unsubscribe?token={value}"


def active(root: Path, list_name: str = "default") -> list[str]:
    with connect(root / ".digest" / "digest.db") as db:
        return [r.email for r in subscribers.active_recipients(db, list_name)]


def recorded(root: Path) -> list[tuple[str, str, str, str | None]]:
    db = sqlite3.connect(root / ".digest" / "digest.db")
    try:
        rows = db.execute("SELECT source, kind, email, list FROM events ORDER BY id").fetchall()
    finally:
        db.close()
    return [(str(s), str(k), str(e), lst) for s, k, e, lst in rows]


def tampered(value: str) -> str:
    """The token with the last character of its signature changed."""
    return value[:-1] + ("A" if value[-1] != "A" else "B")


def altered_list(value: str) -> str:
    """The token's signature over another list's payload: a reader editing the link."""
    return token(list_name="weekly").split(".")[0] + "." + value.split(".")[1]


ALL = ["user0@example.org", "user1@example.org", "user2@example.org"]


# ---- the unsubscribe page and the one-click POST --------------------------------------------


def test_the_link_shows_a_question_and_changes_nothing(client: Client, root: Path) -> None:
    value = token()
    page = client.get(link(value))
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "The Terminal Dispatch" in page.text
    assert "u***@example.org" in page.text
    assert "user0@example.org" not in page.text
    # One button, posting back to this same URL: the page never prints the token.
    assert page.text.count("<form") == 1
    assert '<form method="post">' in page.text
    assert '<button type="submit">Unsubscribe</button>' in page.text
    assert value not in page.text
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert client.head(link(value)).status_code == 200
    assert active(root) == ALL
    assert recorded(root) == []


def test_one_click_unsubscribes_from_that_list_and_twice_is_fine(
    client: Client, root: Path
) -> None:
    value = token()
    first = client.post(link(value), headers=FORM, content=ONE_CLICK)
    assert first.status_code == 200
    assert "You are unsubscribed" in first.text
    assert "u***@example.org" in first.text
    assert active(root) == ALL[1:]
    again = client.post(link(value), headers=FORM, content=ONE_CLICK)
    assert again.status_code == 200
    assert recorded(root) == [("serve", "unsubscribe", "user0@example.org", "default")]
    assert active(root) == ALL[1:]


def test_the_pages_button_works_like_one_click(client: Client, root: Path) -> None:
    answer = client.post(link(token("user2@example.org")), data={"List-Unsubscribe": "One-Click"})
    assert answer.status_code == 200
    assert active(root) == ALL[:2]


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param("not-a-token", id="garbage"),
        pytest.param("%%%.###", id="not base64"),
        pytest.param(tampered(token()), id="tampered"),
        pytest.param(altered_list(token()), id="list altered"),
        pytest.param(token(secret="another workspace"), id="foreign secret"),
        pytest.param(token(list_name="weekly"), id="list this store does not have"),
        pytest.param(token()[: len(token()) // 2], id="cut short"),
    ],
)
def test_a_bad_link_is_a_400_page_and_records_nothing(
    client: Client, root: Path, value: str
) -> None:
    for answer in (
        client.get(link(value)),
        client.post(link(value), content=ONE_CLICK),
    ):
        assert answer.status_code == 400
        assert "This link does not work" in answer.text
        assert "Nothing was changed" in answer.text
    assert client.get("/unsubscribe").status_code == 400
    assert client.post("/unsubscribe").status_code == 400
    assert active(root) == ALL
    assert recorded(root) == []


def test_a_serve_host_without_the_readers_takes_any_list_the_secret_signed(tmp_path: Path) -> None:
    root = copy_workspace(tmp_path / "bare")
    app = create_app(Workspace(root), {"DIGEST_SECRET": SECRET})
    client = Client(app)
    for list_name in ("weekly", "monthly"):
        value = token("reader@example.org", list_name)
        assert client.post(link(value), content=ONE_CLICK).status_code == 200
    assert client.post(link(tampered(value))).status_code == 400
    assert recorded(root) == [
        ("serve", "unsubscribe", "reader@example.org", "weekly"),
        ("serve", "unsubscribe", "reader@example.org", "monthly"),
    ]
    app.state.served.store.close()


@pytest.mark.parametrize(
    ("email", "shown"),
    [("ann@example.org", "a***@example.org"), ("x@y.example", "x***@y.example"), ("odd", "***")],
)
def test_addresses_are_masked(email: str, shown: str) -> None:
    assert masked(email) == shown


# ---- webhooks -------------------------------------------------------------------------------


@dataclass
class Reader:
    """A provider reader registered for the test: answers what it is told, keeps what it saw."""

    answer: list[Event] | Exception
    seen: list[tuple[Mapping[str, str], bytes]] = field(default_factory=list)

    def __call__(
        self, headers: Mapping[str, str], body: bytes, env: Mapping[str, str], now: float
    ) -> list[Event]:
        self.seen.append((headers, body))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> Reader:
    reader = Reader([Event("postmark", "bounce", "user1@example.org", source_id="pm-1")])
    monkeypatch.setitem(webhooks.READERS, "testprovider", reader)
    return reader


def test_a_verified_webhook_records_its_events_once(
    client: Client, root: Path, provider: Reader
) -> None:
    first = client.post("/webhooks/testprovider", content=b'{"RecordType": "Bounce"}')
    assert (first.status_code, first.json()) == (200, {"recorded": 1, "duplicates": 0})
    assert provider.seen[0][1] == b'{"RecordType": "Bounce"}'
    replay = client.post("/webhooks/testprovider", content=b'{"RecordType": "Bounce"}')
    assert (replay.status_code, replay.json()) == (200, {"recorded": 0, "duplicates": 1})
    assert active(root) == ["user0@example.org", "user2@example.org"]


def test_a_webhook_with_no_events_records_nothing(client: Client, provider: Reader) -> None:
    provider.answer = []
    answer = client.post("/webhooks/testprovider", content=b"[]")
    assert answer.json() == {"recorded": 0, "duplicates": 0}


@pytest.mark.parametrize(
    ("refusal", "status"),
    [
        (webhooks.WebhookRefused(401, "signature does not verify"), 401),
        (webhooks.WebhookRefused(400, "not JSON"), 400),
        (ValueError("Expecting value: line 1 column 1"), 400),
        (KeyError("RecordType"), 400),
    ],
)
def test_a_refused_webhook_answers_its_status_and_records_nothing(
    client: Client, root: Path, provider: Reader, refusal: Exception, status: int
) -> None:
    provider.answer = refusal
    answer = client.post("/webhooks/testprovider", content=b"{")
    assert answer.status_code == status
    assert answer.headers["content-type"].startswith("text/plain")
    assert recorded(root) == []


def test_an_unknown_provider_is_404(client: Client) -> None:
    answer = client.post("/webhooks/nosuchprovider", content=b"{}")
    assert answer.status_code == 404
    assert answer.text == "no webhook for `nosuchprovider`"
    assert client.get("/webhooks/postmark").status_code == 405


def test_bodies_over_a_megabyte_are_413_by_length_or_as_they_stream(
    client: Client, root: Path, provider: Reader
) -> None:
    big = b"x" * (MAX_BODY + 1)
    assert client.post("/webhooks/testprovider", content=big).status_code == 413

    async def chunks() -> AsyncIterator[bytes]:
        # No Content-Length: the limit is counted as the body arrives.
        for _ in range(MAX_BODY // 65536 + 2):
            yield b"x" * 65536

    assert client.post("/webhooks/testprovider", content=chunks()).status_code == 413
    assert client.post(link(token()), content=big).status_code == 413
    assert provider.seen == []
    assert recorded(root) == []
    exact = client.post("/webhooks/testprovider", content=b"x" * MAX_BODY)
    assert exact.status_code == 200


def test_a_content_length_that_is_not_a_number_is_400(client: Client) -> None:
    answer = client.post("/healthz", headers={"content-length": "lots"}, content=b"")
    assert answer.status_code == 400


# ---- /events, /healthz and the site -------------------------------------------------------


def test_events_need_the_key_derived_from_the_secret(client: Client, root: Path) -> None:
    key = events_key(SECRET.encode())
    assert key == hmac.new(SECRET.encode(), b"digest events key", hashlib.sha256).hexdigest()
    client.post(link(token()), content=ONE_CLICK)
    for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": key}):
        refused = client.get("/events", headers=headers)
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == 'Bearer realm="digest"'
        assert key not in refused.text
    answer = client.get("/events?after=0", headers={"authorization": f"Bearer {key}"})
    assert answer.status_code == 200
    body = answer.json()
    assert body["cursor"] == 1
    assert body["more"] is False
    [event] = body["events"]
    assert {k: event[k] for k in ("id", "source", "kind", "email", "list")} == {
        "id": 1,
        "source": "serve",
        "kind": "unsubscribe",
        "email": "user0@example.org",
        "list": "default",
    }
    # The event's id is a hash of the token, never the token.
    assert event["source_id"].startswith("token:")
    assert token() not in answer.text
    later = client.get("/events?after=1", headers={"authorization": f"Bearer {key}"})
    assert later.json() == {"events": [], "cursor": 1, "more": False}
    for bad in ("-1", "x", "1.5", "9" * 40):
        assert (
            client.get(
                f"/events?after={bad}", headers={"authorization": f"Bearer {key}"}
            ).status_code
            == 400
        )


def test_events_come_in_pages_oldest_first(client: Client, root: Path) -> None:
    from digestcli.events import record

    with connect(root / ".digest" / "digest.db") as db:
        record(
            db,
            [
                Event("cli", "delivery", f"r{i}@example.org", source_id=str(i))
                for i in range(PAGE + 5)
            ],
        )
    auth = {"authorization": f"Bearer {events_key(SECRET.encode())}"}
    first = client.get("/events", headers=auth).json()
    assert (len(first["events"]), first["cursor"], first["more"]) == (PAGE, PAGE, True)
    assert [e["source_id"] for e in first["events"][:2]] == ["0", "1"]
    rest = client.get(f"/events?after={first['cursor']}", headers=auth).json()
    assert (len(rest["events"]), rest["cursor"], rest["more"]) == (5, PAGE + 5, False)


def test_healthz(client: Client) -> None:
    answer = client.get("/healthz")
    assert (answer.status_code, answer.text) == (200, "ok")
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_the_published_site_is_served_behind_the_routes(root: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "issues" / "week-9").mkdir(parents=True)
    (site / "index.html").write_text("<h1>Archive</h1>", encoding="utf-8")
    (site / "issues" / "week-9" / "index.html").write_text("<h1>Week 9</h1>", encoding="utf-8")
    (site / "healthz").write_text("shadowed", encoding="utf-8")
    app = create_app(Workspace(root), {"DIGEST_SECRET": SECRET}, site=site)
    client = Client(app)
    assert client.get("/").text == "<h1>Archive</h1>"
    assert client.get("/issues/week-9/").text == "<h1>Week 9</h1>"
    assert client.get("/healthz").text == "ok"
    assert client.get("/nothing-here").status_code == 404
    app.state.served.store.close()


@pytest.mark.parametrize(
    "target",
    [
        "/unsubscribe?token=%ZZ",
        "/unsubscribe?token=%FF%FE.%00",
        "/unsubscribe?token=a&token=b",
        "/unsubscribe?token=" + "A" * 5000 + "." + "B" * 20,
        "/unsubscribe?&&=&token",
        "/events?after=%00",
        "/webhooks/%2e%2e%2fetc",
        "/webhooks/",
        "/%00",
    ],
)
def test_no_input_makes_a_server_error(client: Client, target: str) -> None:
    for method in ("GET", "POST"):
        answer = client.request(method, target, content=b"\xff{not json")
        assert 400 <= answer.status_code < 500, (method, target, answer.status_code)


def test_print_events_key(cli: Cli) -> None:
    result = cli("serve", "--print-events-key", env={"DIGEST_SECRET": SECRET})
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == events_key(SECRET.encode())


# ---- a real `digest serve` process on loopback ----------------------------------------------


@pytest.fixture
def served(root: Path) -> Iterator[Served]:
    with serving(root, SECRET) as process:
        yield process


def test_a_real_serve_unsubscribes_by_one_click_and_keeps_tokens_out_of_its_log(
    served: Served, root: Path
) -> None:
    value = token()
    with httpx.Client(base_url=served.url, timeout=10) as http:
        page = http.get(link(value))
        assert page.status_code == 200
        assert "u***@example.org" in page.text
        assert active(root) == ALL
        for _ in range(2):
            answer = http.post(link(value), content=b"List-Unsubscribe=One-Click", headers=FORM)
            assert answer.status_code == 200
            assert active(root) == ALL[1:]
        for bad in (
            tampered(token("user1@example.org")),
            token("user1@example.org", secret="another workspace"),
            token("user1@example.org", list_name="weekly"),
        ):
            assert http.get(link(bad)).status_code == 400
            assert http.post(link(bad), content=ONE_CLICK).status_code == 400
        assert active(root) == ALL[1:]
        assert http.post("/webhooks/nosuchprovider", content=b"{}").status_code == 404
        assert http.post("/webhooks/postmark", content=b"x" * (MAX_BODY + 1)).status_code == 413
        assert http.get("/events").status_code == 401
        key = events_key(SECRET.encode())
        events = http.get("/events", headers={"authorization": f"Bearer {key}"})
        assert [e["email"] for e in events.json()["events"]] == ["user0@example.org"]
        assert http.get("/healthz").text == "ok"
    assert recorded(root) == [("serve", "unsubscribe", "user0@example.org", "default")]
    served.process.terminate()
    served.process.wait(timeout=10)
    log = served.log()
    assert "GET /unsubscribe HTTP/1.1" in log
    assert "POST /unsubscribe HTTP/1.1" in log
    for secret in (value, value.split(".")[1], SECRET, key, "user0@example.org"):
        assert secret not in log


def test_a_real_serve_takes_concurrent_one_clicks(served: Served, root: Path) -> None:
    more = [f"reader{i}@example.org" for i in range(40)]
    with connect(root / ".digest" / "digest.db") as db:
        for email in more:
            subscribers.add(db, email, list_name="default")

    async def click_all() -> list[int]:
        async with httpx.AsyncClient(base_url=served.url, timeout=30) as http:
            answers = await asyncio.gather(
                *(http.post(link(token(email)), content=ONE_CLICK) for email in more)
            )
        return [answer.status_code for answer in answers]

    assert asyncio.run(click_all()) == [200] * len(more)
    assert active(root) == ALL
    assert len(recorded(root)) == len(more)


def editor(tmp_path: Path, serve_url: str) -> Path:
    """The editor's own workspace (outbox), with the same readers, pointing at a serve."""
    config = (REPO / "digest.toml").read_text(
        encoding="utf-8"
    ) + f'\n[serve]\nurl = "{serve_url}"\n'
    desk = copy_workspace(tmp_path / "desk", config=config)
    store(desk / ".digest" / "digest.db", 3).close()
    return desk


def send(desk: Path) -> subprocess.CompletedProcess[str]:
    return run_digest(desk, digest_env(SECRET), "send", "--yes")


def test_a_send_first_brings_home_what_the_serve_recorded(
    served: Served, root: Path, tmp_path: Path
) -> None:
    with httpx.Client(base_url=served.url, timeout=10) as http:
        answer = http.post(link(token("user1@example.org")), content=ONE_CLICK, headers=FORM)
        assert answer.status_code == 200
    desk = editor(tmp_path, served.url)
    sent = send(desk)
    assert sent.returncode == 0, sent.stderr
    assert "Synced readers' answers: 1 unsubscribed, 0 bounced, 0 complained." in sent.stderr
    assert "Skipped:    1 list members (1 left the list)" in sent.stderr
    files = sorted(p.name for p in (desk / ".digest" / "outbox").glob("*/*.eml"))
    assert [name.split("-", 1)[1] for name in files] == [
        "user0@example.org.eml",
        "user2@example.org.eml",
    ]


def test_a_serve_that_cannot_be_reached_only_warns_and_the_send_goes_on(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    desk = editor(tmp_path, f"http://127.0.0.1:{port}")
    sent = send(desk)
    assert sent.returncode == 0, sent.stderr
    assert "warning: sync of serve events failed (could not reach" in sent.stderr
    assert "Done: 3 sent" in sent.stderr
