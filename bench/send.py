"""Batch-send throughput, wire bytes and peak memory of `digest send --yes` per HTTP transport.

Run: .venv/bin/python bench/send.py [--recipients N] [--transports postmark,sendgrid,...]
                                    [--concurrency C] [--timeout S] [--profile DIR]
                                    [--code DIR] [--batch-size B]

For each transport: a temporary workspace (the repository's digest.toml, templates and example
draft) with N active subscribers on `default` and no rate limit ([sending] rate = 0,
requests_per_second = inf); a fake provider (bench/fakeserver.py) in a separate process that
speaks the API on 127.0.0.1; `digest send --yes` as a child process (wall time, CPU, peak RSS
from wait4); a check that every journal row is `sent` and that the server got each recipient
exactly once; then a bare httpx loop in this process that replays the request bodies digest
sent to the same server at the same concurrency: the server's own ceiling. --profile DIR runs
digest under cProfile (main thread only: the workers are threads) and keeps DIR/<transport>.prof.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fakeserver import MAILGUN_DOMAIN, PROVIDERS, ServerProcess, ServerSpec

from digestcli.db import now

REPO = Path(__file__).resolve().parents[1]
# The digest measured: this checkout, or the source tree that --code names, put first on the
# digest child's PYTHONPATH, so that two versions meet the same server in one run.
CODE: list[Path] = []
# Makes the store's schema with the digest measured (a newer schema would stop an older one).
_MAKE_STORE = (
    "import pathlib, sys; from digestcli.db import connect; connect(pathlib.Path(sys.argv[1]))"
)
SECRET = "benchmark-secret"
CITIES = ("Lyon", "Zürich", "São Paulo", "Chengdu")
RSS_TARGET_MB = 150.0
RATIO_TARGET = 0.60
# Where digest reads each provider's API key from.
SECRET_ENV = {
    "postmark": "DIGEST_POSTMARK_TOKEN",
    "sendgrid": "DIGEST_SENDGRID_API_KEY",
    "mailgun": "DIGEST_MAILGUN_API_KEY",
    "resend": "DIGEST_RESEND_API_KEY",
}
# Recipients/s the whole digest process should reach with each transport.
TARGETS = {"postmark": 5_000.0, "sendgrid": 20_000.0, "mailgun": 20_000.0, "resend": 5_000.0}


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
    shutil.copytree(templates(), work / "templates")
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
    """Count active subscribers on one list, with a city field, straight into the store."""
    path = work / ".digest" / "digest.db"
    subprocess.run(
        [sys.executable, "-c", _MAKE_STORE, str(path)],
        cwd=work,  # not the repository, whose digestcli/ would come first on sys.path
        env=code_env({}),
        check=True,
        timeout=60,
    )
    db = sqlite3.connect(path, isolation_level=None)
    stamp = now()
    db.execute("BEGIN")
    db.execute("INSERT INTO lists (name, created_at) VALUES (?, ?)", (list_name, stamp))
    # Readers with a name and a custom field, as issue 11's target states.
    db.executemany(
        "INSERT INTO subscribers (id, email, name, fields, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (
            (
                i + 1,
                f"user{i}@example.org",
                f"User {i}",
                json.dumps({"city": CITIES[i % 4]}),
                stamp,
                stamp,
            )
            for i in range(count)
        ),
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
        SECRET_ENV[kind]: "bench-key",
        "NO_PROXY": "127.0.0.1",
    }
    return code_env(env)


def templates() -> Path:
    """The templates of the digest measured: a theme may use what only its own code knows."""
    return (CODE[0] if CODE else REPO) / "templates"


def code_env(env: dict[str, str]) -> dict[str, str]:
    """env (or this process's, when empty) with the measured digest first on PYTHONPATH."""
    env = env or dict(os.environ)
    if CODE:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(CODE[0]), env.get("PYTHONPATH")]))
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
    kind: str,
    count: int,
    concurrency: int,
    profile_dir: Path | None,
    timeout: float,
    batch_size: int | None = None,
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
            write_workspace(
                ws, kind, server.base_url, concurrency=concurrency, batch_size=batch_size
            )
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
        target = TARGETS[row.kind]
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
    parser.add_argument("--batch-size", type=int, help="[transport] batch_size (default: none)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per digest run")
    parser.add_argument("--profile", type=Path, help="run digest under cProfile; .prof files here")
    parser.add_argument(
        "--code", type=Path, help="measure the digest in this source tree (default: this one)"
    )
    args = parser.parse_args()
    if args.code:
        CODE.append(args.code.resolve())
        print(f"measuring the digest in {CODE[0]}", file=sys.stderr)
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
            bench_transport(
                kind,
                args.recipients,
                args.concurrency,
                args.profile,
                args.timeout,
                args.batch_size,
            )
        )
    print_table(rows, args.concurrency)
    if any(row.problems for row in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
