"""`digest publish`: write (or check) the static site of the sent issues."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from digestcli.cli.app import app, info, out, state
from digestcli.errors import ExitStatus

# The renderer (Jinja2) is imported inside the command: this module is imported on every
# start-up, and the editing commands must stay fast.


@app.command("publish")
def publish(
    ctx: typer.Context,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Folder for the site (default: [archive] out, else site/ in the workspace).",
        ),
    ] = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="Write nothing; list the files out of date and exit 1 if there are any."
        ),
    ] = False,
) -> None:
    """Publish the sent issues as a static site: an index, a page per issue and an Atom feed."""
    from digestcli.publish import publish_site

    result = publish_site(state(ctx).workspace(), out_dir, check=check)
    for warning in result.skipped:
        info(f"warning: {warning}")
    for name in result.changed:
        out(str(result.out_dir / name))
    issues = f"{result.issues} issue{'' if result.issues == 1 else 's'}"
    if check:
        if result.changed:
            info(
                f"{len(result.changed)} of {len(result.changed) + result.unchanged} files in "
                f"{result.out_dir} are out of date ({issues}); `digest publish` updates them."
            )
            raise typer.Exit(int(ExitStatus.ERROR))
        info(f"{result.out_dir} is up to date ({issues}).")
        return
    info(
        f"Published {issues} to {result.out_dir}: {len(result.changed)} files written, "
        f"{result.unchanged} unchanged."
    )
