"""The Starlette app of `digest serve`: its routes and views (unsubscribe, webhooks, /events)."""

from __future__ import annotations

import hashlib
import hmac
import logging
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from digestcli import events, journal, subscribers, tokens
from digestcli.config import Settings
from digestcli.db import opened
from digestcli.errors import ConfigError, TemplateError, UsageError
from digestcli.events import Event
from digestcli.serve import webhooks
from digestcli.serve.guard import Guard
from digestcli.serve.pool import Pool
from digestcli.workspace import Workspace, default_templates

# Events per GET /events page: small enough for one response, big enough for few round trips.
PAGE = 1000
PAGES = ("unsubscribe", "unsubscribed", "problem")
# The pages load nothing and post only to themselves; no proxy or browser keeps a copy.
PAGE_HEADERS = {
    "cache-control": "no-store",
    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
}

log = logging.getLogger("digest.serve")


@dataclass(frozen=True)
class Served:
    """What every view needs, loaded once when the app is made."""

    settings: Settings
    store: Pool
    secret: bytes
    events_key: str
    env: Mapping[str, str]
    pages: jinja2.Environment
    # One writer at a time in this process. SQLite serialises writers anyway, but a waiting
    # writer polls in sleeps of up to 100 ms: 50 concurrent one-click POSTs ran at 99 per
    # second through the busy handler, and far faster queued here.
    writing: threading.Lock = field(default_factory=threading.Lock)


