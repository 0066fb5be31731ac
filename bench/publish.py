"""Publishing cost: `digest publish` as a whole process over an archive of sent issues.

Run: .venv/bin/python bench/publish.py [--issues 500] [--runs 5]

Makes a scratch workspace with N drafts of the example issue's size (ten items each), each
sent to one reader: the campaigns are written and finished through journal.py as a send
does. Then times (a) the first `digest publish` (every page written; target under 5 s),
(b) a re-run with nothing changed (nothing rewritten; target under 1 s), and (c) a re-run
after one more issue is sent, next to a bare `python -c pass`.
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

from digestcli import journal
from digestcli.config import load_settings
from digestcli.db import now, opened
from digestcli.publish_links import new_link

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "NO_COLOR": "1", "DIGEST_SECRET": "benchmark-secret"}
FIRST_TARGET, AGAIN_TARGET = 5.0, 1.0

ITEM = """\
## Story {n} of issue {number}: a headline of a usual length
link: https://example.org/{number}/{n} "Read the story"

A paragraph of the usual length for this digest, with **some emphasis**, a [link](https://example.org/)
and enough words to make the page about the size of a real issue: forty words or so, which
is what an editor writes under each headline when the week was busy.

A second, shorter paragraph closes the item.
"""


def draft_text(number: int) -> str:
    """A draft of the example issue's shape: front matter, intro, ten items, closing."""
    items = "\n".join(ITEM.format(n=n, number=number) for n in range(1, 11))
    return (
        f'---\ntitle: "Issue {number}"\nsubject: "Issue {number}: ten stories"\n'
        f"preheader: Ten short reads for week {number}.\ndate: 2020-01-01\n"
        f"number: {number}\n---\n\nHello, here is issue {number}.\n\n{items}\n"
        "# Wrapping Up\n\nSee you next week.\n"
    )


def one_reader(work: Path) -> None:
    """A store with one active reader on the default list."""
    with opened(work / ".digest" / "digest.db") as db:
        stamp = now()
        db.execute("INSERT INTO lists (name, created_at) VALUES ('default', ?)", (stamp,))
        db.execute(
            "INSERT INTO subscribers (email, name, created_at, updated_at)"
            " VALUES ('reader@example.org', 'Reader', ?, ?)",
            (stamp, stamp),
        )
        db.execute(
            "INSERT INTO memberships (list_id, subscriber_id, created_at) VALUES (1, 1, ?)",
            (stamp,),
        )


def send_issues(work: Path, first: int, count: int) -> None:
    """Write `count` drafts and record each as sent to the one reader, as a send would."""
    settings = load_settings(work / "digest.toml")
    with opened(work / ".digest" / "digest.db") as db:
        for number in range(first, first + count):
            name = f"issue-{number:04d}.md"
            (work / "drafts" / name).write_text(draft_text(number), encoding="utf-8")
            link = new_link(db, name, settings)
            campaign = journal.create_campaign(
                db,
                key=journal.campaign_key(name, "default"),
                draft=name,
                content_hash="benchmark",
                list_name="default",
                transport="outbox",
                slug=link.slug,
                web_url=link.web_url,
            )
            (delivery,) = journal.claim(db, campaign.id, 1, 10)
            journal.set_state(db, campaign.id, [delivery], "sent", None)
            journal.finish_if_done(db, campaign.id)


def seconds(argv: list[str], cwd: Path) -> float:
    """Wall time of running argv to completion."""
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=ENV, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issues", type=int, default=500)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    publish = [sys.executable, "-m", "digestcli", "publish"]
    rows: dict[str, list[float]] = {"python -c pass": [], "first": [], "again": [], "one more": []}
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            shutil.copy(REPO / "digest.toml", work / "digest.toml")
            shutil.copytree(REPO / "templates", work / "templates")
            (work / "drafts").mkdir()
            one_reader(work)
            send_issues(work, 1, args.issues)
            rows["python -c pass"].append(seconds([sys.executable, "-c", "pass"], work))
            rows["first"].append(seconds(publish, work))
            rows["again"].append(seconds(publish, work))
            send_issues(work, args.issues + 1, 1)
            rows["one more"].append(seconds(publish, work))
            if run == 0:
                files = sum(1 for p in (work / "site").rglob("*") if p.is_file())
                size = sum(p.stat().st_size for p in (work / "site").rglob("*") if p.is_file())
                print(f"site: {files} files, {size / 1e6:.1f} MB for {args.issues + 1} issues")
    print(
        f"{'digest publish':<16} {'median s':>9} {'min s':>7}"
        f"  (issues={args.issues}, runs={args.runs})"
    )
    targets = {"first": FIRST_TARGET, "again": AGAIN_TARGET}
    for name, times in rows.items():
        target = targets.get(name)
        verdict = (
            f"  target < {target:g} s: {'ok' if min(times) < target else 'MISSED'}"
            if target
            else ""
        )
        print(f"{name:<16} {statistics.median(times):>9.2f} {min(times):>7.2f}{verdict}")


if __name__ == "__main__":
    main()
