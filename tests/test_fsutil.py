"""The atomic writer: a file is replaced whole or left as it was, and no temp file stays."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digestcli.fsutil import write_atomic


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_text_is_written_as_utf8_exactly_as_given(tmp_path: Path) -> None:
    path = tmp_path / "draft.md"
    write_atomic(path, "new \u4e2d\u6587\r\nline\n")
    assert path.read_bytes() == "new \u4e2d\u6587\r\nline\n".encode()
    assert names(tmp_path) == ["draft.md"]


@pytest.mark.parametrize("durable", [True, False])
def test_bytes_replace_the_old_file_in_one_step(tmp_path: Path, durable: bool) -> None:
    path = tmp_path / "000001-a@example.org.eml"
    path.write_bytes(b"old")
    inode = path.stat().st_ino
    write_atomic(path, b"new\r\n\r\nbody", durable=durable)
    assert path.read_bytes() == b"new\r\n\r\nbody"
    assert path.stat().st_ino != inode  # renamed over, not rewritten in place
    assert names(tmp_path) == ["000001-a@example.org.eml"]


def test_a_new_file_gets_the_mode_asked_for_whatever_the_umask(tmp_path: Path) -> None:
    old_umask = os.umask(0o077)
    try:
        write_atomic(tmp_path / "shared", "x")
        write_atomic(tmp_path / "private", b"x", mode=0o600)
    finally:
        os.umask(old_umask)
    assert (tmp_path / "shared").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "private").stat().st_mode & 0o777 == 0o600


def test_an_existing_file_keeps_its_permissions(tmp_path: Path) -> None:
    path = tmp_path / "draft.md"
    path.write_text("old", encoding="utf-8")
    path.chmod(0o640)
    write_atomic(path, "new", mode=0o600)
    assert path.stat().st_mode & 0o777 == 0o640


def test_an_error_mid_write_leaves_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "draft.md"
    path.write_text("old", encoding="utf-8")
    # A lone surrogate cannot be encoded: the write fails after the temp file was made.
    with pytest.raises(UnicodeEncodeError):
        write_atomic(path, "half \ud800 written")
    assert path.read_text(encoding="utf-8") == "old"
    assert names(tmp_path) == ["draft.md"]


def test_a_failed_rename_leaves_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "taken"
    path.mkdir()  # os.replace cannot put a file over a directory
    with pytest.raises(OSError):
        write_atomic(path, b"data")
    assert path.is_dir()
    assert names(tmp_path) == ["taken"]


@given(st.binary() | st.text(alphabet=st.characters(exclude_categories=["Cs"])))
def test_what_is_written_is_what_is_read_back(data: bytes | str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "file"
        write_atomic(path, data, durable=False)
        assert path.read_bytes() == (data.encode("utf-8") if isinstance(data, str) else data)
