"""One-click unsubscribe throughput of a real `digest serve`: N readers' POSTs at concurrency C.

Run: .venv/bin/python bench/serve.py [--readers N] [--concurrency C] [--client raw|threads|asyncio]
                                     [--timeout S]

A temporary workspace (the repository's digest.toml, templates and drafts) with N active
subscribers on `default`; `python -m digestcli serve --port 0` as a child process
(DIGEST_SECRET set), ready once /healthz answers; then N RFC 8058 one-click POSTs, one per
reader, each with its own signed token, from this process at concurrency C (C keep-alive
sockets with pre-encoded requests; --client threads: C threads sharing one httpx.Client;
--client asyncio: one httpx.AsyncClient). Prints throughput, latency
percentiles, the server's CPU time and peak RSS (from /proc), this process's CPU (the load
generator shares the machine's cores), and checks that every reader left `default` and that
the events table holds exactly N rows.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from digestcli.db import connect, now
from digestcli.subscribers import count_subscribers
from digestcli.tokens import sign

REPO = Path(__file__).resolve().parents[1]
SECRET = "benchmark-secret"
LIST = "default"
ONE_CLICK = b"List-Unsubscribe=One-Click"
FORM = {"content-type": "application/x-www-form-urlencoded"}
TARGET_RATE = 1_000.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# ----- the workspace and the server -----------------------------------------------------------


def make_workspace(work: Path, readers: int) -> None:
    """The example publication with `readers` active subscribers on `default`."""
    shutil.copy(REPO / "digest.toml", work / "digest.toml")
    shutil.copytree(REPO / "templates", work / "templates")
    shutil.copytree(REPO / "drafts", work / "drafts")
    db = connect(work / ".digest" / "digest.db")
    try:
        stamp = now()
        db.execute("BEGIN")
        db.execute("INSERT INTO lists (name, created_at) VALUES (?, ?)", (LIST, stamp))
        db.executemany(
            "INSERT INTO subscribers (id, email, name, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?)",
            ((i + 1, reader(i), f"Reader {i}", stamp, stamp) for i in range(readers)),
        )
        db.executemany(
            "INSERT INTO memberships (list_id, subscriber_id, created_at) VALUES (1, ?, ?)",
            ((i + 1, stamp) for i in range(readers)),
        )
        db.execute("COMMIT")
    finally:
        db.close()


def reader(i: int) -> str:
    """The address of reader i."""
    return f"reader{i}@example.org"


def serve_env() -> dict[str, str]:
    """The environment of the serve child: the secret, no colour, no proxies, no other DIGEST_*."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.lower().endswith("_proxy") and not key.startswith("DIGEST_")
    }
    return env | {"NO_COLOR": "1", "DIGEST_SECRET": SECRET, "NO_PROXY": "127.0.0.1"}


@dataclass
class Server:
    """A running `digest serve` child: its process and base URL."""

    process: subprocess.Popen[bytes]
    url: str

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server so far, from /proc/PID/stat."""
        stat = Path(f"/proc/{self.process.pid}/stat").read_text(encoding="ascii")
        # Split after the command name, which is in parentheses and may hold spaces: utime and
        # stime, fields 14 and 15 of stat(5), are then at 11 and 12.
        fields = stat.rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def peak_rss_mb(self) -> float:
        """The server's resident-set high-water mark (VmHWM of /proc/PID/status)."""
        status = Path(f"/proc/{self.process.pid}/status").read_text(encoding="ascii")
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return math.nan


@contextmanager
def serving(work: Path, log: Path, startup: float = 30.0) -> Iterator[Server]:
    """`python -m digestcli serve --port 0` in work, until /healthz answers; stopped on exit."""
    with log.open("wb") as out:
        # Output to a file, not a pipe: 10,000 access-log lines would fill a pipe nobody reads.
        process = subprocess.Popen(
            [sys.executable, "-m", "digestcli", "serve", "--port", "0"],
            cwd=work,
            env=serve_env(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + startup
        url = ""
        while not url:
            text = log.read_text(encoding="utf-8", errors="replace")
            if "listening on " in text:
                url = text.split("listening on ", 1)[1].split()[0]
            elif process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"digest serve did not start:\n{text}")
            else:
                time.sleep(0.05)
        with httpx.Client(base_url=url, timeout=2, trust_env=False) as http:
            while True:
                try:
                    if http.get("/healthz").text == "ok":
                        break
                except httpx.TransportError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"digest serve never answered /healthz:\n{log.read_text()}")
                time.sleep(0.05)
        yield Server(process, url)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


# ----- the load -------------------------------------------------------------------------------


