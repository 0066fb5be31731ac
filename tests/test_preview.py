"""The terminal preview, and the `preview` and `render` commands run against a workspace."""

from __future__ import annotations

import email
import email.policy
import io
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from digestcli import catalog, drafts
from digestcli.config import Publication, Settings, Unsubscribe
from digestcli.console import make_console, open_in_browser, render_preview, show_html
from digestcli.models import Image, Issue, Item, Link
from digestcli.render import GMAIL_CLIP_BYTES, Preview, build_preview
from digestcli.workspace import Workspace

if TYPE_CHECKING:
    from conftest import Cli

REPO = Path(__file__).resolve().parents[1]
THEME = REPO / "templates"
SECRET = {"DIGEST_SECRET": "test-secret"}


def settings(tmp_path: Path) -> Settings:
    return Settings(
        path=tmp_path / "digest.toml",
        publication=Publication(
            name="The Test Digest",
            from_addr="The Test Digest <digest@example.org>",
            address="1 Example Street, Example City",
            web_url="https://example.org/web/",
        ),
        unsubscribe=Unsubscribe(url="https://example.org/unsubscribe"),
    )


ISSUE = Issue(
    title="Week 9",
    subject="Week 9: three stories",
    preheader="Three short reads for the week.",
    date="2026-03-02",
    number=9,
    intro="Hello *readers*, here is the week.",
    items=(
        Item(
            "First *story*",
            "First body with [a link](https://example.org/in-body).",
            Link("https://example.org/1", "Read the first"),
            Image("https://example.org/1.png", "A chart"),
        ),
        Item(
            "Second story", "Second body {{ 7*7 }} [red]not markup[/red].", Link("https://e.org/2")
        ),
        Item("中文 😀 مرحبا", "正文"),
    ),
    outro_title="Wrapping Up",
    outro="See you next week.",
)


@pytest.fixture
def preview(tmp_path: Path) -> Preview:
    return build_preview(ISSUE, settings(tmp_path), THEME, tmp_path / ".digest", SECRET)


def shown(preview: Preview, width: int = 100) -> str:
    buffer = io.StringIO()
    console = make_console(file=buffer, env={"NO_COLOR": "1"})
    console.width = width
    console.print(render_preview(preview))
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines())


# ----- the Rich preview ---------------------------------------------------------------------


def test_preview_header_shows_what_the_message_holds(preview: Preview) -> None:
    out = shown(preview)
    message = preview.message
    size = len(message.html().encode("utf-8"))
    assert "The Test Digest" in out
    assert "Issue 9 · 2026-03-02 · Week 9" in out
    assert re.search(r"From\s+The Test Digest <digest@example.org>", out)
    assert re.search(r"To\s+Sample Reader <reader@example.org>", out)
    assert re.search(rf"Subject\s+{re.escape(message.subject)}", out)
    assert re.search(r"Preheader\s+Three short reads for the week\.", out)
    assert re.search(rf"HTML size\s+{size / 1024:.1f} KB of 102 KB \(Gmail clips above\)", out)
    assert re.search(r"Items\s+3\b", out)


def test_preview_shows_intro_items_closing_and_footer_in_order(preview: Preview) -> None:
    out = shown(preview, width=200)
    expected = [
        "Hello readers, here is the week.",
        "1. First story",
        "Image: A chart  https://example.org/1.png",
        "First body with a link (https://example.org/in-body).",
        "Read the first →  https://example.org/1",
        "2. Second story",
        "Second body {{ 7*7 }} [red]not markup[/red].",
        "Read more →  https://e.org/2",
        "3. 中文 😀 مرحبا",
        "正文",
        "Wrapping Up",
        "See you next week.",
        "Address      1 Example Street, Example City",
        f"Unsubscribe  {preview.unsubscribe_url}",
        "Web version  https://example.org/web/",
    ]
    positions = [out.index(line) for line in expected]
    assert positions == sorted(positions)


def test_preview_warns_when_gmail_would_clip(preview: Preview) -> None:
    assert "Gmail will clip this issue" in shown(replace(preview, html_bytes=GMAIL_CLIP_BYTES + 1))
    near = shown(replace(preview, html_bytes=GMAIL_CLIP_BYTES - 1024))
    assert "close to Gmail's clipping" in near


def test_no_color_is_respected() -> None:
    assert make_console(env={"NO_COLOR": "1"}).no_color
    assert not make_console(env={}).no_color
    assert not make_console(env={"NO_COLOR": ""}).no_color


def test_html_source_is_printed_as_is_when_not_a_terminal(preview: Preview) -> None:
    buffer = io.StringIO()
    show_html(make_console(file=buffer, env={}), preview.message.html())
    assert buffer.getvalue() == preview.message.html()


def test_browser_preview_writes_the_html_and_opens_it(preview: Preview, tmp_path: Path) -> None:
    opened: list[str] = []

    def opener(url: str) -> bool:
        opened.append(url)
        return True

    path = open_in_browser(preview.message.html(), opener, directory=tmp_path)
    assert path.read_text(encoding="utf-8") == preview.message.html()
    assert opened == [path.as_uri()]


# ----- the commands -------------------------------------------------------------------------


