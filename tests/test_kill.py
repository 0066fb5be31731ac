"""A real `digest send` process, killed with SIGKILL or stopped with Ctrl-C, then resumed.

The provider's own record decides: every recipient received exactly once, except those
`digest status` reports uncertain (at most once); with Resend, exactly once and none uncertain.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Protocol

import pytest

from harness.providers import (
    FakeProvider,
    PostmarkFake,
    Reply,
    Request,
    ResendFake,
    has_spec,
    json_reply,
    openapi,
)
from harness.workspaces import digest_env, provider_workspace

RECIPIENTS = 25
BATCH = 5
FAKES: dict[str, type[FakeProvider]] = {"postmark": PostmarkFake, "resend": ResendFake}


def workspace(tmp: Path, fake: FakeProvider) -> Path:
    """A workspace whose transport points at the fake, with RECIPIENTS subscribers."""
    return provider_workspace(tmp / "ws", fake, subscribers=RECIPIENTS, batch=BATCH, concurrency=1)


def environment(fake: FakeProvider) -> dict[str, str]:
    return digest_env("kill-test-secret", **fake.env)


def digest(root: Path, fake: FakeProvider, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "digestcli", *args],
        cwd=root,
        env=environment(fake),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


class Lines:
    """A running process's stderr, read line by line as it comes (its stdout is drained)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self._readers = [
            threading.Thread(target=self._read, daemon=True),
            threading.Thread(target=lambda: process.stdout and process.stdout.read(), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self._lock:
                self.lines.append(line)

    def has(self, text: str) -> bool:
        """Whether a line so far holds text."""
        with self._lock:
            return any(text in line for line in self.lines)

    def finish(self) -> tuple[int, str]:
        """Wait for the process; its exit code and whole stderr."""
        code = self.process.wait(timeout=60)
        for reader in self._readers:
            reader.join(timeout=10)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
        with self._lock:
            return code, "".join(self.lines)


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=60)
    return process.returncode, out, err


def wait_for(predicate: Any, what: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def status(root: Path, fake: FakeProvider) -> dict[str, Any]:
    code, out, err = finish(digest(root, fake, "status", "--json"))
    assert code == 0, err
    data: dict[str, Any] = json.loads(out)
    return data


def assert_promise_kept(root: Path, fake: FakeProvider) -> dict[str, Any]:
    report = status(root, fake)
    counts = report["counts"]
    assert report["total"] == RECIPIENTS == sum(counts.values())
    assert counts["pending"] == counts["in_flight"] == counts["failed"] == 0
    copies = Counter(str(mail["to"]) for mail in fake.received())
    uncertain = set(report["uncertain"])
    everyone = {f"user{i}@example.org" for i in range(RECIPIENTS)}
    for address in everyone - uncertain:
        assert copies[address] == 1, f"{address} received {copies[address]} copies"
    for address in uncertain:
        assert copies[address] <= 1
    assert set(copies) <= everyone
    assert not fake.violations
    return report


@pytest.fixture(autouse=True)
def _specs_loaded() -> None:
    for provider in FAKES:
        if has_spec(provider):  # ../shared may be absent: the fakes then skip validation
            openapi(provider)


class Held(Protocol):
    """A fake that holds its answer to one request until told to go."""

    held: threading.Event
    go: threading.Event


def holding(base: type[FakeProvider], at: int, *, accepted: bool) -> FakeProvider:
    """A fake of base's provider that holds request number `at`.

    accepted: the provider processed (delivered) the batch before holding its answer;
    otherwise it holds the request unprocessed and would refuse it with a 503.
    """

    class HoldingFake(base):  # type: ignore[valid-type,misc]
        def __init__(self) -> None:
            super().__init__()
            self.held = threading.Event()
            self.go = threading.Event()
            self._count = 0
            self._count_lock = threading.Lock()

        def dispatch(self, request: Request) -> Reply:
            with self._count_lock:
                self._count += 1
                number = self._count
            if number == at and not accepted:
                self.held.set()
                self.go.wait(30)
                return json_reply(503, {"message": "not processed"})
            reply: Reply = super().dispatch(request)
            if number == at:
                self.held.set()
                self.go.wait(30)
            return reply

    fake: FakeProvider = HoldingFake()
    return fake


def held(fake: FakeProvider) -> Held:
    assert hasattr(fake, "held") and hasattr(fake, "go")
    return fake


@pytest.mark.parametrize("provider", sorted(FAKES))
@pytest.mark.parametrize(
    ("at", "accepted"),
    [(1, False), (3, True), (5, True)],
    ids=["before-any-answer", "during-accepted", "after-last-accepted"],
)
def test_sigkill_then_resume(tmp_path: Path, provider: str, at: int, accepted: bool) -> None:
    with holding(FAKES[provider], at, accepted=accepted) as fake:
        root = workspace(tmp_path, fake)
        process = digest(root, fake, "send", "--yes")
        wait_for(held(fake).held.is_set, f"request {at}")
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)  # reap it and close its pipes
        held(fake).go.set()

        code, _, err = finish(digest(root, fake, "send", "--resume", "--yes"))
        assert code in (0, 5), err
        report = assert_promise_kept(root, fake)
        if provider == "resend":
            assert report["uncertain"] == []
            assert report["counts"]["sent"] == RECIPIENTS
        else:
            assert len(report["uncertain"]) == BATCH
            assert "uncertain" in err
        code, _, err = finish(digest(root, fake, "send", "--yes"))
        assert code == 0 and "nothing to send" in err


@pytest.mark.parametrize("provider", sorted(FAKES))
def test_ctrl_c_finishes_the_batch_in_flight_and_resume_completes(
    tmp_path: Path, provider: str
) -> None:
    with holding(FAKES[provider], 2, accepted=True) as fake:
        root = workspace(tmp_path, fake)
        process = digest(root, fake, "send", "--yes")
        stderr = Lines(process)
        wait_for(held(fake).held.is_set, "the held request")
        process.send_signal(signal.SIGINT)
        # The process says it took the signal before its batch is answered.
        wait_for(lambda: stderr.has("Stopping: finishing the batches in flight"), "the stop")
        held(fake).go.set()
        code, err = stderr.finish()
        assert code == 130, err
        assert "digest send --resume" in err
        assert "Traceback" not in err
        middle = status(root, fake)
        assert middle["counts"]["in_flight"] == 0 and middle["counts"]["uncertain"] == 0
        assert middle["counts"]["sent"] == 2 * BATCH

        code, _, err = finish(digest(root, fake, "send", "--resume", "--yes"))
        assert code == 0, err
        report = assert_promise_kept(root, fake)
        assert report["counts"]["sent"] == RECIPIENTS and report["uncertain"] == []
