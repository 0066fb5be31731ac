"""Writing a file whole or not at all: one atomic writer for drafts, the outbox and the rest."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: str | bytes, *, mode: int = 0o644, durable: bool = True) -> None:
    """Replace path with data in one step: a reader, or a crash, sees the old file or the new.

    Text is written as UTF-8 exactly as given, with no newline translation. An existing file
    keeps its permissions; a new one gets `mode`. `durable` flushes the data to disk before
    the rename, so a power cut cannot leave an empty file under the name; it costs a disk
    flush per file. Whatever goes wrong, the temporary file is removed and the error raised.
    """
    # In the same folder, so os.replace is a rename on one file system; the leading dot keeps
    # folder scans (drafts, the outbox) from taking it for a real file.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data.encode("utf-8") if isinstance(data, str) else data)
            if durable:
                out.flush()
                os.fsync(out.fileno())
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
