"""The editing commands start fast: they never import the renderer or the HTTP stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# The rendering, sending, serving and fetching stacks: slow to import, not needed to edit a draft.
HEAVY = (
    "premailer",
    "lxml",
    "cssutils",
    "httpx",
    "jinja2",
    "starlette",
    "uvicorn",
    "feedparser",
    "tomlkit",
    "nh3",
)

# Runs the CLI the way the console script does, then reports every module it imported.
PROBE = """\
import json, sys
from digestcli.cli import main
report, sys.argv = sys.argv[1], ["digest", *sys.argv[2:]]
try:
    main()
except SystemExit as exc:
    status = exc.code
else:
    status = 0
with open(report, "w", encoding="utf-8") as out:
    json.dump({"status": status, "modules": sorted(sys.modules)}, out)
"""


def imported(workspace: Path, tmp_path: Path, *args: str) -> set[str]:
    """The top-level packages `digest ARGS...` imported, after checking it succeeded."""
    report = tmp_path / "report.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env["NO_COLOR"] = "1"
    env.pop("EDITOR", None)
    env.pop("VISUAL", None)
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(report), *args],
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(report.read_text(encoding="utf-8"))
    assert result["status"] in (0, None), done.stderr
    return {name.partition(".")[0] for name in result["modules"]}


@pytest.fixture
def with_draft(workspace: Path) -> Path:
    (workspace / "drafts" / "2026-03-02-week-9.md").write_text(
        "---\ntitle: Week 9\ndate: 2026-03-02\nnumber: 9\n---\n\nHi.\n\n"
        "## One\n\nFirst.\n\n## Two\n\nSecond.\n\n# Wrapping Up\n\nBye.\n",
        encoding="utf-8",
    )
    return workspace


@pytest.mark.parametrize(
    "args",
    [
        ("items",),
        ("items", "--json"),
        ("add", "Benchmark item", "--body", "Text.", "--link", "https://example.org/"),
        ("move", "1", "2"),
        ("remove", "1"),
        ("set", "subject", "New subject"),
        ("intro", "New intro."),
        ("show", "--json"),
        ("drafts",),
        ("new", "Another week"),
    ],
    ids=lambda args: " ".join(args[:2]),
)
def test_editing_commands_do_not_import_the_renderer(
    with_draft: Path, tmp_path: Path, args: tuple[str, ...]
) -> None:
    modules = imported(with_draft, tmp_path, *args)
    assert "digestcli" in modules  # the probe really ran the CLI
    assert sorted(modules.intersection(HEAVY)) == []


def test_start_up_does_not_import_the_subscriber_store(with_draft: Path, tmp_path: Path) -> None:
    # email-validator takes ~30 ms to import (its compiled RFC patterns), a quarter of a start-up;
    # only the subscriber commands need it, so the CLI names DEFAULT_LIST from digestcli.models.
    modules = imported(with_draft, tmp_path, "items")
    assert "digestcli" in modules
    assert "email_validator" not in modules
