"""`digest sync` of 100,000 SendGrid suppression entries from a local fake: seconds and peak memory.

Run: .venv/bin/python bench/sync.py [--entries N]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from digestcli.sync import sync
from digestcli.workspace import Workspace
from harness.suppressions import SendGridSuppressions, sync_workspace

LISTS = ("bounces", "blocks", "spam_reports", "invalid_emails", "unsubscribes")


def main() -> None:
    """Fill the fake, sync once into an empty store, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    total = parser.parse_args().entries
    with (
        tempfile.TemporaryDirectory() as tmp,
        SendGridSuppressions(validate=False, record=False) as fake,
    ):
        for i in range(total):
            fake.add(LISTS[i % len(LISTS)], f"reader{i}@example.org", 1_764_000_000 + i)
        root = sync_workspace(Path(tmp) / "ws", fake)
        started = time.perf_counter()
        report = sync(Workspace(root), fake.env)
        seconds = time.perf_counter() - started
    fetched = sum(s.fetched for s in report.sources)
    # ru_maxrss is the whole process, the fake server's 100,000 entries included.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"entries {fetched:,}  seconds {seconds:.1f}  peak RSS {peak:.0f} MB  "
        f"changes {report.changes}"
    )


if __name__ == "__main__":
    main()
