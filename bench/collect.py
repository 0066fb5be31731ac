"""Whole-process `digest collect` of many feeds from a local server; then with one feed stalled.

Run: .venv/bin/python bench/collect.py [--feeds 50] [--entries 50] [--runs 5] [--timeout 2]

Targets: all feeds in under 2 s; with one feed that never answers, bounded by the timeout
(one stalled request holds one worker), not feeds x timeout.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from xml.sax.saxutils import escape

REPO = Path(__file__).resolve().parents[1]
RELEASE = threading.Event()


def rss(feed: int, entries: int) -> bytes:
    """An RSS 2.0 feed of `entries` items, an hour apart, with HTML summaries."""
    start = dt.datetime(2026, 11, 29, tzinfo=dt.UTC)
    items = []
    for n in range(entries):
        when = format_datetime(start - dt.timedelta(hours=n * 3 + feed), usegmt=True)
        summary = escape(
            f"<p>Entry {n} of feed {feed}: <b>a paragraph</b> of the kind news sites put in "
            "their feeds, with a <a href='https://example.org/'>link</a> or two.</p>" * 3
        )
        items.append(
            f"<item><title>Feed {feed}, story {n}</title>"
            f"<link>https://feed{feed}.example.org/story/{n}</link>"
            f"<guid>https://feed{feed}.example.org/story/{n}</guid>"
            f"<description>{summary}</description><pubDate>{when}</pubDate></item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Feed {feed}</title><link>https://feed{feed}.example.org/</link>"
        f"<description>Bench feed</description>{''.join(items)}</channel></rss>"
    ).encode()


class Handler(BaseHTTPRequestHandler):
    """Serves /feed/N; /stalled never answers."""

    protocol_version = "HTTP/1.1"
    bodies: ClassVar[dict[str, bytes]] = {}

    def do_GET(self) -> None:
        if self.path == "/stalled":
            RELEASE.wait(60)
            return
        body = self.bodies[self.path]
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


class Server(ThreadingHTTPServer):
    """Threads that die with the benchmark."""

    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up on /stalled is expected."""


def workspace(root: Path, urls: list[str], timeout: float) -> Path:
    """A workspace following urls, with a draft."""
    root.mkdir()
    shutil.copy(REPO / "digest.toml", root / "digest.toml")
    (root / "drafts").mkdir()
    (root / "drafts" / "2026-11-30-week-48.md").write_text(
        "---\ntitle: Week 48\ndate: 2026-11-30\nnumber: 48\n---\n\nHi.\n", encoding="utf-8"
    )
    listed = ", ".join(f'"{url}"' for url in urls)
    with (root / "digest.toml").open("a", encoding="utf-8") as config:
        config.write(f"\n[feeds]\nurls = [{listed}]\ntimeout = {timeout}\n")
    return root


def timed_collect(root: Path, runs: int) -> tuple[float, float, float, int]:
    """Median and max wall seconds of `digest collect --json`, its median CPU seconds (user +
    system: what a busy shared machine changes least), and how many entries it listed."""
    env = {**os.environ, "NO_COLOR": "1"}
    times = []
    cpu = []
    count = 0
    for _ in range(runs):
        # A fresh store each run: every feed fetched in full, no 304s.
        shutil.rmtree(root / ".digest", ignore_errors=True)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "digestcli", "collect", "--json"],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        times.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if done.returncode not in (0, 1):
            raise SystemExit(f"digest collect failed: {done.stderr}")
        count = done.stdout.count('"number"')
    return statistics.median(times), max(times), statistics.median(cpu), count


def main() -> None:
    """Print whole-process collect times: every feed answering, then one stalled."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--feeds", type=int, default=50)
    parser.add_argument("--entries", type=int, default=50)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=2.0)
    args = parser.parse_args()
    Handler.bodies = {f"/feed/{n}": rss(n, args.entries) for n in range(args.feeds)}
    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    urls = [f"{base}/feed/{n}" for n in range(args.feeds)]
    size = sum(len(body) for body in Handler.bodies.values())
    print(
        f"{args.feeds} feeds x {args.entries} entries ({size / 1e6:.1f} MB of RSS), "
        f"timeout {args.timeout:g} s, {args.runs} runs, {os.cpu_count()} CPUs"
    )
    print(f"load average {os.getloadavg()[0]:.1f} at the start")
    print(f"{'case':<32} {'median s':>9} {'max s':>7} {'CPU s':>6} {'entries':>8}")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            cases = [
                ("all feeds answer", urls),
                ("one feed stalled (never answers)", [*urls[:-1], f"{base}/stalled"]),
            ]
            for n, (name, feeds) in enumerate(cases):
                root = workspace(Path(tmp) / str(n), feeds, args.timeout)
                median, worst, cpu, count = timed_collect(root, args.runs)
                print(f"{name:<32} {median:>9.3f} {worst:>7.3f} {cpu:>6.2f} {count:>8}")
    finally:
        RELEASE.set()
        server.shutdown()


if __name__ == "__main__":
    main()
