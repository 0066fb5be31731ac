"""`digest check`: the pre-send checks of the current draft."""

from __future__ import annotations

from typing import Annotated

import typer

from digestcli.cli.app import DraftOption, JsonOption, app, info, out, out_json, state
from digestcli.errors import ExitStatus

# The checks render the issue (Jinja2, premailer) and resolve links (httpx): both are imported
# inside the command, so that the editing commands, which import this module, stay fast.


@app.command()
def check(
    ctx: typer.Context,
    draft: DraftOption = None,
    no_links: Annotated[
        bool, typer.Option("--no-links", help="Do not resolve links over the network.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Check the current draft before sending: errors exit with status 4, warnings do not."""
    from digestcli.catalog import current_draft
    from digestcli.checks import check_draft, format_finding, summary

    st = state(ctx)
    workspace = st.workspace()
    path = current_draft(workspace, draft)
    options = None
    if not no_links:
        from digestcli.linkcheck import LinkOptions

        options = LinkOptions()
        info(f"Checking {path.name}, links included (--no-links skips them)...")
    findings = check_draft(workspace, path, st.env, links=options)
    if as_json:
        out_json([f.as_dict() for f in findings])
    else:
        for finding in findings:
            out(format_finding(finding))
        info(summary(findings) + ("; links not checked" if no_links else ""))
    if any(f.level == "error" for f in findings):
        raise typer.Exit(int(ExitStatus.DRAFT))
