"""Every Rich console is built in console.py from the command's environment, not os.environ."""

from __future__ import annotations

import ast
import io
from pathlib import Path
from typing import Any

import pytest

from digestcli.cli.progress import send_progress, show_status
from digestcli.console import make_console
from digestcli.sending import Progress

PACKAGE = Path(__file__).resolve().parents[1] / "digestcli"
STATUS: dict[str, Any] = {
    "draft": "2026-03-02-week-9.md",
    "list": "default",
    "transport": "outbox",
    "total": 2,
    "counts": {"sent": 1, "failed": 1},
    "failures": [{"email": "bob@example.org", "error": "mailbox full"}],
    "uncertain": [],
}


@pytest.fixture(autouse=True)
def plain_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """os.environ says the opposite of what the tests' env says, so a leak would show."""
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("FORCE_COLOR", raising=False)


def test_a_console_takes_colour_and_width_from_the_env_it_is_given() -> None:
    console = make_console(env={"FORCE_COLOR": "1", "COLUMNS": "42"}, file=io.StringIO())
    assert (console.is_terminal, console.no_color, console.width) == (True, False, 42)
    assert make_console(env={"NO_COLOR": "x"}, stderr=True).no_color


def test_status_prints_in_colour_when_the_command_env_asks_for_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    show_status(STATUS, env={"FORCE_COLOR": "1"})
    styled = capsys.readouterr().out
    assert "\x1b[1m2026-03-02-week-9.md\x1b[0m" in styled
    show_status(STATUS, env={})
    plain = capsys.readouterr().out
    assert "\x1b[" not in plain
    assert plain.splitlines()[0] == (
        "2026-03-02-week-9.md to list default via outbox: 2 recipients"
    )


def test_the_progress_bar_draws_only_on_a_terminal_of_the_command_env(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with send_progress(env={}) as update:
        update(Progress(total=2, sent=1))
    assert capsys.readouterr().err == ""
    with send_progress(env={"FORCE_COLOR": "1", "COLUMNS": "100"}) as update:
        update(Progress(total=2, sent=2))
    drawn = capsys.readouterr().err
    assert "Sending" in drawn
    assert "2/2" in drawn


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.partition(".")[0])
    return names


def test_only_the_cli_and_console_py_import_rich_or_typer() -> None:
    allowed = {PACKAGE / "console.py", *(PACKAGE / "cli").rglob("*.py")}
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in sorted(PACKAGE.rglob("*.py"))
        if path not in allowed and _imports(path) & {"rich", "typer", "click"}
    ]
    assert offenders == []


def test_the_status_line_is_one_line_and_takes_names_literally(
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = {**STATUS, "draft": "2026-11-30-[bold]-a-long-title-that-runs-past-eighty-columns.md"}
    data["uncertain"] = ["[x]@example.org"]
    show_status(data, env={"COLUMNS": "40"})
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (
        "2026-11-30-[bold]-a-long-title-that-runs-past-eighty-columns.md to list default "
        "via outbox: 2 recipients"
    )
    assert "  [x]@example.org" in lines
