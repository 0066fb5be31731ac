"""Every Rich console, built from the command's environment, and the terminal issue preview."""

from __future__ import annotations

import os
import tempfile
import webbrowser
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING

from rich.console import Console, Group, RenderableType
from rich.markdown import Markdown
from rich.padding import Padding
from rich.panel import Panel
from rich.rule import Rule
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from digestcli.message import to_header

if TYPE_CHECKING:  # render pulls in Jinja2 and friends; the console must stay light
    from digestcli.render import ItemView, Preview

_NEAR_CLIP = 0.8
_ACCENT = "bold dark_orange3"


def make_console(
    *, env: Mapping[str, str], stderr: bool = False, file: IO[str] | None = None
) -> Console:
    """A Rich console on stdout (or stderr) set up from env: NO_COLOR, TERM, COLUMNS and so on."""
    # no-color.org: NO_COLOR set to any non-empty value turns colour off.
    no_color = bool(env.get("NO_COLOR"))
    # Rich would read TERM, COLUMNS, FORCE_COLOR and the like from os.environ; the command's own
    # environment (the one tests replace) is the one to obey.
    return Console(file=file, stderr=stderr, no_color=no_color, highlight=False, _environ=env)


def stdout_console(env: Mapping[str, str]) -> Console:
    """The console for data."""
    return make_console(env=env)


def stderr_console(env: Mapping[str, str]) -> Console:
    """The console for progress, hints and errors."""
    return make_console(stderr=True, env=env)


def format_size(size: int) -> str:
    """A byte count in KB with one decimal, as mail tools quote Gmail's limit."""
    return f"{size / 1024:.1f} KB"


def _size_text(size: int) -> Text:
    from digestcli.render import GMAIL_CLIP_BYTES  # loaded already: a preview was rendered

    limit = f"of {GMAIL_CLIP_BYTES // 1024} KB"
    if size > GMAIL_CLIP_BYTES:
        return Text(f"{format_size(size)} {limit}: Gmail will clip this issue", style="bold red")
    if size > GMAIL_CLIP_BYTES * _NEAR_CLIP:
        return Text(f"{format_size(size)} {limit}: close to Gmail's clipping", style="yellow")
    return Text(f"{format_size(size)} {limit} (Gmail clips above)", style="green")


def _header(preview: Preview) -> Panel:
    message = preview.message
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row("From", Text(message.content.from_addr))
    grid.add_row("To", Text(to_header(message.to)))
    grid.add_row("Subject", Text(message.subject))
    grid.add_row("Preheader", Text(preview.snippet or "(none)"))
    grid.add_row("HTML size", _size_text(preview.html_bytes))
    grid.add_row("Items", Text(str(len(preview.issue.items))))
    issue = preview.issue
    title = Text(preview.publication.name, style=_ACCENT)
    details = [
        f"Issue {issue.number}" if issue.number else "",
        issue.date,
        issue.title if issue.title != preview.publication.name else "",
    ]
    subtitle = " · ".join(part for part in details if part)
    return Panel(
        grid,
        title=title,
        title_align="left",
        subtitle=Text(subtitle) if subtitle else None,
        subtitle_align="left",
        border_style="dark_orange3",
    )


def _markdown(source: str) -> Markdown:
    # hyperlinks=False prints "label (url)": the reader of a preview should see where links go.
    return Markdown(source, hyperlinks=False)


def _item(item: ItemView) -> RenderableType:
    parts: list[RenderableType] = [
        Text.assemble((f"{item.number}. ", _ACCENT), (item.title_text, "bold"))
    ]
    body: list[RenderableType] = []
    if item.image:
        alt = item.image.alt or "(no alt text)"
        body.append(Text.assemble(("Image: ", "dim"), alt, "  ", (item.image.url, "underline")))
    if item.body.strip():
        body.append(_markdown(item.body))
    if item.link:
        body.append(
            Text.assemble(
                (f"{item.link.label or 'Read more'} →  ", "bold dark_orange3"),
                (item.link.url, "underline"),
            )
        )
    parts.append(Padding(Group(*body), (0, 0, 0, len(str(item.number)) + 2)))
    return Group(*parts)


def render_preview(preview: Preview) -> Group:
    """The whole issue as terminal renderables: header, intro, items, closing, footer."""
    issue = preview.issue
    parts: list[RenderableType] = [_header(preview)]
    if issue.intro.strip():
        parts += [Text(), _markdown(issue.intro)]
    for item in issue.items:
        parts += [Text(), _item(item)]
    if issue.outro_title or issue.outro.strip():
        parts += [Text(), Rule(Text(issue.outro_title, style="bold"), align="left")]
        if issue.outro.strip():
            parts.append(_markdown(issue.outro))
    footer = Table.grid(padding=(0, 2))
    footer.add_column(style="dim", no_wrap=True)
    footer.add_column(overflow="fold")
    footer.add_row("Address", Text(preview.publication.address))
    footer.add_row("Unsubscribe", Text(preview.unsubscribe_url, style="underline"))
    if preview.publication.web_url:
        footer.add_row("Web version", Text(preview.publication.web_url, style="underline"))
    parts += [Text(), Rule(style="dim"), footer]
    return Group(*parts)


def show_preview(console: Console, preview: Preview) -> None:
    """Print the terminal preview of an issue."""
    console.print(render_preview(preview))


def show_html(console: Console, html: str) -> None:
    """Print HTML source: syntax-highlighted on a terminal, as is otherwise."""
    if console.is_terminal and not console.no_color:
        console.print(Syntax(html, "html", word_wrap=True, theme="ansi_dark"))
    else:
        console.file.write(html if html.endswith("\n") else html + "\n")


def open_in_browser(
    html: str, opener: Callable[[str], bool] = webbrowser.open, directory: Path | None = None
) -> Path:
    """Write the HTML to a temporary file, open it in the browser, and return its path."""
    handle, name = tempfile.mkstemp(prefix="digest-preview-", suffix=".html", dir=directory)
    with os.fdopen(handle, "w", encoding="utf-8", newline="") as file:
        file.write(html)
    path = Path(name)
    opener(path.as_uri())
    return path
