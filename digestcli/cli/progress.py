"""Rich output for sending: the progress bar and the status report."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from digestcli.console import stderr_console, stdout_console
from digestcli.sending import Progress as SendProgress


@contextmanager
def send_progress(env: Mapping[str, str]) -> Iterator[Callable[[SendProgress], None]]:
    """A progress bar on stderr (rate, ETA, sent and failed); yields the update callback."""
    console = stderr_console(env)
    bar = Progress(
        TextColumn("[bold]Sending"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]:>8.0f}/s"),
        TextColumn("sent {task.fields[sent]} failed {task.fields[failed]}"),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal,
        transient=False,
    )
    task = bar.add_task("send", total=None, rate=0.0, sent=0, failed=0)

    def update(progress: SendProgress) -> None:
        done = progress.sent + progress.failed + progress.uncertain
        speed = bar.tasks[0].speed or 0.0
        bar.update(
            task,
            total=progress.total,
            completed=done,
            rate=speed,
            sent=progress.sent,
            failed=progress.failed + progress.uncertain,
        )

    with bar:
        yield update


def show_status(data: dict[str, Any], env: Mapping[str, str]) -> None:
    """The campaign's counts, failures and uncertain recipients, for people."""
    console = stdout_console(env)
    counts = data["counts"]
    # One line however long (it is read by people and grepped), with names taken literally.
    console.print(
        f"[bold]{escape(data['draft'])}[/] to list [bold]{escape(data['list'])}[/] "
        f"via {escape(data['transport'])}: {data['total']} recipients",
        soft_wrap=True,
    )
    table = Table(show_header=False, box=None)
    for state, number in counts.items():
        table.add_row(state.replace("_", " "), str(number))
    console.print(table)
    if data["failures"]:
        failures = Table("Failed", "Reason", title="Failures", title_justify="left")
        for row in data["failures"]:
            failures.add_row(row["email"], row["error"])
        console.print(failures)
    if data["uncertain"]:
        console.print(
            "[bold]Uncertain[/] (may or may not have received it; "
            "`digest send --retry-uncertain` re-sends):"
        )
        for email in data["uncertain"]:
            console.print(f"  {escape(email)}", soft_wrap=True)
