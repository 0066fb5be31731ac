"""Batch-send throughput, wire bytes and peak memory of `digest send --yes` per HTTP transport.

Run: .venv/bin/python bench/send.py [--recipients N] [--transports postmark,sendgrid,...]
                                    [--concurrency C] [--timeout S] [--profile DIR]

For each transport: a temporary workspace (the repository's digest.toml, templates and example
draft) with N active subscribers on `default` and no rate limit ([sending] rate = 0,
requests_per_second = inf); a fake provider in a separate process that speaks the API on
127.0.0.1; `digest send --yes` as a child process (wall time, CPU, peak RSS from wait4); a
check that every journal row is `sent` and that the server got each recipient exactly once;
then a bare httpx loop in this process that replays the request bodies digest sent to the
same server at the same concurrency: the server's own ceiling. --profile DIR runs digest under
cProfile (main thread only: the workers are threads) and keeps DIR/<transport>.prof.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx

from digestcli.db import connect, now

REPO = Path(__file__).resolve().parents[1]
SECRET = "benchmark-secret"
MAILGUN_DOMAIN = "mg.example.org"
RSS_TARGET_MB = 150.0
RATIO_TARGET = 0.60
CONTROL = "/_bench/"


@dataclass(frozen=True)
class Provider:
    """What the benchmark needs to know about one mail service API."""

    kind: str
    secret_env: str
    path: str
    batch: int
    target: float
    auth_header: str
    # Finds each recipient in a request body (one match per recipient, nothing else).
    recipient: re.Pattern[bytes]


_JSON_STRING = rb'"((?:[^"\\]|\\.)*)"'
PROVIDERS: dict[str, Provider] = {
    "postmark": Provider(
        "postmark",
        "DIGEST_POSTMARK_TOKEN",
        "/email/batch",
        500,
        5_000,
        "x-postmark-server-token",
        re.compile(rb'"To":' + _JSON_STRING),
    ),
    "sendgrid": Provider(
        "sendgrid",
        "DIGEST_SENDGRID_API_KEY",
        "/v3/mail/send",
        1000,
        20_000,
        "authorization",
        re.compile(rb'"to":\[\{"email":' + _JSON_STRING),
    ),
    "mailgun": Provider(
        "mailgun",
        "DIGEST_MAILGUN_API_KEY",
        f"/v3/{MAILGUN_DOMAIN}/messages",
        1000,
        20_000,
        "authorization",
        re.compile(rb'name="to"\r\n(?:[^\r\n]+\r\n)*\r\n([^\r\n]*)\r\n'),
    ),
    "resend": Provider(
        "resend",
        "DIGEST_RESEND_API_KEY",
        "/emails/batch",
        100,
        5_000,
        "authorization",
        re.compile(rb'"to":\[' + _JSON_STRING),
    ),
}


# ----- the fake provider (runs in its own process) ----------------------------------------------


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


class Bucket:
    """A token bucket: rate tokens per second, at most burst saved up."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = max(1.0, burst)
        self.tokens = self.burst
        self.stamp = time.monotonic()

    def take(self) -> float:
        """0 when a request may pass, else seconds until the next token."""
        now_ = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now_ - self.stamp) * self.rate)
        self.stamp = now_
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class FakeProvider:
    """Answers one provider's send endpoint the way the real API does on success and 429."""

    def __init__(self, spec: ServerSpec) -> None:
        self.spec = spec
        self.provider = PROVIDERS[spec.kind]
        self.stats = Stats()
        self.bucket = Bucket(spec.rate, spec.burst) if spec.rate > 0 else None
        self.idempotent: dict[str, bytes] = {}
        self.captured = 0
        self.ids = 0
        self.stop = asyncio.Event()

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
        if self.bucket is not None:
            wait = self.bucket.take()
            if wait > 0:
                stats.throttled += 1
                return self.throttle(wait)
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
            if self.bucket is not None:
                self.bucket = Bucket(self.spec.rate, self.spec.burst)
            return http_response(200, b"{}")
        if command == "stop":
            self.stop.set()
            return http_response(200, b"{}")
        return http_response(404, b"{}")


