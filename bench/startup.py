"""Whole-process start-up time of the editing commands, against a bare interpreter.

Run: .venv/bin/python bench/startup.py [--runs N]
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


def median_seconds(argv: list[str], cwd: Path, runs: int) -> float:
    """Median wall time of running argv to completion."""
    times = []
    env = {**os.environ, "NO_COLOR": "1"}
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, cwd=cwd, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    """Print the median start-up time of each editing command."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=11)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shutil.copy(REPO / "digest.toml", work / "digest.toml")
        shutil.copytree(REPO / "drafts", work / "drafts")
        digest = [sys.executable, "-m", "digestcli"]
        rows = [
            ("python -c pass", [sys.executable, "-c", "pass"]),
            ("digest items", [*digest, "items"]),
            ("digest add", [*digest, "add", "Benchmark item", "--body", "Text."]),
            ("digest move 1 2", [*digest, "move", "1", "2"]),
        ]
        base = 0.0
        print(f"{'command':<20} {'median s':>9} {'over python':>12}  (runs={args.runs})")
        for name, argv in rows:
            seconds = median_seconds(argv, work, args.runs)
            base = base or seconds
            print(f"{name:<20} {seconds:>9.3f} {seconds - base:>12.3f}")


if __name__ == "__main__":
    main()
