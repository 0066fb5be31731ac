"""Commands that render the current draft: the terminal preview and the rendered files."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from digestcli.cli.app import DraftOption, app, info, out, state
from digestcli.errors import UsageError

if TYPE_CHECKING:
    from digestcli.render import Preview

# The renderer (Jinja2, premailer, lxml) and Rich are imported inside the commands, so that
# the editing commands, which import this module at start-up, stay fast.


def _preview(ctx: typer.Context, selector: str | None) -> Preview:
    from digestcli.campaigns import issue_link
    from digestcli.catalog import current_draft
    from digestcli.drafts import load_draft
    from digestcli.render import build_preview

    st = state(ctx)
    workspace = st.workspace()
    path = current_draft(workspace, selector)
    issue = load_draft(path).issue
    settings = workspace.settings()
    # The web link a send of this draft would carry: its page on the published site.
    link = issue_link(workspace, path.name, settings)
    return build_preview(
        issue,
        settings,
        workspace.templates_dir,
        workspace.state_dir,
        st.env,
        web_url=link.web_url,
    )


def _open_published(ctx: typer.Context, selector: str | None) -> bool:
    """Open the draft's published web version in the browser, if `digest publish` wrote one."""
    import webbrowser

    from digestcli.catalog import current_draft
    from digestcli.publish_links import published_page

    workspace = state(ctx).workspace()
    # With every draft sent, the newest sent one: the issue just published.
    page = published_page(workspace, current_draft(workspace, selector, include_sent=True).name)
    if page is None:
        return False
    webbrowser.open(page.as_uri())
    info(f"Opened {page} (the published web version) in the browser.")
    return True


@app.command()
def preview(
    ctx: typer.Context,
    text: Annotated[bool, typer.Option("--text", help="Print the exact plain-text part.")] = False,
    html: Annotated[
        bool, typer.Option("--html", help="Print the inlined HTML source of the message.")
    ] = False,
    headers: Annotated[bool, typer.Option("--headers", help="Print the message headers.")] = False,
    browser: Annotated[
        bool,
        typer.Option(
            "--browser",
            help="Open the issue in the web browser: its published web version, else the email.",
        ),
    ] = False,
    draft: DraftOption = None,
) -> None:
    """Preview the current draft as the sample reader reader@example.org would get it."""
    if text + html + headers > 1:
        raise UsageError("give at most one of --text, --html and --headers.")
    if browser and not (text or html or headers) and _open_published(ctx, draft):
        return
    from digestcli import console

    shown = _preview(ctx, draft)
    message = shown.message
    screen = console.stdout_console(state(ctx).env)
    if browser:
        info(f"Opened {console.open_in_browser(message.html())} in the browser.")
    if text:
        sys.stdout.write(message.text())
    elif html:
        console.show_html(screen, message.html())
    elif headers:
        from digestcli.message import to_bytes

        # The header block exactly as it goes on the wire: folded, encoded, boundary and all.
        head = to_bytes(message).split(b"\r\n\r\n", 1)[0]
        out(head.decode("ascii", "replace").replace("\r\n", "\n"))
    elif not browser:
        console.show_preview(screen, shown)


@app.command()
def render(
    ctx: typer.Context,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Folder for issue.html, issue.txt and issue.eml."),
    ] = None,
    draft: DraftOption = None,
) -> None:
    """Write the current draft as issue.html (CSS inlined), issue.txt and issue.eml."""
    from digestcli.render import write_files

    shown = _preview(ctx, draft)
    files = write_files(shown.message, out_dir or state(ctx).workspace().root / "out")
    for path in (files.html, files.text, files.eml):
        out(str(path))
