"""The digest command line: Typer commands that parse, call the core and show results."""

from __future__ import annotations

from digestcli.cli import (
    check,  # noqa: F401 (registers check)
    compose,  # noqa: F401  (registers the editing commands)
    curate,  # noqa: F401  (registers feeds, collect and pick)
    output,  # noqa: F401  (registers preview and render)
    publish,  # noqa: F401  (registers publish)
    send,  # noqa: F401  (registers send and status)
    serve,  # noqa: F401  (registers serve)
    subscribers,  # noqa: F401  (registers subscribers, lists and unsubscribe)
    sync,  # noqa: F401  (registers sync)
)
from digestcli.cli.app import app

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point."""
    app(prog_name="digest")