class HTTPConnection(asyncio.Protocol):
    """One keep-alive client connection: Content-Length request bodies, answers in order."""

    def __init__(self, app: FakeProvider) -> None:
        self.app = app
        self.buffer = bytearray()
        self.head: Head | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Remember where to write."""
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        """Parse as many complete requests as the buffer holds and answer each."""
        self.buffer += data
        assert self.transport is not None
        while True:
            if self.head is None:
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                self.head = parse_head(bytes(self.buffer[:end]), end + 4)
                if self.head is None:
                    self.transport.write(http_response(411, b'{"message":"length required"}'))
                    self.transport.close()
                    return
            need = self.head.size + self.head.length
            if len(self.buffer) < need:
                return
            body = bytes(self.buffer[self.head.size : need])
            del self.buffer[:need]
            head, self.head = self.head, None
            self.transport.write(self.app.handle(head, body))


def parse_head(raw: bytes, size: int) -> Head | None:
    """The request line and headers; None when the body has no Content-Length."""
    lines = raw.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "transfer-encoding" in headers:
        return None
    length = int(headers.get("content-length", "0"))
    return Head(method, target.split("?", 1)[0], headers, size, length, time.time())


async def _serve(spec: ServerSpec, ready: Connection) -> None:
    app = FakeProvider(spec)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: HTTPConnection(app), "127.0.0.1", 0, backlog=256)
    ready.send(server.sockets[0].getsockname()[1])
    parent, ends = os.getppid(), time.monotonic() + spec.deadline
    async with server:
        # Bounded life: stop when asked, at the deadline, or when the parent is gone.
        while not app.stop.is_set() and time.monotonic() < ends and os.getppid() == parent:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(app.stop.wait(), 0.5)


def serve(spec: ServerSpec, ready: Connection) -> None:
    """Entry point of the server process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent's Ctrl-C is the parent's
    asyncio.run(_serve(spec, ready))


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


# ----- the digest side ----------------------------------------------------------------------------


def _toml(value: object) -> str:
    return json.dumps(value) if isinstance(value, str) else str(value)


def write_workspace(
    work: Path,
    kind: str,
    base_url: str,
    *,
    rate: float = 0.0,
    requests_per_second: float = math.inf,
    concurrency: int = 4,
    batch_size: int | None = None,
) -> None:
    """A workspace: the repository's templates and draft, a digest.toml aimed at base_url."""
    # [sending] requests_per_second = 0 means the provider's documented default (Resend: 2/s)
    # and no value means "none", so the way to lift every limit is TOML's `inf`.
    shutil.copytree(REPO / "templates", work / "templates")
    shutil.copytree(REPO / "drafts", work / "drafts")
    original = tomllib.loads((REPO / "digest.toml").read_text(encoding="utf-8"))
    transport: dict[str, object] = {"kind": kind, "base_url": base_url}
    if kind == "mailgun":
        transport["domain"] = MAILGUN_DOMAIN
    if batch_size:
        transport["batch_size"] = batch_size
    sections = {
        "publication": original["publication"],
        "unsubscribe": original["unsubscribe"],
        "transport": transport,
        "sending": {
            "rate": rate,
            "requests_per_second": requests_per_second,
            "concurrency": concurrency,
        },
    }
    text = "".join(
        f"[{name}]\n" + "".join(f"{key} = {_toml(value)}\n" for key, value in table.items()) + "\n"
        for name, table in sections.items()
    )
    (work / "digest.toml").write_text(text, encoding="utf-8")


