"""Copies of this repository's workspace for tests that drive a real `digest` process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from fakes import store
from harness.providers import FakeProvider

REPO = Path(__file__).resolve().parents[2]


def copy_workspace(root: Path, *, config: str | None = None) -> Path:
    """The repository's digest.toml (or `config`), templates and drafts, copied into root."""
    root.mkdir(parents=True)
    shutil.copytree(REPO / "templates", root / "templates")
    shutil.copytree(REPO / "drafts", root / "drafts")
    text = (REPO / "digest.toml").read_text(encoding="utf-8") if config is None else config
    (root / "digest.toml").write_text(text, encoding="utf-8")
    return root


def provider_workspace(
    root: Path,
    fake: FakeProvider,
    *,
    subscribers: int,
    batch: int,
    concurrency: int = 4,
    timeout: float = 5,
) -> Path:
    """A workspace sending through the fake, in batches of `batch`, to `subscribers` readers."""
    config = (REPO / "digest.toml").read_text(encoding="utf-8")
    domain = '\ndomain = "mg.example.org"' if fake.provider == "mailgun" else ""
    config = config.replace(
        '[transport]\nkind = "outbox"',
        f'[transport]\nkind = "{fake.provider}"\nbase_url = "{fake.url}"\n'
        f"batch_size = {batch}\ntimeout = {timeout}{domain}",
    ).replace("concurrency = 4", f"concurrency = {concurrency}")
    copy_workspace(root, config=config)
    store(root / ".digest" / "digest.db", subscribers).close()
    return root


def digest_env(secret: str, **extra: str) -> dict[str, str]:
    """This process's environment without any DIGEST_ setting, plus a secret and NO_COLOR."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    return {**env, "DIGEST_SECRET": secret, "NO_COLOR": "1", **extra}


def run_digest(
    cwd: Path, env: dict[str, str], *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`python -m digestcli ARGS...` run to completion in cwd, as a user runs it (no stdin)."""
    return subprocess.run(
        [sys.executable, "-m", "digestcli", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