@pytest.fixture
def issue_ws(workspace: Path) -> Path:
    """The workspace with the default theme and one draft holding three items."""
    shutil.copytree(THEME, workspace / "templates")
    ws = Workspace(workspace)
    path = catalog.create_draft(
        ws,
        "Week 9",
        subject="Week 9: 中文 and three stories",
        preheader="Three short reads.",
        date="2026-03-02",
    )
    draft = drafts.load_draft(path)
    draft.set_intro("Hello *readers*.")
    for item in ISSUE.items:
        draft.add(item)
    draft.set_outro("See you next week.", "Wrapping Up")
    drafts.save_draft(draft)
    return workspace


def parse(raw: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_render_writes_three_files_and_prints_their_paths(cli: Cli, issue_ws: Path) -> None:
    result = cli("render", env=SECRET)
    assert result.exit_code == 0, result.output
    out = issue_ws / "out"
    assert result.stdout.splitlines() == [
        str(out / "issue.html"),
        str(out / "issue.txt"),
        str(out / "issue.eml"),
    ]
    parsed = parse((out / "issue.eml").read_bytes())
    assert parsed.get_content_type() == "multipart/alternative"
    assert parsed["Subject"] == "Week 9: 中文 and three stories"
    assert parsed["To"] == "Sample Reader <reader@example.org>"
    html = (out / "issue.html").read_text(encoding="utf-8")
    assert 'style="' in html
    assert "@media (max-width: 620px)" in html
    assert "Second body {{ 7*7 }}" in html
    text = (out / "issue.txt").read_text(encoding="utf-8")
    assert "1. First story\n" in text
    assert "3. 中文 😀 مرحبا\n" in text


def test_render_out_option(cli: Cli, issue_ws: Path, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    result = cli("render", "--out", str(target), env=SECRET)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in target.iterdir()) == ["issue.eml", "issue.html", "issue.txt"]


def test_preview_text_and_html_are_exactly_the_rendered_parts(
    cli: Cli, issue_ws: Path, tmp_path: Path
) -> None:
    assert cli("render", "--out", str(tmp_path / "r"), env=SECRET).exit_code == 0
    text = cli("preview", "--text", env=SECRET)
    assert text.exit_code == 0, text.output
    assert text.stdout == (tmp_path / "r" / "issue.txt").read_text(encoding="utf-8")
    html = cli("preview", "--html", env=SECRET)
    assert html.exit_code == 0, html.output
    assert html.stdout == (tmp_path / "r" / "issue.html").read_text(encoding="utf-8")


def test_preview_headers_are_the_sample_message_headers(cli: Cli, issue_ws: Path) -> None:
    result = cli("preview", "--headers", env=SECRET)
    assert result.exit_code == 0, result.output
    headers = result.stdout
    assert headers.startswith("From: The Terminal Dispatch <dispatch@example.org>\n")
    assert "\nTo: Sample Reader <reader@example.org>\n" in headers
    assert re.search(r"^Subject: .*=\?utf-8\?", headers, re.MULTILINE)
    assert "\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\n" in headers
    assert "\nContent-Type: multipart/alternative; boundary=" in headers
    # One plain line: an RFC 2047-encoded List-Unsubscribe breaks one-click unsubscribe.
    assert re.search(r"^List-Unsubscribe: <https://\S+\?token=\S+>", headers, re.MULTILINE)
    assert "\r" not in headers


def test_preview_in_the_terminal(cli: Cli, issue_ws: Path) -> None:
    result = cli("preview", env=SECRET)
    assert result.exit_code == 0, result.output
    out = result.stdout
    for line in ("Subject", "Week 9: 中文 and three stories", "1. First story", "Wrapping Up"):
        assert line in out
    assert "\x1b[" not in out  # NO_COLOR and not a terminal: plain text


def test_preview_takes_one_view_at_a_time(cli: Cli, issue_ws: Path) -> None:
    result = cli("preview", "--text", "--html", env=SECRET)
    assert result.exit_code == 2
    assert result.stderr == "error: give at most one of --text, --html and --headers.\n"


def test_preview_of_a_chosen_draft(cli: Cli, issue_ws: Path) -> None:
    ws = Workspace(issue_ws)
    catalog.create_draft(ws, "A newer one", date="2026-03-09")
    result = cli("preview", "--text", "--draft", "1", env=SECRET)
    assert result.exit_code == 0, result.output
    assert "Week 9\n" in result.stdout


def test_template_error_exits_4_naming_file_and_line(cli: Cli, issue_ws: Path) -> None:
    (issue_ws / "templates" / "email.txt.j2").write_text("{{ issue.title }}\n{{ nope }}\n")
    result = cli("render", env=SECRET)
    assert result.exit_code == 4
    assert result.stderr.startswith("error: templates/email.txt.j2, line 2: 'nope' is undefined")
    assert not (issue_ws / "out").exists()


def test_missing_templates_exit_4(cli: Cli, issue_ws: Path) -> None:
    shutil.rmtree(issue_ws / "templates")
    result = cli("preview", env=SECRET)
    assert result.exit_code == 4
    assert "templates/email.html.j2 does not exist" in result.stderr


def test_cli_start_up_does_not_import_the_renderer() -> None:
    code = (
        "import sys, digestcli.cli; "
        "print(sorted(m for m in ('premailer', 'lxml', 'httpx', 'digestcli.render') "
        "if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert result.stdout.strip() == "[]"
