"""Time `digest subscribers import` on a generated CSV: rows per second and peak memory.

Run: .venv/bin/python bench/import.py [--rows N]   (default 100,000 rows; target < 10 s)

Each measured command runs in its own child process; peak RSS is the child's
ru_maxrss (RUSAGE_CHILDREN is the maximum over the children waited for so far, so the
children run in order of growing size: start-up, fresh import, re-import).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def write_csv(path: Path, rows: int) -> None:
    """A realistic file: mixed-case addresses, names with commas, CJK, a few bad rows."""
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("email,name,city,plan\n")
        for i in range(rows):
            if i % 10_000 == 9_999:
                out.write(f"broken{i}@@example.org,Broken,,\n")  # reported and skipped
            elif i % 3 == 0:
                out.write(f'Reader.{i}@Example.ORG,"Reader, No. {i}",Oslo,gold\n')
            elif i % 3 == 1:
                out.write(f"读者{i}@example.org,读者 {i},北京,free\n")
            else:
                out.write(f"user+{i}@mail{i % 97}.example.net,User {i},,\n")


def run(argv: list[str], cwd: Path) -> tuple[float, int]:
    """Wall time of a child process and the peak RSS (KiB) of all children so far."""
    env = {**os.environ, "NO_COLOR": "1"}
    start = time.perf_counter()
    done = subprocess.run(argv, check=False, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    return seconds, peak


def main() -> None:
    """Generate the file, import it twice (new rows, then all existing) and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shutil.copy(REPO / "digest.toml", work / "digest.toml")
        csv_path = work / "subscribers.csv"
        write_csv(csv_path, args.rows)
        size_mb = csv_path.stat().st_size / 1e6
        digest = [sys.executable, "-m", "digestcli"]
        base_s, base_kib = run([*digest, "lists"], work)
        print(f"rows={args.rows:,}  file={size_mb:.1f} MB  python={sys.version.split()[0]}")
        print(f"{'run':<26} {'seconds':>8} {'rows/s':>10} {'peak RSS MiB':>13}")
        print(f"{'start-up (digest lists)':<26} {base_s:>8.2f} {'':>10} {base_kib / 1024:>13.1f}")
        for label in ("import (all new)", "re-import (all existing)"):
            seconds, peak = run([*digest, "subscribers", "import", str(csv_path)], work)
            print(f"{label:<26} {seconds:>8.2f} {args.rows / seconds:>10,.0f} {peak / 1024:>13.1f}")
        with sqlite3.connect(work / ".digest" / "digest.db") as db:
            stored = db.execute("SELECT count(*) FROM subscribers").fetchone()[0]
        print(f"subscribers stored: {stored:,} (bad rows skipped: {args.rows - stored:,})")


if __name__ == "__main__":
    main()
