"""A fast fake provider for benchmarks: the four providers' send APIs, 429 over a request rate.

Each server runs in its own process (ServerProcess) on 127.0.0.1 and answers one provider's
send endpoint with the success shapes the real API gives, or, over ServerSpec.rate requests/s,
its 429 with the rate-limit signals that provider documents. It counts what it received (each
recipient found in the body, so a benchmark can check exactly-once delivery), keeps a few
bodies for replay, and has control endpoints under CONTROL: stats, reset, stop. It validates
nothing against the specs: tests/harness/providers.py is the faithful, slow fake for tests.
"""

from __future__ import annotations

import contextlib
import json
import math
import multiprocessing
import os
import re
import signal
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx

from digestcli.ratelimit import TokenBucket

MAILGUN_DOMAIN = "mg.example.org"
CONTROL = "/_bench/"


@dataclass(frozen=True)
class Provider:
    """What the server needs to know about one mail service's send API."""

    kind: str
    path: str
    batch: int  # the most messages one request may carry
    auth_header: str
    # Finds each recipient in a request body (one match per recipient, nothing else).
    recipient: re.Pattern[bytes]


_JSON_STRING = rb'"((?:[^"\\]|\\.)*)"'
PROVIDERS: dict[str, Provider] = {
    "postmark": Provider(
        "postmark",
        "/email/batch",
        500,
        "x-postmark-server-token",
        re.compile(rb'"To":' + _JSON_STRING),
    ),
    "sendgrid": Provider(
        "sendgrid",
        "/v3/mail/send",
        1000,
        "authorization",
        re.compile(rb'"to":\[\{"email":' + _JSON_STRING),
    ),
    "mailgun": Provider(
        "mailgun",
        f"/v3/{MAILGUN_DOMAIN}/messages",
        1000,
        "authorization",
        re.compile(rb'name="to"\r\n(?:[^\r\n]+\r\n)*\r\n([^\r\n]*)\r\n'),
    ),
    "resend": Provider(
        "resend",
        "/emails/batch",
        100,
        "authorization",
        re.compile(rb'"to":\[' + _JSON_STRING),
    ),
}


@dataclass(frozen=True)
class ServerSpec:
    """How the server process behaves: provider, optional rate limit, lifetime, capture."""

    kind: str
    deadline: float = 600.0
    rate: float = 0.0
    burst: float = 1.0
    capture_dir: str | None = None
    capture_count: int = 4


@dataclass
class Stats:
    """What the server saw since the last reset (control requests excluded)."""

    requests: int = 0
    accepted: int = 0
    throttled: int = 0
    errors: int = 0
    replayed: int = 0
    recipients: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    first: float = 0.0
    last: float = 0.0
    cpu_start: float = field(default_factory=time.process_time)
    seen: Counter[bytes] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        """The numbers, with the exactly-once summary instead of every address."""
        return {
            "requests": self.requests,
            "accepted": self.accepted,
            "throttled": self.throttled,
            "errors": self.errors,
            "replayed": self.replayed,
            "recipients": self.recipients,
            "unique": len(self.seen),
            "duplicates": sum(n - 1 for n in self.seen.values() if n > 1),
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "first": self.first,
            "last": self.last,
            "cpu": time.process_time() - self.cpu_start,
        }


@dataclass(frozen=True)
class Head:
    """A parsed request line and headers."""

    method: str
    path: str
    headers: dict[str, str]
    size: int
    length: int
    started: float


_REASONS = {200: "OK", 202: "Accepted", 401: "Unauthorized", 404: "Not Found", 429: "Too Many"}


