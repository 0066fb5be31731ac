"""`digest check` driven as an editor would: the example issue, broken drafts, links, JSON."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO, Cli
from test_linkcheck import PROXY_VARIABLES, LinkServer

EXAMPLE = next((REPO / "drafts").glob("*.md"))
SECRET = {"DIGEST_SECRET": "cli-check-secret"}

DRAFT = """\
---
title: Week 9
subject: Week 9 in three stories
preheader: Three short reads for the week.
date: 2026-03-02
number: 9
---

Hello, readers.

## First story
link: {base}/ok "Read it"

Body one, with [a source]({base}/moved).

## Second story
link: {base}/missing

Body two.

## Third story

{body}

# Wrapping Up

Bye for now.
"""


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """httpx honours proxy variables; the local server must be reached directly."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture
def ws(workspace: Path) -> Path:
    """A workspace with the default theme and no drafts yet."""
    shutil.copytree(REPO / "templates", workspace / "templates")
    return workspace


@pytest.fixture
def example(ws: Path) -> Path:
    """The repository's example issue."""
    shutil.copy(EXAMPLE, ws / "drafts" / EXAMPLE.name)
    return ws


@pytest.fixture
def server() -> Iterator[LinkServer]:
    with LinkServer() as running:
        yield running


def write_draft(ws: Path, base: str = "https://dispatch.news", body: str = "Body three.") -> Path:
    path = ws / "drafts" / "2026-03-02-week-9.md"
    path.write_text(DRAFT.format(base=base, body=body), encoding="utf-8")
    return path


def point_config_at(ws: Path, server: LinkServer) -> None:
    """The footer's web-version link on the local server, not on the internet."""
    config = ws / "digest.toml"
    text = config.read_text(encoding="utf-8")
    text = re.sub(r'web_url = ".*"', f'web_url = "{server.url("/web/")}"', text)
    config.write_text(text, encoding="utf-8")


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_the_example_issue_passes_offline(cli: Cli, example: Path) -> None:
    result = cli("check", "--no-links", env=SECRET)
    assert result.exit_code == 0, result.output
    found = lines(result.stdout)
    assert found and all(line.startswith("warning: ") for line in found)
    assert re.fullmatch(r"0 errors, \d+ warnings; links not checked", lines(result.stderr)[-1]), (
        result.stderr
    )


def test_json_lists_findings_errors_first(cli: Cli, example: Path) -> None:
    result = cli("check", "--no-links", "--json", env=SECRET)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data and all(set(f) == {"level", "code", "message", "where"} for f in data)
    assert {f["code"] for f in data} >= {"subject-long", "placeholder"}
    assert result.stderr == ""


def test_an_oversized_draft_exits_4_with_the_clipping_error(cli: Cli, ws: Path) -> None:
    huge = "\n\n".join(["A long paragraph of words. " * 40] * 110)  # about 110 KB
    write_draft(ws, body=huge)
    result = cli("check", "--no-links", env=SECRET)
    assert result.exit_code == 4, result.output
    first = lines(result.stdout)[0]
    assert first.startswith("error: The HTML part is ") and first.endswith("[html-size]")
    assert "Gmail clips" in first
    assert lines(result.stderr)[-1] == "1 error, 0 warnings; links not checked"

    as_json = cli("check", "--no-links", "--json", env=SECRET)
    assert as_json.exit_code == 4
    assert [(f["level"], f["code"]) for f in json.loads(as_json.stdout)] == [("error", "html-size")]


def test_a_template_without_the_unsubscribe_link_exits_4(cli: Cli, example: Path) -> None:
    footer = example / "templates" / "partials" / "footer.html.j2"
    text = footer.read_text(encoding="utf-8")
    footer.write_text(text.replace('<a href="{{ unsubscribe_url }}">Unsubscribe</a>', ""))
    result = cli("check", "--no-links", env=SECRET)
    assert result.exit_code == 4, result.output
    errors = [line for line in lines(result.stdout) if line.startswith("error: ")]
    assert errors == [
        "error: The HTML part has no unsubscribe link; add "
        '<a href="{{ unsubscribe_url }}">Unsubscribe</a> to the footer '
        "(partials/footer.html.j2 in the default theme). [no-unsubscribe]"
    ]
    assert lines(result.stdout)[0] == errors[0]  # errors before warnings


def test_broken_links_are_warnings_naming_url_and_item(
    cli: Cli, ws: Path, server: LinkServer
) -> None:
    point_config_at(ws, server)
    write_draft(ws, base=server.base)
    result = cli("check", env=SECRET)
    assert result.exit_code == 0, result.output
    assert lines(result.stdout) == [
        f"warning: The link {server.url('/missing')} in item 2 “Second story” answered "
        "404 Not Found; fix or remove it. [broken-link]"
    ]
    assert lines(result.stderr)[-1] == "0 errors, 1 warning"
    # Each URL once (/ok is also where /moved leads); the unsubscribe link, which carries the
    # reader's token, is not fetched: its https://example.org URL would show up as a warning.
    assert sorted(path for _, path in server.requests) == [
        "/missing",
        "/moved",
        "/ok",
        "/ok",
        "/web/",
    ]


def test_no_links_does_no_network(cli: Cli, ws: Path, server: LinkServer) -> None:
    point_config_at(ws, server)
    write_draft(ws, base=server.base)
    result = cli("check", "--no-links", env=SECRET)
    assert result.exit_code == 0, result.output
    assert server.requests == []


def test_draft_option_picks_the_draft(cli: Cli, example: Path) -> None:
    write_draft(example, body="")  # older, with an empty third item
    newest = cli("check", "--no-links", "--json", env=SECRET)
    assert "item-empty" not in {f["code"] for f in json.loads(newest.stdout)}
    older = cli("check", "--no-links", "--json", "-d", "2026-03-02-week-9.md", env=SECRET)
    assert older.exit_code == 0, older.output
    assert [f["where"] for f in json.loads(older.stdout) if f["code"] == "item-empty"] == ["item 3"]


def test_an_unknown_draft_is_one_error_line(cli: Cli, example: Path) -> None:
    result = cli("check", "--no-links", "-d", "nope", env=SECRET)
    assert result.exit_code == 4
    assert result.stdout == ""
    assert lines(result.stderr) == [
        f"error: no draft matches `nope` in {example / 'drafts'}; `digest drafts` lists them."
    ]


def test_a_template_error_is_one_error_line(cli: Cli, example: Path) -> None:
    (example / "templates" / "email.txt.j2").unlink()
    result = cli("check", "--no-links", env=SECRET)
    assert result.exit_code == 4
    assert lines(result.stderr)[0].startswith("error: ") and "email.txt.j2" in result.stderr


def test_help_describes_the_options(cli: Cli) -> None:
    result = cli("check", "--help")
    assert result.exit_code == 0
    for option in ("--draft", "--no-links", "--json"):
        assert option in result.stdout