@dataclass
class Tally:
    """What one worker saw: latencies of answered requests, statuses, failures."""

    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)

    def add(self, other: Tally) -> None:
        """Fold another worker's tally into this one."""
        self.latencies += other.latencies
        self.statuses.update(other.statuses)
        self.failures.update(other.failures)


def links(readers: int) -> list[str]:
    """One one-click URL per reader, each with the reader's own token."""
    secret = SECRET.encode()
    return [f"/unsubscribe?token={sign(reader(i), LIST, secret)}" for i in range(readers)]


async def fire_async(url: str, targets: list[str], width: int, deadline: float) -> Tally:
    """POST every target through one AsyncClient, width requests in flight."""
    limits = httpx.Limits(max_connections=width, max_keepalive_connections=width)
    pending = iter(targets)
    tallies = [Tally() for _ in range(width)]
    async with httpx.AsyncClient(
        base_url=url, limits=limits, timeout=30, trust_env=False
    ) as client:

        async def worker(tally: Tally) -> None:
            for target in pending:
                if time.monotonic() > deadline:
                    tally.failures["not sent (time out)"] += 1
                    continue
                started = time.perf_counter()
                try:
                    answer = await client.post(target, content=ONE_CLICK, headers=FORM)
                except httpx.HTTPError as exc:
                    tally.failures[type(exc).__name__] += 1
                    continue
                tally.latencies.append(time.perf_counter() - started)
                tally.statuses[answer.status_code] += 1

        await asyncio.gather(*(worker(tally) for tally in tallies))
    return merged(tallies)


def fire_threads(url: str, targets: list[str], width: int, deadline: float) -> Tally:
    """POST every target through one httpx.Client shared by width threads."""
    limits = httpx.Limits(max_connections=width, max_keepalive_connections=width)
    pending = iter(targets)
    lock = threading.Lock()
    tallies = [Tally() for _ in range(width)]
    with httpx.Client(base_url=url, limits=limits, timeout=30, trust_env=False) as client:

        def worker(tally: Tally) -> None:
            while True:
                with lock:
                    target = next(pending, None)
                if target is None:
                    return
                if time.monotonic() > deadline:
                    tally.failures["not sent (time out)"] += 1
                    continue
                started = time.perf_counter()
                try:
                    answer = client.post(target, content=ONE_CLICK, headers=FORM)
                except httpx.HTTPError as exc:
                    tally.failures[type(exc).__name__] += 1
                    continue
                tally.latencies.append(time.perf_counter() - started)
                tally.statuses[answer.status_code] += 1

        with ThreadPoolExecutor(max_workers=width) as pool:
            for future in [pool.submit(worker, tally) for tally in tallies]:
                future.result()
    return merged(tallies)


async def fire_raw(url: str, targets: list[str], width: int, deadline: float) -> Tally:
    """POST every target over width keep-alive sockets, requests encoded before the clock runs.

    The load generator shares the two cores with the server: httpx spent 1.4-1.9 ms of CPU a
    request here, more than the server itself, so it measured the client. This one parses
    only the status line and Content-Length.
    """
    host, _, port = url.removeprefix("http://").partition(":")
    requests = [
        (
            f"POST {target} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(ONE_CLICK)}\r\n\r\n"
        ).encode()
        + ONE_CLICK
        for target in targets
    ]
    pending = iter(requests)
    tallies = [Tally() for _ in range(width)]

    async def worker(tally: Tally) -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            for request in pending:
                if time.monotonic() > deadline:
                    tally.failures["not sent (time out)"] += 1
                    continue
                started = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                await reader.readexactly(length)
                tally.latencies.append(time.perf_counter() - started)
                tally.statuses[int(head[9:12])] += 1
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            tally.failures[type(exc).__name__] += 1
        finally:
            writer.close()

    await asyncio.gather(*(worker(tally) for tally in tallies))
    return merged(tallies)


def merged(tallies: list[Tally]) -> Tally:
    """The workers' tallies as one."""
    total = Tally()
    for tally in tallies:
        total.add(tally)
    return total


Fire = Callable[[str, list[str], int, float], Tally]
# Threads are the default: on 2 cores the AsyncClient spent 3.8 ms of CPU a request against the
# threads' 1.4-1.9 ms, and drove the server at 179/s against 380-470/s.
CLIENTS: dict[str, Fire] = {
    "asyncio": lambda url, targets, width, deadline: asyncio.run(
        fire_async(url, targets, width, deadline)
    ),
    "threads": fire_threads,
    "raw": lambda url, targets, width, deadline: asyncio.run(
        fire_raw(url, targets, width, deadline)
    ),
}


