"""Resolving links against a real HTTP server on 127.0.0.1: statuses, fallbacks, timeouts."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from digestcli.linkcheck import USER_AGENT, LinkOptions, LinkStatus, check_links

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


class LinkServer:
    """A local web server with one path per answer a link checker must understand."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.active = 0
        self.max_active = 0
        self.barrier: threading.Barrier | None = None
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_HEAD(self) -> None:
                self.answer("HEAD")

            def do_GET(self) -> None:
                self.answer("GET")

            def answer(self, method: str) -> None:
                with server.lock:
                    server.requests.append((method, self.path))
                    server.active += 1
                    server.max_active = max(server.max_active, server.active)
                try:
                    status, location = server.route(method, self.path)
                finally:
                    with server.lock:
                        server.active -= 1
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                body = b"<p>page</p>" if method == "GET" else b""
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep the test output clean

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    def route(self, method: str, path: str) -> tuple[int, str | None]:
        """The status (and redirect target) for a request."""
        if path.startswith("/paired/") and self.barrier is not None:
            # Two requests must be in flight together to pass: proves the concurrency.
            self.barrier.wait()
            return 200, None
        routes: dict[str, tuple[int, str | None]] = {
            "/ok": (200, None),
            "/web/": (200, None),
            "/missing": (404, None),
            "/broken": (500, None),
            "/moved": (302, "/ok"),
            "/moved-away": (301, "/missing"),
            "/loop": (302, "/loop"),
        }
        if path in ("/no-head", "/head-not-implemented"):
            refused = 405 if path == "/no-head" else 501
            return (refused, None) if method == "HEAD" else (200, None)
        return routes.get(path, (404, None))

    def url(self, path: str) -> str:
        """An absolute URL on this server."""
        return self.base + path

    def __enter__(self) -> LinkServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """httpx honours proxy variables; a local server must be reached directly."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture
def server() -> Iterator[LinkServer]:
    with LinkServer() as running:
        yield running


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A server that accepts connections (the kernel's backlog) and never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/slow"
    sock.close()


@pytest.fixture
def refused_url() -> str:
    """An address where nothing listens."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}/gone"


FAST = LinkOptions(timeout=0.5)


def by_path(statuses: list[LinkStatus], server: LinkServer) -> dict[str, LinkStatus]:
    return {status.url.removeprefix(server.base): status for status in statuses}


def test_each_answer_is_understood(server: LinkServer) -> None:
    paths = ["/ok", "/missing", "/broken", "/moved", "/moved-away", "/loop", "/no-head"]
    results = by_path(check_links([server.url(p) for p in paths], FAST), server)
    assert {path: (r.ok, r.problem if not r.ok else "") for path, r in results.items()} == {
        "/ok": (True, ""),
        "/missing": (False, "answered 404 Not Found"),
        "/broken": (False, "answered 500 Internal Server Error"),
        "/moved": (True, ""),
        "/moved-away": (False, "answered 404 Not Found"),
        "/loop": (False, "redirects in a loop"),
        "/no-head": (True, ""),
    }


def test_head_first_then_get_only_when_head_is_refused(server: LinkServer) -> None:
    urls = [server.url(p) for p in ("/ok", "/no-head", "/head-not-implemented", "/missing")]
    results = check_links(urls, FAST)
    assert [r.ok for r in results] == [True, True, True, False]
    assert sorted(server.requests) == sorted(
        [
            ("HEAD", "/ok"),
            ("HEAD", "/no-head"),
            ("GET", "/no-head"),
            ("HEAD", "/head-not-implemented"),
            ("GET", "/head-not-implemented"),
            ("HEAD", "/missing"),
        ]
    )


def test_redirects_are_followed_to_the_final_page(server: LinkServer) -> None:
    [result] = check_links([server.url("/moved")], FAST)
    assert result.ok and result.status == 200
    assert server.requests == [("HEAD", "/moved"), ("HEAD", "/ok")]


def test_each_url_is_checked_once_in_the_order_given(server: LinkServer) -> None:
    urls = [server.url("/missing"), server.url("/ok"), server.url("/missing")]
    results = check_links(urls, FAST)
    assert [r.url for r in results] == [server.url("/missing"), server.url("/ok")]
    assert sorted(server.requests) == [("HEAD", "/missing"), ("HEAD", "/ok")]


def test_a_server_that_never_answers_times_out(silent_url: str) -> None:
    [result] = check_links([silent_url], LinkOptions(timeout=0.2))
    assert not result.ok
    assert result.problem == "did not answer within 0.2 s"


def test_a_refused_connection_is_a_problem_not_a_crash(refused_url: str) -> None:
    [result] = check_links([refused_url], FAST)
    assert not result.ok and result.problem.startswith("could not be reached (")


def test_a_malformed_url_is_a_problem_not_a_crash() -> None:
    [result] = check_links(["http://[::1/oops"], FAST)
    assert not result.ok and result.problem.startswith("could not be fetched (")


@pytest.mark.parametrize(("concurrency", "per_host"), [(2, 4), (8, 2)], ids=["overall", "per-host"])
def test_requests_in_flight_are_bounded(
    server: LinkServer, concurrency: int, per_host: int
) -> None:
    server.barrier = threading.Barrier(2, timeout=5)
    urls = [server.url(f"/paired/{n}") for n in range(6)]
    results = check_links(urls, LinkOptions(timeout=5, concurrency=concurrency, per_host=per_host))
    assert all(r.ok for r in results)
    # The barrier lets requests through in pairs only: two were in flight together, never more.
    assert server.max_active == 2


def test_an_injected_transport_replaces_the_network() -> None:
    seen: list[str] = []
    agents: set[str] = set()

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url}")
        agents.add(request.headers["User-Agent"])
        return httpx.Response(404 if request.url.path == "/gone" else 200)

    options = LinkOptions(transport=httpx.MockTransport(handler))
    results = check_links(["https://news.example/ok", "https://news.example/gone"], options)
    assert [(r.ok, r.status) for r in results] == [(True, 200), (False, 404)]
    assert seen == ["HEAD https://news.example/ok", "HEAD https://news.example/gone"]
    assert agents == {USER_AGENT}


def test_no_urls_means_no_client() -> None:
    assert check_links([]) == []