def http_response(status: int, body: bytes = b"", headers: Sequence[tuple[str, str]] = ()) -> bytes:
    """An HTTP/1.1 keep-alive response with a Content-Length body."""
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}"]
    if body:
        lines.append("Content-Type: application/json")
    lines.append(f"Content-Length: {len(body)}")
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class FakeProvider:
    """Answers one provider's send endpoint the way the real API does on success and 429."""

    def __init__(self, spec: ServerSpec) -> None:
        self.spec = spec
        self.provider = PROVIDERS[spec.kind]
        self.stats = Stats()
        self.bucket = self.new_bucket()
        self.idempotent: dict[str, bytes] = {}
        self.captured = 0
        self.ids = 0
        self.stop = threading.Event()

    def new_bucket(self) -> TokenBucket | None:
        """A full bucket at the spec's rate, or None when the spec sets no limit."""
        return TokenBucket(self.spec.rate, self.spec.burst) if self.spec.rate > 0 else None

    def handle(self, head: Head, body: bytes) -> bytes:
        """The response bytes for one request."""
        if head.path.startswith(CONTROL):
            return self.control(head.path[len(CONTROL) :])
        stats = self.stats
        stats.requests += 1
        stats.bytes_in += head.size + len(body)
        stats.first = stats.first or head.started
        response = self.answer(head, body)
        stats.bytes_out += len(response)
        stats.last = time.time()
        return response

    def answer(self, head: Head, body: bytes) -> bytes:
        """Check the request, apply the rate limit, count recipients, answer."""
        provider, stats = self.provider, self.stats
        if head.method != "POST" or head.path != provider.path:
            stats.errors += 1
            return http_response(404, b'{"message":"not found"}')
        if not head.headers.get(provider.auth_header):
            stats.errors += 1
            return http_response(401, b'{"message":"missing credentials"}')
        key = head.headers.get("idempotency-key", "")
        if key and key in self.idempotent:
            stats.replayed += 1  # Resend answers a known key from its record, sending nothing
            return self.idempotent[key]
        if self.bucket is not None and not self.bucket.try_take():
            stats.throttled += 1
            return self.throttle(self.bucket.wait())
        if self.captured < self.spec.capture_count and self.spec.capture_dir:
            self.capture(head, body)
        recipients = provider.recipient.findall(body)
        stats.accepted += 1
        stats.recipients += len(recipients)
        stats.seen.update(recipients)
        response = self.success(recipients)
        if key:
            self.idempotent[key] = response
        return response

    def _id(self) -> str:
        self.ids += 1
        return f"{os.getpid():x}-{self.ids:09d}"

    def success(self, recipients: list[bytes]) -> bytes:
        """The provider's 2xx answer for an accepted batch."""
        kind = self.spec.kind
        if kind == "postmark":
            stamp = b'","SubmittedAt":"2026-11-30T09:00:00.0000000Z","To":"'
            parts = [
                b'{"ErrorCode":0,"Message":"OK","MessageID":"'
                + self._id().encode()
                + stamp
                + to  # still JSON-escaped, exactly as it came in
                + b'"}'
                for to in recipients
            ]
            return http_response(200, b"[" + b",".join(parts) + b"]")
        if kind == "sendgrid":
            return http_response(202, headers=[("X-Message-Id", self._id())])
        if kind == "mailgun":
            answer = {"id": f"<{self._id()}@{MAILGUN_DOMAIN}>", "message": "Queued. Thank you."}
            return http_response(200, json.dumps(answer).encode())
        ids = b",".join(b'{"id":"' + self._id().encode() + b'"}' for _ in recipients)
        return http_response(200, b'{"data":[' + ids + b"]}")

    def throttle(self, wait: float) -> bytes:
        """The provider's 429, with the rate-limit headers it documents."""
        kind, seconds = self.spec.kind, max(1, math.ceil(wait))
        limit = str(round(self.spec.rate))
        if kind == "postmark":  # documents no Retry-After: clients back off on their own
            return http_response(429, b'{"ErrorCode":0,"Message":"Rate limit exceeded."}')
        if kind == "sendgrid":
            reset = str(math.ceil(time.time() + wait))
            body = b'{"errors":[{"message":"too many requests","field":null,"help":null}]}'
            headers = [
                ("X-RateLimit-Limit", limit),
                ("X-RateLimit-Remaining", "0"),
                ("X-RateLimit-Reset", reset),
            ]
            return http_response(429, body, headers)
        if kind == "mailgun":
            message = (
                f"Domain {MAILGUN_DOMAIN} is not allowed to send: account-requests-per-sec "
                f"limit exceeded, try again after {seconds} seconds"
            )
            return http_response(429, json.dumps({"message": message}).encode())
        body = json.dumps(
            {"statusCode": 429, "name": "rate_limit_exceeded", "message": "Too many requests."}
        ).encode()
        headers = [
            ("retry-after", str(seconds)),
            ("ratelimit-limit", limit),
            ("ratelimit-remaining", "0"),
            ("ratelimit-reset", str(seconds)),
        ]
        return http_response(429, body, headers)

    def capture(self, head: Head, body: bytes) -> None:
        """Keep a few request bodies digest sent, for the bare loop to replay."""
        assert self.spec.capture_dir is not None
        base = Path(self.spec.capture_dir) / f"{self.captured:03d}"
        base.with_suffix(".body").write_bytes(body)
        base.with_suffix(".type").write_text(head.headers.get("content-type", ""))
        self.captured += 1

    def control(self, command: str) -> bytes:
        """The benchmark's own endpoints: stats, reset, stop."""
        if command == "stats":
            return http_response(200, json.dumps(self.stats.as_dict()).encode())
        if command == "reset":
            self.stats = Stats()
            self.idempotent.clear()
            self.bucket = self.new_bucket()
            return http_response(200, b"{}")
        if command == "stop":
            self.stop.set()
            return http_response(200, b"{}")
        return http_response(404, b"{}")