def create_app(
    workspace: Workspace, env: Mapping[str, str], *, site: Path | None = None
) -> Starlette:
    """The ASGI app of `digest serve`; a config, secret, store or template problem raises now."""
    settings = workspace.settings()
    secret = tokens.load_secret(workspace.state_dir, env)
    # Opened once here so a store that cannot open is one error at start-up, not one per request.
    with opened(workspace.db_path):
        pass
    served = Served(
        settings=settings,
        store=Pool(workspace.db_path),
        secret=secret,
        events_key=tokens.events_key(secret),
        env=dict(env),
        pages=_pages(workspace.templates_dir),
    )
    routes: list[BaseRoute] = [
        Route("/unsubscribe", unsubscribe_page, methods=["GET"]),
        Route("/unsubscribe", unsubscribe, methods=["POST"]),
        Route("/webhooks/{provider}", webhook, methods=["POST"]),
        Route("/events", events_feed, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
    if site is not None:
        if not site.is_dir():
            raise ConfigError(f"{site}: no such folder to serve; run `digest publish` first.")
        # Last, so the site can never shadow a route above.
        routes.append(Mount("/", app=StaticFiles(directory=site, html=True), name="site"))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        served.store.close()

    app = Starlette(routes=routes, middleware=[Middleware(Guard)], lifespan=lifespan)
    app.state.served = served
    return app


def _pages(templates_dir: Path) -> jinja2.Environment:
    """The page templates: the workspace's own serve/ pages first, then the default theme's."""
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(
            [jinja2.FileSystemLoader(templates_dir), jinja2.FileSystemLoader(default_templates())]
        ),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    for page in PAGES:
        name = f"serve/{page}.html.j2"
        try:
            env.get_template(name)
        except jinja2.TemplateError as exc:
            raise TemplateError(f"{templates_dir / name}: {exc}; fix the template.") from None
    return env


# ---- views ----------------------------------------------------------------------------------


async def healthz(request: Request) -> Response:
    """200 `ok` while the server answers (for load balancers and the tests)."""
    return PlainTextResponse("ok")


async def unsubscribe_page(request: Request) -> Response:
    """The question behind an unsubscribe link; it changes nothing (mail scanners fetch links)."""
    served = _served(request)
    reader = await run_in_threadpool(_reader, served, request.query_params.get("token", ""))
    if isinstance(reader, str):
        return _page(served, "problem", 400, reason=reader)
    return _page(served, "unsubscribe", 200, masked=masked(reader.email), list_name=reader.list)


async def unsubscribe(request: Request) -> Response:
    """The button, or an RFC 8058 one-click POST: record the unsubscribe; again is fine."""
    served = _served(request)
    # Read (and so size-limit) the body; its content does not matter: RFC 8058 sends
    # List-Unsubscribe=One-Click, the page's form the same, and the token is in the URL.
    await request.body()
    reader = await run_in_threadpool(_unsubscribe, served, request.query_params.get("token", ""))
    if isinstance(reader, str):
        return _page(served, "problem", 400, reason=reader)
    return _page(served, "unsubscribed", 200, masked=masked(reader.email), list_name=reader.list)


async def webhook(request: Request) -> Response:
    """A provider's webhook delivery: verified by webhooks.receive, then its events recorded."""
    served = _served(request)
    provider = request.path_params["provider"]
    body = await request.body()
    try:
        found = await run_in_threadpool(
            _receive, provider, request.headers, body, served.env, time.time()
        )
    except webhooks.WebhookRefused as refused:
        return PlainTextResponse(refused.reason, refused.status)
    except (ValueError, LookupError, TypeError) as exc:
        # A reader that trips on a body it did not expect: the body is at fault, not digest.
        log.warning("webhook %s: %s reading a delivery; answered 400", provider, type(exc).__name__)
        return PlainTextResponse(f"that body is not what {provider} sends", 400)
    applied = await run_in_threadpool(_record, served, found)
    return JSONResponse({"recorded": applied.recorded, "duplicates": applied.duplicates})


async def events_feed(request: Request) -> Response:
    """The recorded events after a cursor, oldest first, for the editor's `digest sync`."""
    served = _served(request)
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        key.strip().encode("utf-8"), served.events_key.encode("ascii")
    ):
        return PlainTextResponse(
            "/events needs Authorization: Bearer KEY; `digest serve --print-events-key` shows it.",
            401,
            headers={"www-authenticate": 'Bearer realm="digest"'},
        )
    raw = request.query_params.get("after", "0")
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
        return JSONResponse({"error": "`after` must be a cursor: a whole number, 0 or more."}, 400)
    cursor = int(raw)
    page = await run_in_threadpool(_events_after, served, cursor)
    return JSONResponse(
        {
            "events": [_event_json(number, event) for number, event in page],
            "cursor": page[-1][0] if page else cursor,
            "more": len(page) == PAGE,
        }
    )


# ---- work done in the threadpool (SQLite, signatures) ------------------------------------


def _reader(served: Served, token: str) -> tokens.Signed | str:
    """What a valid token says, or why the link cannot work."""
    with served.store.connection() as db:
        return _check(served, db, token)


def _unsubscribe(served: Served, token: str) -> tokens.Signed | str:
    with served.store.connection() as db:
        reader = _check(served, db, token)
        if isinstance(reader, str):
            return reader
        # Made from the token, so pressing the button twice (or a provider's one-click retry)
        # records one event; a hash, so /events never hands the token itself on.
        digest = hashlib.sha256(token.strip().encode("utf-8")).hexdigest()[:32]
        event = Event(
            "serve",
            "unsubscribe",
            reader.email,
            reader.list,
            source_id=f"token:{digest}",
            ref=reader.ref,
        )
        with served.writing:
            events.record(db, [event], soft_limit=served.settings.bounces.soft_limit)
        return reader


def _check(served: Served, db: sqlite3.Connection, token: str) -> tokens.Signed | str:
    """What a token says, its send resolved to an address where this store holds it."""
    if not token.strip():
        return "The link has no token: it was cut short on its way here."
    try:
        signed = tokens.verify(token, served.secret)
    except UsageError:
        return "The link was changed or cut short, or it belongs to another publication."
    # The editor's store (it has members) refuses a list or a send it never had; a bare serve
    # host's store holds only what readers answered, so it takes what the secret signed and
    # keeps the send's reference for the editor's `digest sync` to resolve.
    if not subscribers.takes_answers_for(db, signed.list):
        return "The link names a list this publication does not have."
    if signed.ref:
        email = journal.recipient_by_ref(db, signed.ref)
        if email is None and subscribers.holds_readers(db):
            return "The link names a send this publication has no record of."
        signed = signed._replace(email=email or "")
    return signed


def _receive(
    provider: str, headers: Mapping[str, str], body: bytes, env: Mapping[str, str], now: float
) -> list[Event]:
    return webhooks.receive(provider, headers, body, env, now=now)


def _record(served: Served, found: list[Event]) -> events.Applied:
    if not found:
        return events.Applied()
    with served.store.connection() as db, served.writing:
        return events.record(db, found, soft_limit=served.settings.bounces.soft_limit)


def _events_after(served: Served, cursor: int) -> list[tuple[int, Event]]:
    with served.store.connection() as db:
        return events.after(db, cursor, PAGE)


# ---- helpers ------------------------------------------------------------------------------


def masked(email: str) -> str:
    """An address as a page shows it: a***@example.org ('your address' when not known here)."""
    if not email:
        return "your address"
    local, at, domain = email.rpartition("@")
    return f"{local[:1]}***@{domain}" if at and local else "***"


def _served(request: Request) -> Served:
    served: Served = request.app.state.served
    return served


def _page(served: Served, name: str, status: int, **values: Any) -> Response:
    template = served.pages.get_template(f"serve/{name}.html.j2")
    html = template.render(publication=served.settings.publication, **values)
    return HTMLResponse(html, status, headers=PAGE_HEADERS)


def _event_json(number: int, event: Event) -> dict[str, Any]:
    return {
        "id": number,
        "source": event.source,
        "kind": event.kind,
        "email": event.email,
        "list": event.list,
        "at": event.at,
        "detail": event.detail,
        "source_id": event.source_id,
        "ref": event.ref,
    }
