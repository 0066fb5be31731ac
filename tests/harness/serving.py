"""A real `digest serve` process on loopback: started, awaited on /healthz, stopped."""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from harness.workspaces import digest_env


class Served:
    """A `digest serve` process: its address, and every line it wrote to stderr."""

    def __init__(self, process: subprocess.Popen[str], url: str, lines: queue.Queue[str]) -> None:
        self.process = process
        self.url = url
        self.lines = lines

    def log(self) -> str:
        """Everything the process has written so far."""
        seen = []
        while True:
            try:
                seen.append(self.lines.get_nowait())
            except queue.Empty:
                return "".join(seen)


@contextmanager
def serving(root: Path, secret: str) -> Iterator[Served]:
    """`digest serve --port 0` in a workspace, once it answers /healthz; stopped on exit."""
    process = subprocess.Popen(
        [sys.executable, "-m", "digestcli", "serve", "--port", "0"],
        cwd=root,
        env=digest_env(secret),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stream = process.stdout

    def pump() -> None:
        for line in stream:
            lines.put(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    url, seen = "", list[str]()
    deadline = time.monotonic() + 30
    try:
        while not url:
            try:
                line = lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                pytest.fail(f"digest serve did not announce its address: {''.join(seen)}")
            seen.append(line)
            if "listening on " in line:
                url = line.split("listening on ")[1].split()[0]
        for line in seen:
            lines.put(line)
        # The socket listens before the announcement, so this answers as soon as uvicorn runs.
        with httpx.Client(base_url=url, timeout=5) as http:
            while http.get("/healthz").text != "ok":
                assert time.monotonic() < deadline, "digest serve never answered /healthz"
        yield Served(process, url, lines)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        reader.join(timeout=10)
        stream.close()
