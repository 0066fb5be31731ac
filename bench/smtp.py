"""SMTP send throughput and CPU per message: `digest send` against mailmerge, one loopback sink.

Run: .venv/bin/python bench/smtp.py [--recipients 2000,20000] [--concurrency C]
                                    [--mailmerge PATH] [--code DIR]

For each list size: a temporary workspace (the repository's digest.toml, templates and
example draft) with N active subscribers on `default`, each with a name; the SMTP sink of
bench/smtpsink.py in a separate process on 127.0.0.1; `digest send --yes` over SMTP as a
child process (wall time, CPU, peak RSS from wait4), checked afterwards: every journal row
`sent`, every recipient received exactly once. Then mailmerge sends the same issue (its HTML
and text as a multipart/alternative template, name and unsubscribe link filled per row) to
the same sink.

mailmerge is not a dependency of digest. Install it apart, e.g.

    python3 -m venv /tmp/mm-venv && /tmp/mm-venv/bin/pip install mailmerge

and pass --mailmerge /tmp/mm-venv/bin/mailmerge (that path is the default). Without it the
mailmerge column is skipped, and the script says so.

CPU per message: digest's user+sys seconds over N, and the same less one run with a single
recipient (start-up, render and snapshot), which is the per-message cost of the send itself.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

from send import (
    CODE,
    REPO,
    SECRET,
    code_env,
    insert_subscribers,
    journal_states,
    run_child,
    templates,
)
from smtpsink import SinkProcess

from digestcli.config import load_settings
from digestcli.drafts import load_draft
from digestcli.message import unsubscribe_url
from digestcli.models import MergeText
from digestcli.render import render_issue

MAILMERGE = Path("/tmp/mm-venv/bin/mailmerge")
RATIO_TARGET = 10.0
CPU_TARGET_MS = 0.5


def write_workspace(work: Path, port: int, concurrency: int) -> None:
    """The repository's templates and draft, a digest.toml aimed at the sink."""
    shutil.copytree(templates(), work / "templates")
    shutil.copytree(REPO / "drafts", work / "drafts")
    original = tomllib.loads((REPO / "digest.toml").read_text(encoding="utf-8"))
    pub, unsub = original["publication"], original["unsubscribe"]
    lines = ["[publication]"]
    lines += [f"{key} = {_quote(value)}" for key, value in pub.items()]
    lines += ["", "[unsubscribe]"]
    lines += [f"{key} = {_quote(value)}" for key, value in unsub.items()]
    lines += [
        "",
        "[transport]",
        'kind = "smtp"',
        'host = "127.0.0.1"',
        f"port = {port}",
        'security = "none"',
        "",
        "[sending]",
        "rate = 0",
        "requests_per_second = inf",
        f"concurrency = {concurrency}",
    ]
    (work / "digest.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _quote(value: object) -> str:
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def _jinja(text: MergeText) -> str:
    """A rendered part as a mailmerge (Jinja) template: literals raw, slots as variables."""
    out = []
    for index, part in enumerate(text.parts):
        if index % 2:
            out.append("{{ " + part.replace(".", "_") + " }}")
        elif part:
            out.append("{% raw %}" + part + "{% endraw %}")
    return "".join(out)


def write_mailmerge(work: Path, port: int, count: int) -> None:
    """mailmerge's template, database and server config for the same issue and readers."""
    settings = load_settings(REPO / "digest.toml")
    draft = load_draft(next((REPO / "drafts").glob("*.md")))
    content = render_issue(draft.issue, settings, REPO / "templates")
    template = f"""TO: {{{{ name }}}} <{{{{ email }}}}>
SUBJECT: {content.subject}
FROM: {content.from_addr}
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="digest-bench-boundary"

--digest-bench-boundary
Content-Type: text/plain; charset=utf-8

{_jinja(content.text)}
--digest-bench-boundary
Content-Type: text/html; charset=utf-8

{_jinja(content.html)}
--digest-bench-boundary--
"""
    (work / "template.txt").write_text(template, encoding="utf-8")
    with (work / "database.csv").open("w", newline="", encoding="utf-8") as db:
        writer = csv.writer(db)
        writer.writerow(["email", "name", "unsubscribe_url"])
        for i in range(count):
            url = unsubscribe_url(settings.unsubscribe.url, f"token{i}")
            writer.writerow([f"user{i}@example.org", f"User {i}", url])
    (work / "server.conf").write_text(
        f"[smtp_server]\nhost = 127.0.0.1\nport = {port}\nsecurity = Never\nratelimit = 0\n",
        encoding="utf-8",
    )


@dataclass
class Run:
    """One sender's run against the sink."""

    seconds: float
    cpu: float
    rss_mb: float
    problems: list[str]

    def rate(self, count: int) -> float:
        """Recipients per wall second."""
        return count / self.seconds if self.seconds else 0.0


def _check(stats: dict[str, object], count: int) -> list[str]:
    problems = []
    if stats["recipients"] != count or stats["unique"] != count:
        problems.append(f"sink got {stats['recipients']} ({stats['unique']} distinct), not {count}")
    return problems


def run_digest(sink: SinkProcess, count: int, concurrency: int, timeout: float) -> Run:
    """`digest send --yes` over SMTP to the sink, checked afterwards."""
    sink.reset()
    with tempfile.TemporaryDirectory(prefix="digest-bench-smtp-") as tmp:
        ws = Path(tmp)
        write_workspace(ws, sink.port, concurrency)
        insert_subscribers(ws, count)
        env = code_env({"NO_COLOR": "1", "DIGEST_SECRET": SECRET, "PATH": "/usr/bin:/bin"})
        child = run_child([sys.executable, "-m", "digestcli", "send", "--yes"], ws, env, timeout)
        problems = [] if child.status == 0 else [f"digest exited {child.status}"]
        states = journal_states(ws)
        if states.get("sent") != count:
            problems.append(f"journal {states}")
    problems += _check(sink.stats(), count)
    return Run(child.seconds, child.cpu_seconds, child.peak_rss_mb, problems)


def run_mailmerge(sink: SinkProcess, mailmerge: Path, count: int, timeout: float) -> Run:
    """mailmerge sending the same issue to the same readers through the sink."""
    sink.reset()
    with tempfile.TemporaryDirectory(prefix="digest-bench-mailmerge-") as tmp:
        work = Path(tmp)
        write_mailmerge(work, sink.port, count)
        argv = [str(mailmerge), "--no-dry-run", "--no-limit", "--output-format", "raw"]
        argv += ["--template", "template.txt", "--database", "database.csv"]
        argv += ["--config", "server.conf"]
        child = run_child(argv, work, {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}, timeout)
    problems = [] if child.status == 0 else [f"mailmerge exited {child.status}"]
    problems += _check(sink.stats(), count)
    return Run(child.seconds, child.cpu_seconds, child.peak_rss_mb, problems)


def main() -> None:
    """Run digest (and mailmerge when installed) for each list size and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", default="2000,20000")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--mailmerge", type=Path, default=MAILMERGE)
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--code", type=Path, help="measure the digest in this source tree")
    args = parser.parse_args()
    if args.code:
        CODE.append(args.code.resolve())
        print(f"measuring the digest in {CODE[0]}", file=sys.stderr)
    sizes = [int(n) for n in args.recipients.split(",") if n.strip()]
    mailmerge = args.mailmerge if args.mailmerge.exists() else None
    if mailmerge is None:
        print(
            f"mailmerge not found at {args.mailmerge}: its column is skipped. Install it apart "
            "(python3 -m venv /tmp/mm-venv && /tmp/mm-venv/bin/pip install mailmerge).",
            file=sys.stderr,
        )
    header = (
        f"{'rcpts':>7} {'digest/s':>9} {'CPU ms/msg':>10} {'send ms/msg':>11} {'RSS MB':>7} "
        f"{'mailmerge/s':>11} {'mm CPU ms/msg':>13} {'ratio':>6}  verdict"
    )
    rows = []
    with SinkProcess() as sink:
        base = run_digest(sink, 1, args.concurrency, args.timeout)
        for count in sizes:
            print(f"digest: {count:,} recipients ...", file=sys.stderr, flush=True)
            digest = run_digest(sink, count, args.concurrency, args.timeout)
            mm = None
            if mailmerge is not None:
                print(f"mailmerge: {count:,} recipients ...", file=sys.stderr, flush=True)
                mm = run_mailmerge(sink, mailmerge, count, args.timeout)
            rows.append((count, digest, mm))
    print(f"\nconcurrency={args.concurrency}, loopback SMTP sink (bench/smtpsink.py)")
    print(header)
    print("-" * len(header))
    for count, digest, mm in rows:
        per_msg = digest.cpu / count * 1000
        send_ms = max(0.0, digest.cpu - base.cpu) / count * 1000
        ratio = digest.rate(count) / mm.rate(count) if mm and mm.rate(count) else 0.0
        problems = digest.problems + (mm.problems if mm else [])
        misses = []
        if mm and ratio < RATIO_TARGET:
            misses.append(f"ratio<{RATIO_TARGET:.0f}x")
        if send_ms > CPU_TARGET_MS:
            misses.append(f"CPU>{CPU_TARGET_MS} ms")
        verdict = "FAILED: " + "; ".join(problems) if problems else "all sent once"
        if not problems:
            verdict += "; " + ("meets targets" if not misses else "misses " + ", ".join(misses))
        mm_rate = f"{mm.rate(count):>11,.0f}" if mm else f"{'skipped':>11}"
        mm_cpu = f"{mm.cpu / count * 1000:>13.2f}" if mm else f"{'-':>13}"
        print(
            f"{count:>7,} {digest.rate(count):>9,.0f} {per_msg:>10.3f} {send_ms:>11.3f} "
            f"{digest.rss_mb:>7.1f} {mm_rate} {mm_cpu} {ratio:>5.1f}x  {verdict}"
        )
    print(
        "\ndigest/s: recipients per wall second of the whole `digest send --yes` process;\n"
        "CPU ms/msg: its user+sys time over N; send ms/msg: the same less a 1-recipient run;\n"
        f"targets: ratio >= {RATIO_TARGET:.0f}x mailmerge, send CPU <= {CPU_TARGET_MS} ms/msg"
    )
    if any(d.problems or (m and m.problems) for _, d, m in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