class _Handler(BaseHTTPRequestHandler):
    """One keep-alive client connection: the stdlib parses each request, the app answers it."""

    # The stdlib parser, not the hand-written asyncio protocol this server had before: on the
    # bodies send.py sends (785 KB SendGrid-like, 2.4 MB Postmark-like) it answered 2-7x the
    # requests/s at a quarter to a half of the CPU per request, since rfile.read(n) gathers a
    # body in C where the protocol ran Python for every socket read. Bodies of 1-25 KB cost it
    # more (~150 µs against ~90 µs), but those come paced, far below either server's ceiling.
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_POST(self) -> None:
        """Answer a provider or control request."""
        self.answer()

    def do_GET(self) -> None:
        """Answer a control request (or 404)."""
        self.answer()

    def answer(self) -> None:
        """Read the Content-Length body, let the app answer, write its bytes in one go."""
        started = time.time()
        headers = {name.lower(): value for name, value in self.headers.items()}
        if "transfer-encoding" in headers:
            self.wfile.write(http_response(411, b'{"message":"length required"}'))
            self.close_connection = True
            return
        length = int(headers.get("content-length", "0"))
        # Request line and "name: value" header lines as they came (httpx sends that form).
        size = len(self.requestline) + 2 + sum(len(k) + len(v) + 4 for k, v in headers.items()) + 2
        head = Head(self.command, self.path.split("?", 1)[0], headers, size, length, started)
        body = self.rfile.read(length)
        with self.server.lock:
            response = self.server.app.handle(head, body)
        self.wfile.write(response)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: a line per request would cost more than the answer."""


class _Server(ThreadingHTTPServer):
    """The app behind a threaded HTTP server; one lock keeps the app's counters exact."""

    daemon_threads = True
    request_queue_size = 256  # connections beyond the default 5 would wait in SYN retries

    def __init__(self, app: FakeProvider) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.app = app
        self.lock = threading.Lock()


def serve(spec: ServerSpec, ready: Connection) -> None:
    """Entry point of the server process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent's Ctrl-C is the parent's
    app = FakeProvider(spec)
    with _Server(app) as server:
        threading.Thread(target=server.serve_forever, args=(0.1,), daemon=True).start()
        ready.send(server.server_address[1])
        parent, ends = os.getppid(), time.monotonic() + spec.deadline
        # Bounded life: stop when asked, at the deadline, or when the parent is gone.
        while not app.stop.wait(0.5) and time.monotonic() < ends and os.getppid() == parent:
            pass
        server.shutdown()


class ServerProcess:
    """A fake provider running in its own process on 127.0.0.1; stops itself at its deadline."""

    def __init__(self, spec: ServerSpec) -> None:
        self.spec = spec
        context = multiprocessing.get_context("spawn")
        receive, send = context.Pipe(duplex=False)
        self.process = context.Process(target=serve, args=(spec, send), daemon=True)
        self.process.start()
        if not receive.poll(30):
            self.process.kill()
            raise RuntimeError("the fake provider did not start")
        self.port: int = receive.recv()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.control = httpx.Client(base_url=self.base_url, trust_env=False, timeout=30)

    def stats(self) -> dict[str, Any]:
        """The server's counters."""
        data: dict[str, Any] = self.control.get(CONTROL + "stats").json()
        return data

    def reset(self) -> None:
        """Zero the counters and forget idempotency keys."""
        self.control.post(CONTROL + "reset")

    def close(self) -> None:
        """Ask the server to stop; kill it if it does not."""
        with contextlib.suppress(httpx.HTTPError):
            self.control.post(CONTROL + "stop")
        self.control.close()
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