# ----- the benchmark --------------------------------------------------------------------------


@dataclass
class Run:
    """The figures of one run."""

    readers: int
    width: int
    client: str
    load: float
    seconds: float
    tally: Tally
    server_cpu: float
    server_rss_mb: float
    client_cpu: float
    active: int
    events: int

    @property
    def errors(self) -> int:
        """Requests without a 200 answer: other statuses, failures, those never sent."""
        return self.readers - self.tally.statuses[200]

    def problems(self) -> list[str]:
        """Every way the run fell short of 'each reader answered 200 and unsubscribed once'."""
        found = []
        if self.errors:
            statuses = {s: n for s, n in self.tally.statuses.items() if s != 200}
            found.append(f"{self.errors} errors (statuses {statuses}, {dict(self.tally.failures)})")
        if self.active:
            found.append(f"{self.active} readers still active on {LIST}")
        if self.events != self.readers:
            found.append(f"{self.events} events recorded (expected {self.readers})")
        return found


def percentile(ordered: list[float], share: float) -> float:
    """The nearest-rank percentile of sorted values (nan when there are none)."""
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def bench(readers: int, width: int, client: str, timeout: float) -> Run:
    """Seed a workspace, start digest serve, fire the POSTs, read the figures and the store."""
    with tempfile.TemporaryDirectory(prefix="digest-bench-serve-") as tmp:
        work = Path(tmp) / "ws"
        work.mkdir()
        make_workspace(work, readers)
        targets = links(readers)
        with serving(work, Path(tmp) / "serve.log") as server:
            load = os.getloadavg()[0]  # other work on this machine skews every number
            cpu_before = server.cpu_seconds()
            client_before = time.process_time()
            started = time.perf_counter()
            tally = CLIENTS[client](server.url, targets, width, time.monotonic() + timeout)
            seconds = time.perf_counter() - started
            client_cpu = time.process_time() - client_before
            server_cpu = server.cpu_seconds() - cpu_before
            rss = server.peak_rss_mb()
        db = connect(work / ".digest" / "digest.db")
        try:
            active = count_subscribers(db, list_name=LIST, state="active")
            events = int(db.execute("SELECT count(*) FROM events").fetchone()[0])
        finally:
            db.close()
    return Run(
        readers, width, client, load, seconds, tally, server_cpu, rss, client_cpu, active, events
    )


def report(run: Run) -> None:
    """Print one run's figures and verdict."""
    ordered = sorted(run.tally.latencies)
    rate = run.readers / run.seconds if run.seconds else 0.0
    ms = [1000 * percentile(ordered, share) for share in (0.5, 0.9, 0.99)]
    print(
        f"\ndigest serve, one-click POSTs: {run.readers:,} readers, concurrency {run.width}, "
        f"{run.client} client, {os.cpu_count()} CPUs, load {run.load:.2f} at the start"
    )
    print(f"requests          {run.readers:,}")
    print(f"errors            {run.errors:,} (not 200, or no answer)")
    print(f"wall s            {run.seconds:.2f}")
    print(f"requests/s        {rate:,.0f}")
    print(f"latency ms        p50 {ms[0]:.1f}  p90 {ms[1]:.1f}  p99 {ms[2]:.1f}")
    print(
        f"server CPU s      {run.server_cpu:.2f} "
        f"({run.server_cpu / run.seconds:.0%} of one core over the wall time)"
    )
    print(f"server peak RSS   {run.server_rss_mb:.1f} MB")
    print(
        f"client CPU s      {run.client_cpu:.2f} "
        f"({run.client_cpu / run.seconds:.0%} of one core: this load generator)"
    )
    print(f"{'active on ' + LIST:<18}{run.active:,} (expected 0)")
    print(f"events rows       {run.events:,} (expected {run.readers:,})")
    problems = run.problems()
    if problems:
        print("FAILED: " + "; ".join(problems))
    elif rate >= TARGET_RATE:
        print(f"every reader unsubscribed once; meets the target (>= {TARGET_RATE:,.0f}/s)")
    else:
        print(f"every reader unsubscribed once; misses the target (>= {TARGET_RATE:,.0f}/s)")


def main() -> None:
    """Run the benchmark once and print its figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--readers", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--client", choices=sorted(CLIENTS), default="raw")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds for all the POSTs")
    args = parser.parse_args()
    if args.readers < 1 or args.concurrency < 1:
        parser.error("--readers and --concurrency must be at least 1")
    run = bench(args.readers, args.concurrency, args.client, args.timeout)
    report(run)
    if run.problems():
        sys.exit(1)


if __name__ == "__main__":
    main()
