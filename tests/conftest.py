"""Shared fixtures: a throwaway workspace and the CLI run in-process against it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

import pytest
from click.testing import Result
from hypothesis import settings
from typer.testing import CliRunner

# No per-example deadline: on a loaded 2-core machine a slow example is not a failure, and
# tests here never measure time.
settings.register_profile("digest", deadline=None)
settings.load_profile("digest")

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "digest.toml"


class Cli(Protocol):
    """Runs `digest ARGS...` in the workspace, as a user would from a shell."""

    def __call__(
        self,
        *args: str,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Result: ...


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A fresh workspace: the repository's digest.toml and an empty drafts/ (no templates)."""
    root = tmp_path / "ws"
    root.mkdir()
    shutil.copyfile(CONFIG, root / "digest.toml")
    (root / "drafts").mkdir()
    return root


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No DIGEST_* variables, no editor, no colour: the CLI sees only what a test gives it."""
    for name in list(os.environ):
        if name.startswith("DIGEST_"):
            monkeypatch.delenv(name)
    for name in ("EDITOR", "VISUAL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")


@pytest.fixture
def cli(workspace: Path, clean_env: None, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """Run the Typer app in-process with the workspace as the current directory."""
    from digestcli.cli import app

    monkeypatch.chdir(workspace)
    runner = CliRunner()

    def run(*args: str, input: str | None = None, env: Mapping[str, str] | None = None) -> Result:
        argv: Sequence[str] = list(args)
        return runner.invoke(app, argv, input=input, env=dict(env or {}), prog_name="digest")

    return run
