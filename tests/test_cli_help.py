"""Every command explains itself: `--help` works everywhere, and the README lists the CLI."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
import typer
from typer.testing import CliRunner

from digestcli.cli import app

README = Path(__file__).resolve().parents[1] / "README.md"
COMMANDS_HEADING = "### Commands"
SESSION_HEADING = "## A session"
HOW_TO_ADD = (
    f"add a line `digest NAME ARGS...   what it does` to the block under {COMMANDS_HEADING!r} "
    "in README.md"
)


def _walk(command: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """The path of every command and sub-command under `command`, itself first."""
    yield path
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from _walk(sub, (*path, name))


ROOT = typer.main.get_command(app)
PATHS = list(_walk(ROOT))


def _command(path: tuple[str, ...]) -> click.Command | None:
    """The command at `path`, or None when the CLI has no such command."""
    command: click.Command = ROOT
    for name in path:
        if not isinstance(command, click.Group) or name not in command.commands:
            return None
        command = command.commands[name]
    return command


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("path", PATHS, ids=lambda path: " ".join(("digest", *path)))
def test_every_command_answers_help_with_what_it_does(
    path: tuple[str, ...], clean_env: None
) -> None:
    command = _command(path)
    assert command is not None
    result = CliRunner().invoke(app, [*path, "--help"])
    shown = " ".join(("digest", *path))
    assert result.exit_code == 0, f"`{shown} --help` failed: {result.output}"
    assert f"Usage: {shown} " in _flat(result.output)
    assert command.help, f"`{shown}` has no help: give its function a docstring"
    # The first line of its help shows, whole and unchanged by Rich markup.
    summary = command.help.strip().splitlines()[0]
    assert _flat(summary) in _flat(result.output), f"`{shown} --help` mangles {summary!r}"
    for param in command.params:
        if isinstance(param, click.Option) and param.name != "help":
            assert param.help, f"`{shown}` option {param.opts[0]} has no help text"
        if isinstance(param, click.Argument):
            # Typer keeps an argument's help on the parameter; it must reach the screen.
            text = getattr(param, "help", None)
            assert text, f"`{shown}` argument {param.human_readable_name} has no help text"
            assert _flat(text)[:30] in _flat(result.output), f"`{shown}` hides {text!r}"


def _code_block(heading: str) -> str:
    """The first fenced code block after `heading` in README.md."""
    text = README.read_text(encoding="utf-8")
    start = text.find(f"\n{heading}\n")
    assert start >= 0, f"README.md has no {heading!r} section"
    block = re.search(r"^```[^\n]*\n(.*?)^```", text[start:], re.MULTILINE | re.DOTALL)
    assert block, f"README.md's {heading!r} section has no code block"
    return block.group(1)


def _named(block: str) -> set[tuple[str, ...]]:
    """The commands (and sub-commands of groups) that `digest ...` calls in a README block."""
    named: set[tuple[str, ...]] = set()
    for found in re.finditer(r"\bdigest ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?", block):
        name, sub = found.groups()
        group = _command((name,))
        named.add((name, sub) if sub and isinstance(group, click.Group) else (name,))
    return named


def _listed() -> set[tuple[str, ...]]:
    """The commands the README's command list names, one per line."""
    listed: set[tuple[str, ...]] = set()
    for line in _code_block(COMMANDS_HEADING).splitlines():
        assert line.startswith("digest "), f"README.md {COMMANDS_HEADING}: {line!r}"
        listed |= _named(line.split("  ")[0])
    return listed


def test_the_readme_lists_every_command_the_cli_has() -> None:
    listed = _listed()
    for path in PATHS[1:]:
        command = _command(path)
        # A group is listed through its sub-commands, each checked on its own.
        if command is None or command.hidden or isinstance(command, click.Group):
            continue
        name = " ".join(path)
        assert path in listed, (
            f"`digest {name}` is a command but README.md does not list it: "
            f"{HOW_TO_ADD.replace('NAME', name)}."
        )


@pytest.mark.parametrize("heading", [COMMANDS_HEADING, SESSION_HEADING])
def test_every_command_the_readme_names_exists(heading: str) -> None:
    for path in sorted(_named(_code_block(heading))):
        assert _command(path) is not None, (
            f"README.md's {heading!r} block runs `digest {' '.join(path)}`, which the CLI does "
            "not have: fix the README, or register the command in digestcli/cli/."
        )
