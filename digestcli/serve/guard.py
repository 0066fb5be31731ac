"""Around every request of `digest serve`: the body limit, security headers, no 500s."""

from __future__ import annotations

import logging

from starlette.requests import ClientDisconnect
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from digestcli.errors import DigestError

# Providers batch their webhook events far below this (SendGrid's largest POSTs are ~100 KB);
# a bigger body is a mistake or an attack, refused before it is read into memory.
MAX_BODY = 1024 * 1024
# Every answer: no sniffing, and no Referer carrying a token to wherever a reader goes next.
SECURITY_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]

log = logging.getLogger("digest.serve")


class BodyTooLarge(Exception):
    """A request body grew past MAX_BODY while it was read."""


class Guard:
    """Around every request: the body limit, security headers, and no 500 for any input."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app; refuse big bodies with 413 and turn a failure into a short answer."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False
        seen = 0

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                # Counted as it streams: a chunked body has no Content-Length to check first.
                seen += len(message.get("body", b""))
                if seen > MAX_BODY:
                    raise BodyTooLarge
            return message

        length = _content_length(scope)
        if length is None:
            answer: Response | None = PlainTextResponse("Content-Length is not a number.", 400)
        elif length > MAX_BODY:
            answer = _too_large()
        else:
            answer = None
            try:
                await self.app(scope, limited_receive, guarded_send)
            except BodyTooLarge:
                answer = _too_large()
            except ClientDisconnect:
                return
            except DigestError as exc:
                # The store busy past its timeout, or gone: worth a retry, not a 500.
                log.warning("%s %s: %s", scope["method"], scope["path"], type(exc).__name__)
                answer = PlainTextResponse(
                    "digest is busy; try again in a moment.", 503, headers={"retry-after": "5"}
                )
            except Exception as exc:
                # Only the type: a message could quote a token or an address.
                log.error("%s %s failed: %s", scope["method"], scope["path"], type(exc).__name__)
                answer = PlainTextResponse("digest serve could not answer this request.", 500)
        if answer is not None and not started:
            await answer(scope, receive, guarded_send)


def _too_large() -> Response:
    return PlainTextResponse(f"The body is over {MAX_BODY // 1024} KB; digest takes no more.", 413)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isascii() and text.isdigit() else None
    return 0
