"""Rendering cost: `digest render` as a whole process, and per-recipient personalisation.

Run: .venv/bin/python bench/render.py [--runs N] [--recipients N]

(a) median wall time of `digest render` on the repository's example draft, next to a bare
    `python -c pass`; (b) microseconds per recipient for Message.html() + Message.text() on
    the rendered example issue (target: under 50 µs), with build_message reported apart.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "NO_COLOR": "1", "DIGEST_SECRET": "benchmark-secret"}
TARGET_US = 50.0


def median_seconds(argv: list[str], cwd: Path, runs: int) -> float:
    """Median wall time of running argv to completion."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, cwd=cwd, env=ENV, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def copy_workspace(work: Path) -> None:
    """The repository's workspace files, so the benchmark writes nothing into the repo."""
    shutil.copy(REPO / "digest.toml", work / "digest.toml")
    shutil.copytree(REPO / "drafts", work / "drafts")
    shutil.copytree(REPO / "templates", work / "templates")


def process_times(runs: int) -> None:
    """Print (a): whole-process render time against a bare interpreter."""
    if not any((REPO / "drafts").glob("*.md")):
        print("(a) skipped: no example draft in drafts/")
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        copy_workspace(work)
        rows = [
            ("python -c pass", [sys.executable, "-c", "pass"]),
            ("digest render", [sys.executable, "-m", "digestcli", "render", "--out", "out"]),
        ]
        print(f"(a) {'command':<16} {'median s':>9} {'over python':>12}  (runs={runs})")
        base = 0.0
        for name, argv in rows:
            seconds = median_seconds(argv, work, runs)
            base = base or seconds
            print(f"    {name:<16} {seconds:>9.3f} {seconds - base:>12.3f}")


def personalisation(count: int) -> None:
    """Print (b): per-recipient cost of filling the rendered issue."""
    from digestcli.catalog import current_draft
    from digestcli.drafts import load_draft
    from digestcli.message import build_message
    from digestcli.models import Recipient
    from digestcli.render import render_issue
    from digestcli.workspace import Workspace

    workspace = Workspace(REPO)
    settings = workspace.settings()
    start = time.perf_counter()
    content = render_issue(
        load_draft(current_draft(workspace)).issue, settings, workspace.templates_dir
    )
    rendered = time.perf_counter() - start
    recipients = [
        Recipient(f"reader{i}@example.org", f"Reader <{i}> & co", {"company": f"Firm {i}"})
        for i in range(count)
    ]
    start = time.perf_counter()
    messages = [
        build_message(content, r, token=f"token{i}", unsubscribe=settings.unsubscribe)
        for i, r in enumerate(recipients)
    ]
    built = time.perf_counter() - start
    start = time.perf_counter()
    size = 0
    for message in messages:
        size += len(message.html()) + len(message.text())
    filled = time.perf_counter() - start
    per_recipient = filled / count * 1e6
    verdict = "ok" if per_recipient < TARGET_US else "OVER TARGET"
    print(f"(b) render_issue once (CSS inlined once):   {rendered * 1e3:8.1f} ms")
    print(f"    build_message per recipient:            {built / count * 1e6:8.1f} µs")
    print(
        f"    html() + text() per recipient:          {per_recipient:8.1f} µs  "
        f"(target < {TARGET_US:.0f} µs: {verdict}; {count} recipients, "
        f"{size / count / 1024:.1f} KB each)"
    )


def main() -> None:
    """Print both measurements."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--recipients", type=int, default=10_000)
    args = parser.parse_args()
    process_times(args.runs)
    personalisation(args.recipients)


if __name__ == "__main__":
    main()