def insert_subscribers(work: Path, count: int, list_name: str = "default") -> None:
    """Count active subscribers on one list, straight into the store (like tests/fakes.store)."""
    db = connect(work / ".digest" / "digest.db")
    stamp = now()
    db.execute("BEGIN")
    db.execute("INSERT INTO lists (name, created_at) VALUES (?, ?)", (list_name, stamp))
    db.executemany(
        "INSERT INTO subscribers (id, email, name, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
        ((i + 1, f"user{i}@example.org", f"User {i}", stamp, stamp) for i in range(count)),
    )
    db.executemany(
        "INSERT INTO memberships (list_id, subscriber_id, created_at) VALUES (1, ?, ?)",
        ((i + 1, stamp) for i in range(count)),
    )
    db.execute("COMMIT")
    db.close()


def digest_env(kind: str) -> dict[str, str]:
    """The environment for a digest child: the secrets, no colour, no proxies."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.lower().endswith("_proxy") and not key.startswith("DIGEST_")
    }
    env |= {
        "NO_COLOR": "1",
        "DIGEST_SECRET": SECRET,
        PROVIDERS[kind].secret_env: "bench-key",
        "NO_PROXY": "127.0.0.1",
    }
    return env


@dataclass(frozen=True)
class ChildRun:
    """A finished child process: exit status, wall seconds, peak RSS, its stderr."""

    status: int
    seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    stderr: str


# Linux carries a parent's RSS high-water mark into a child's ru_maxrss across fork/vfork and
# exec, so a child started by this (large) process would report at least our peak. A tiny
# fresh interpreter starts the child instead and reads its rusage with wait4.
_LAUNCHER = """
import json, os, subprocess, sys, threading, time
argv, cwd, err_path, timeout = json.loads(sys.argv[1])
with open(err_path, "wb") as err:
    start = time.perf_counter()
    child = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err)
    watchdog = threading.Timer(timeout, child.kill)
    watchdog.start()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    watchdog.cancel()
    child.returncode = os.waitstatus_to_exitcode(status)
print(json.dumps([child.returncode, seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss]))
"""


def run_child(argv: list[str], cwd: Path, env: dict[str, str], timeout: float) -> ChildRun:
    """Run argv to completion: wall time, and peak RSS (ru_maxrss of that child via wait4)."""
    with tempfile.TemporaryDirectory(prefix="digest-bench-run-") as tmp:
        err = Path(tmp) / "stderr"
        request = json.dumps([argv, str(cwd), str(err), timeout])
        launcher = subprocess.run(
            [sys.executable, "-S", "-c", _LAUNCHER, request],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=timeout + 60,
        )
        status, seconds, cpu, max_rss_kib = json.loads(launcher.stdout)
        stderr = err.read_text(encoding="utf-8", errors="replace") if err.exists() else ""
    return ChildRun(int(status), float(seconds), float(cpu), max_rss_kib / 1024, stderr)


def digest_send(work: Path, kind: str, timeout: float, profile: Path | None = None) -> ChildRun:
    """`python -m digestcli send --yes` in the workspace (optionally under cProfile)."""
    argv = [sys.executable]
    if profile is not None:
        argv += ["-m", "cProfile", "-o", str(profile)]
    argv += ["-m", "digestcli", "send", "--yes"]
    return run_child(argv, work, digest_env(kind), timeout)


def journal_states(work: Path) -> dict[str, int]:
    """Rows per state in the workspace's journal."""
    db = sqlite3.connect(work / ".digest" / "digest.db")
    try:
        rows = db.execute("SELECT state, COUNT(*) FROM deliveries GROUP BY state").fetchall()
    finally:
        db.close()
    return {str(state): int(n) for state, n in rows}


def lost(states: dict[str, int], server: dict[str, Any], expected: int) -> list[str]:
    """Every way the run fell short of 'each recipient sent, and received exactly once'."""
    problems = []
    if states.get("sent", 0) != expected or sum(states.values()) != expected:
        problems.append(f"journal {states} (expected {expected} sent)")
    if server["recipients"] != expected or server["unique"] != expected:
        problems.append(
            f"server got {server['recipients']} recipients, {server['unique']} distinct "
            f"(expected {expected})"
        )
    if server["duplicates"]:
        problems.append(f"{server['duplicates']} recipients received more than once")
    return problems


# ----- the bare loop --------------------------------------------------------------------------


