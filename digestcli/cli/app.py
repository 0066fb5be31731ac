"""The Typer application, its error boundary and the shared per-invocation state."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from typing import Annotated, Any

import click
import typer
from click.exceptions import ClickException
from typer.core import TyperGroup

from digestcli.errors import DigestError, ExitStatus
from digestcli.workspace import Workspace, find_workspace


class DigestGroup(TyperGroup):
    """The one error boundary: a DigestError becomes one line on stderr and its exit code."""

    def invoke(self, ctx: Any) -> Any:
        """Run the command; turn digest's own errors into a message and an exit status."""
        try:
            return super().invoke(ctx)
        except DigestError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(int(exc.status)) from None
        except (typer.Exit, typer.Abort, ClickException, KeyboardInterrupt):
            raise
        except Exception as exc:
            if os.environ.get("DIGEST_DEBUG"):
                raise
            # A bug of ours: say what happened in one line; DIGEST_DEBUG=1 shows the traceback.
            typer.echo(
                f"error: unexpected {type(exc).__name__}: {exc}; "
                "rerun with DIGEST_DEBUG=1 and report it.",
                err=True,
            )
            raise typer.Exit(int(ExitStatus.ERROR)) from None


@dataclass
class State:
    """What every command may need: the chosen workspace and the environment."""

    workspace_override: str | None = None
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    _workspace: Workspace | None = None

    def workspace(self) -> Workspace:
        """The workspace for this invocation, found once."""
        if self._workspace is None:
            self._workspace = find_workspace(override=self.workspace_override)
        return self._workspace


app = typer.Typer(
    cls=DigestGroup,
    name="digest",
    help="Compose, preview, render and send a newsletter digest from the terminal.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def root(
    ctx: typer.Context,
    workspace: Annotated[
        str | None,
        typer.Option(
            "--workspace", "-w", help="Workspace folder (default: nearest digest.toml upwards)."
        ),
    ] = None,
) -> None:
    """Compose, preview, render and send a newsletter digest from the terminal."""
    ctx.obj = State(workspace_override=workspace)


def state(ctx: click.Context) -> State:
    """The State of this invocation."""
    obj = ctx.find_root().obj
    if not isinstance(obj, State):  # called outside the app (should not happen)
        obj = State()
        ctx.find_root().obj = obj
    return obj


def out(text: str = "") -> None:
    """Write data to stdout."""
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def out_json(data: Any) -> None:
    """Data for scripts on stdout: indented JSON, non-ASCII kept."""
    out(json.dumps(data, ensure_ascii=False, indent=2))


# The options several commands share.
DraftOption = Annotated[
    str | None,
    typer.Option("--draft", "-d", help="Draft path, file name or number (default: newest unsent)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def info(text: str) -> None:
    """Write progress or a hint to stderr."""
    typer.echo(text, err=True)
