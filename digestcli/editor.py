"""Letting the user edit text in $VISUAL / $EDITOR."""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from digestcli.errors import UsageError


def edit_text(text: str, env: Mapping[str, str], *, suffix: str = ".md") -> str:
    """Open text in the user's editor and return what they saved."""
    command = env.get("VISUAL") or env.get("EDITOR")
    if not command:
        raise UsageError("no editor: set $EDITOR (or $VISUAL), or pass the text as an argument.")
    fd, name = tempfile.mkstemp(prefix="digest-", suffix=suffix)
    path = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            out.write(text)
        try:
            code = subprocess.call([*shlex.split(command), str(path)])
        except OSError as exc:
            raise UsageError(f"could not start the editor `{command}` ({exc.strerror}).") from None
        if code != 0:
            raise UsageError(f"the editor `{command}` exited with status {code}; nothing changed.")
        with path.open(encoding="utf-8", newline="") as edited:
            return edited.read()
    finally:
        path.unlink(missing_ok=True)