def captured(folder: Path) -> list[tuple[str, bytes]]:
    """The (content type, body) pairs the server kept."""
    return [
        (path.with_suffix(".type").read_text(), path.read_bytes())
        for path in sorted(folder.glob("*.body"))
    ]


def bare_loop(
    server: ServerProcess, kind: str, payloads: list[tuple[str, bytes]], requests: int, width: int
) -> float:
    """Post the captured bodies `requests` times, width at once, through one httpx client."""
    provider = PROVIDERS[kind]
    secret = {"x-postmark-server-token": "bench-key"}
    if kind == "mailgun":
        secret = {"authorization": "Basic YXBpOmJlbmNoLWtleQ=="}
    elif provider.auth_header == "authorization":
        secret = {"authorization": "Bearer bench-key"}
    limits = httpx.Limits(max_connections=width, max_keepalive_connections=width)
    with httpx.Client(
        base_url=server.base_url, trust_env=False, timeout=60, limits=limits
    ) as client:

        def post(i: int) -> None:
            content_type, body = payloads[i % len(payloads)]
            headers = {"content-type": content_type, **secret}
            if kind == "resend":
                headers["idempotency-key"] = f"bare-{i}"
            client.post(provider.path, content=body, headers=headers).raise_for_status()

        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=width) as pool:
            for future in [pool.submit(post, i) for i in range(requests)]:
                future.result()
        return time.perf_counter() - start


# ----- the benchmark --------------------------------------------------------------------------


@dataclass
class Row:
    """One transport's numbers."""

    kind: str
    recipients: int
    seconds: float = 0.0
    send_seconds: float = 0.0
    bytes_per_recipient: float = 0.0
    peak_rss_mb: float = 0.0
    bare_rate: float = 0.0
    load: float = 0.0
    cpu: float = 0.0
    server_cpu: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Recipients per wall second of the whole digest process."""
        return self.recipients / self.seconds if self.seconds else 0.0

    @property
    def send_rate(self) -> float:
        """Recipients per second between the server's first request and last answer."""
        return self.recipients / self.send_seconds if self.send_seconds else 0.0


