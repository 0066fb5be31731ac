"""`digest serve`: the reader-facing web endpoint (unsubscribe links, provider webhooks)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from digestcli.cli.app import app, info, out, state

# Starlette, uvicorn and Jinja are imported inside the command: this module is imported on
# every start-up, and the editing commands must stay fast.


@app.command("serve")
def serve(
    ctx: typer.Context,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (a reverse proxy forwards to it).")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port to listen on (0: any free one).")
    ] = 8025,
    site: Annotated[
        Path | None,
        typer.Option(
            "--site",
            help="Also serve this folder (default: the site `digest publish` wrote, if any).",
        ),
    ] = None,
    print_events_key: Annotated[
        bool,
        typer.Option(
            "--print-events-key",
            help="Print the bearer key of GET /events (for a remote `digest sync`) and exit.",
        ),
    ] = False,
) -> None:
    """Answer readers over HTTP: unsubscribe links, provider webhooks and /events."""
    from digestcli.tokens import events_key, load_secret

    st = state(ctx)
    workspace = st.workspace()
    if print_events_key:
        out(events_key(load_secret(workspace.state_dir, st.env)))
        return

    from digestcli.publish_links import site_dir
    from digestcli.serve.app import create_app
    from digestcli.serve.server import run

    if site is None and site_dir(workspace, workspace.settings()).is_dir():
        site = site_dir(workspace, workspace.settings())
    served = create_app(workspace, st.env, site=site)
    run(
        served,
        host,
        port,
        announce=lambda url: info(f"digest serve: listening on {url} (Ctrl-C stops it)"),
    )
