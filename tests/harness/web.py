"""A local web server over real sockets for curating tests: pages, feeds, slow and huge answers."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self


@dataclass(frozen=True)
class Page:
    """One answer: status, content type, body and extra headers (ETag, Location...)."""

    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Seen:
    """A request the server received: its path and headers (lower-case names)."""

    path: str
    headers: dict[str, str]


# A route answers a request; it may also be a special behaviour named by the constants below.
Route = Page | Callable[[Seen], Page] | str
STALL = "stall"  # accept the connection, never answer (until the server stops)
HUGE = "huge"  # stream 20 MB of HTML, a chunk at a time


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    web: WebServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-answer (the size cap, a timeout) is expected here."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:
        web = self.server.web
        seen = Seen(self.path, {k.lower(): v for k, v in self.headers.items()})
        with web.lock:
            web.seen.append(seen)
        route = web.routes.get(self.path.partition("?")[0])
        if route == STALL:
            web.released.wait(30)
            return
        if route == HUGE:
            self._huge()
            return
        if route is None:
            page = Page(b"<h1>Not Found</h1>", status=404)
        elif isinstance(route, Page):
            page = route
        else:
            assert callable(route)
            page = route(seen)
        self.send_response(page.status)
        if page.status != 304:
            self.send_header("Content-Type", page.content_type)
        self.send_header("Content-Length", str(len(page.body)))
        for name, value in page.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(page.body)

    def _huge(self) -> None:
        # No Content-Length: the client must find out by counting what it reads.
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Connection", "close")
        self.end_headers()
        chunk = b"<p>" + b"x" * (64 * 1024 - 7) + b"</p>\n"
        self.wfile.write(b"<html><head><title>Huge</title></head><body>")
        for _ in range(20 * 16):  # 20 MB
            self.wfile.write(chunk)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read what was received from `seen`."""


class WebServer:
    """Serves `routes` (path → Page, function or behaviour) on 127.0.0.1 in a thread."""

    def __init__(self, routes: dict[str, Route] | None = None) -> None:
        self.routes: dict[str, Route] = dict(routes or {})
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        self.released = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.web = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.released.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    @property
    def url(self) -> str:
        """The base URL, without a trailing slash."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def requests_to(self, path: str) -> list[Seen]:
        """The requests received for one path, oldest first."""
        with self.lock:
            return [seen for seen in self.seen if seen.path.partition("?")[0] == path]