@contextlib.contextmanager
def workspace(prefix: str) -> Iterator[Path]:
    """A temporary folder, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        yield Path(tmp)


def bench_transport(
    kind: str, count: int, concurrency: int, profile_dir: Path | None, timeout: float
) -> Row:
    """Run digest, check the journal and the server, then the bare loop, for one transport."""
    row = Row(kind, count)
    with workspace(f"digest-bench-{kind}-") as work:
        capture = work / "captured"
        capture.mkdir()
        spec = ServerSpec(kind, deadline=timeout + 120, capture_dir=str(capture))
        with ServerProcess(spec) as server:
            ws = work / "ws"
            ws.mkdir()
            write_workspace(ws, kind, server.base_url, concurrency=concurrency)
            insert_subscribers(ws, count)
            profile = profile_dir / f"{kind}.prof" if profile_dir else None
            row.load = os.getloadavg()[0]  # other work on this machine skews every number
            run = digest_send(ws, kind, timeout, profile)
            stats = server.stats()
            row.seconds, row.peak_rss_mb = run.seconds, run.peak_rss_mb
            row.cpu = run.cpu_seconds / run.seconds
            row.server_cpu = stats["cpu"] / max(run.seconds, 1e-9)
            row.send_seconds = max(0.0, stats["last"] - stats["first"])
            row.bytes_per_recipient = stats["bytes_in"] / max(1, stats["recipients"])
            if run.status != 0:
                tail = " | ".join(run.stderr.strip().splitlines()[-3:])
                row.problems.append(f"digest exited {run.status}: {tail}")
            row.problems += lost(journal_states(ws), stats, count)
            payloads = captured(capture)
            if payloads:
                server.reset()
                requests = math.ceil(count / PROVIDERS[kind].batch)
                seconds = bare_loop(server, kind, payloads, requests, concurrency)
                row.bare_rate = server.stats()["recipients"] / seconds
    return row


def print_table(rows: list[Row], concurrency: int) -> None:
    """The results, one line per transport, then the targets."""
    header = (
        f"{'transport':<9} {'rcpts':>9} {'wall s':>7} {'rcpt/s':>8} {'send s':>7} "
        f"{'send/s':>8} {'B/rcpt':>7} {'RSS MB':>7} {'bare/s':>8} {'ratio':>6} {'send ratio':>10}"
        f" {'CPU':>5} {'srvCPU':>6} {'load':>5}  verdict"
    )
    print(
        f"\nconcurrency={concurrency}, [sending] rate = 0 and requests_per_second = inf "
        f"(no limit), on {os.cpu_count()} CPUs"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        ratio = row.rate / row.bare_rate if row.bare_rate else 0.0
        send_ratio = row.send_rate / row.bare_rate if row.bare_rate else 0.0
        target = PROVIDERS[row.kind].target
        misses = []
        if row.rate < target:
            misses.append(f"rate<{target:,.0f}")
        if row.peak_rss_mb > RSS_TARGET_MB:
            misses.append(f"RSS>{RSS_TARGET_MB:.0f}")
        if ratio < RATIO_TARGET:
            misses.append(f"ratio<{RATIO_TARGET:.0%}")
        verdict = "FAILED: " + "; ".join(row.problems) if row.problems else "all sent once"
        if not row.problems:
            verdict += "; " + ("meets targets" if not misses else "misses " + ", ".join(misses))
        print(
            f"{row.kind:<9} {row.recipients:>9,} {row.seconds:>7.2f} {row.rate:>8,.0f} "
            f"{row.send_seconds:>7.2f} {row.send_rate:>8,.0f} {row.bytes_per_recipient:>7,.0f} "
            f"{row.peak_rss_mb:>7.1f} {row.bare_rate:>8,.0f} {ratio:>6.0%} {send_ratio:>10.0%}"
            f" {row.cpu:>5.0%} {row.server_cpu:>6.0%} {row.load:>5.2f}  {verdict}"
        )
    print(
        "\ntargets: >= 20,000 rcpt/s sendgrid and mailgun, >= 5,000 rcpt/s postmark and resend; "
        f"peak RSS <= {RSS_TARGET_MB:.0f} MB (also at 1,000,000 recipients); "
        f"ratio >= {RATIO_TARGET:.0%}"
    )
    for line in LEGEND:
        print(line)


LEGEND = (
    "wall s, rcpt/s: the whole `digest send --yes` process (start-up, render, snapshot, send)",
    "send s, send/s: from the server's first request to its last answer",
    "B/rcpt: request bytes (request line + headers + body) per recipient",
    "RSS MB: peak resident memory of the digest process (wait4 ru_maxrss)",
    "bare/s: this process posting the same bodies, one httpx client, same concurrency",
    "ratio, send ratio: rcpt/s and send/s over bare/s",
    "CPU: digest's user+sys time over its wall time (100% = one core busy)",
    "srvCPU: the fake provider's CPU time over the same wall time",
    "load: 1-minute load average as digest started (above ~0.5: other work on the machine)",
)


def main() -> None:
    """Benchmark each transport and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--transports", default="postmark,sendgrid,mailgun,resend")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per digest run")
    parser.add_argument("--profile", type=Path, help="run digest under cProfile; .prof files here")
    args = parser.parse_args()
    kinds = [kind.strip() for kind in args.transports.split(",") if kind.strip()]
    unknown = [kind for kind in kinds if kind not in PROVIDERS]
    if unknown:
        parser.error(f"unknown transports {unknown}; choose from {', '.join(PROVIDERS)}")
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    rows = []
    for kind in kinds:
        print(f"{kind}: {args.recipients:,} recipients ...", file=sys.stderr, flush=True)
        rows.append(
            bench_transport(kind, args.recipients, args.concurrency, args.profile, args.timeout)
        )
    print_table(rows, args.concurrency)
    if any(row.problems for row in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
