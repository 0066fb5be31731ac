"""Rate-limit compliance of `digest send --yes` against a local provider allowing R requests/s.

Run: .venv/bin/python bench/ratelimit.py [--rate R] [--burst B] [--recipients N]
                                         [--batch-size S] [--concurrency C]
                                         [--transports postmark,...] [--pacing paced,unpaced]

The fake provider of bench/fakeserver.py, in its own process, holds a token bucket (R requests/s,
B saved up) and answers 429 beyond it with the provider's own signals: Retry-After and
ratelimit-* (Resend), X-RateLimit-Reset (SendGrid), "try again after N seconds" (Mailgun),
nothing at all (Postmark). Up to three runs per transport:

  paced    [sending] requests_per_second = R: digest should never hit a 429 and sustain
           close to R requests/s;
  learned  [sending] requests_per_second = 0, the default: digest learns a pace from the
           429s (for Resend, 0 means its documented 2/s, so that run stays at 2/s);
  unpaced  [sending] requests_per_second = inf: no pacing at all, digest leans on the
           429 answers alone.

Each run must end with every journal row `sent` and each recipient received exactly once.
"""

from __future__ import annotations

import argparse
import math
import sqlite3
import sys
from dataclasses import dataclass, field
from pathlib import Path

from fakeserver import PROVIDERS, ServerProcess, ServerSpec
from send import (
    digest_send,
    insert_subscribers,
    journal_states,
    lost,
    workspace,
    write_workspace,
)


@dataclass
class Run:
    """One transport under one pacing."""

    kind: str
    pacing: str
    recipients: int
    requests: int = 0
    throttled: int = 0
    window: float = 0.0
    wall: float = 0.0
    states: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def request_rate(self) -> float:
        """Accepted requests per second: intervals between the first and the last answer."""
        return (self.requests - 1) / self.window if self.window and self.requests > 1 else 0.0


def first_error(work: Path) -> str | None:
    """The journal's reason for the first row that did not end `sent`, if any."""
    db = sqlite3.connect(work / ".digest" / "digest.db")
    try:
        row = db.execute(
            "SELECT error FROM deliveries WHERE state != 'sent' ORDER BY seq LIMIT 1"
        ).fetchone()
    finally:
        db.close()
    return None if row is None else str(row[0])


def run_once(kind: str, pacing: str, args: argparse.Namespace) -> Run:
    """Send args.recipients through a limited fake provider; check nothing was lost."""
    result = Run(kind, pacing, args.recipients)
    bound = 60 + 20 * args.recipients / (args.batch_size * args.rate)
    spec = ServerSpec(kind, deadline=bound + 60, rate=args.rate, burst=args.burst)
    with workspace(f"digest-ratelimit-{kind}-") as work, ServerProcess(spec) as server:
        write_workspace(
            work,
            kind,
            server.base_url,
            requests_per_second={"paced": args.rate, "learned": 0.0}.get(pacing, math.inf),
            concurrency=args.concurrency,
            batch_size=args.batch_size,
        )
        insert_subscribers(work, args.recipients)
        run = digest_send(work, kind, bound)
        stats = server.stats()
        result.wall = run.seconds
        result.requests, result.throttled = stats["accepted"], stats["throttled"]
        result.window = max(0.0, stats["last"] - stats["first"])
        result.states = journal_states(work)
        if run.status != 0:
            tail = " | ".join(run.stderr.strip().splitlines()[-2:])
            result.problems.append(f"digest exited {run.status}: {tail}")
        result.problems += lost(result.states, stats, args.recipients)
        reason = first_error(work)
        if reason:
            result.problems.append(f"first reason: {reason}")
    return result


def print_table(runs: list[Run], args: argparse.Namespace) -> None:
    """One line per run, then what the columns mean."""
    print(
        f"\nserver limit R = {args.rate:g} requests/s (burst {args.burst:g}), "
        f"batch_size = {args.batch_size}, concurrency = {args.concurrency}, "
        f"{args.recipients:,} recipients per run"
    )
    header = (
        f"{'transport':<9} {'pacing':<8} {'requests':>8} {'429s':>6} {'window s':>8} "
        f"{'req/s':>7} {'of R':>6} {'wall s':>7}  journal / server"
    )
    print(header)
    print("-" * len(header))
    for run in runs:
        states = ", ".join(f"{n} {state}" for state, n in sorted(run.states.items()))
        verdict = "LOST: " + "; ".join(run.problems) if run.problems else "each received once"
        print(
            f"{run.kind:<9} {run.pacing:<8} {run.requests:>8,} {run.throttled:>6,} "
            f"{run.window:>8.2f} {run.request_rate:>7.2f} {run.request_rate / args.rate:>6.0%} "
            f"{run.wall:>7.2f}  {states}; {verdict}"
        )
    print(
        "requests: accepted by the server; 429s: answered Too Many Requests; window: first "
        "request to last answer; of R: sustained accepted requests/s as a fraction of R."
    )


def main() -> None:
    """Run every transport paced and unpaced against the limited server."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=20.0, help="requests/s the server allows")
    parser.add_argument("--burst", type=float, default=5.0, help="requests the server saves up")
    parser.add_argument("--recipients", type=int, default=2_000)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--transports", default="postmark,sendgrid,mailgun,resend")
    parser.add_argument("--pacing", default="paced,learned,unpaced")
    args = parser.parse_args()
    kinds = [kind.strip() for kind in args.transports.split(",") if kind.strip()]
    if any(kind not in PROVIDERS for kind in kinds) or args.rate <= 0:
        parser.error(f"transports are {', '.join(PROVIDERS)}; --rate must be positive")
    too_big = [kind for kind in kinds if args.batch_size > PROVIDERS[kind].batch]
    if too_big:
        parser.error(f"--batch-size {args.batch_size} is over the maximum of {too_big}")
    runs = []
    for kind in kinds:
        for pacing in args.pacing.split(","):
            print(f"{kind} {pacing} ...", file=sys.stderr, flush=True)
            runs.append(run_once(kind, pacing, args))
    print_table(runs, args)
    if any(run.problems for run in runs):
        sys.exit(1)


if __name__ == "__main__":
    main()
