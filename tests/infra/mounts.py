"""File systems a test can break on purpose: a small tmpfs that fills up, a folder nobody can
write to, as root too (root ignores permission bits, never a read-only mount)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def tmpfs(directory: Path, size: str, *, read_only: bool = False) -> Iterator[Path]:
    """A small RAM file system at `directory` (root only): a disk that really fills up."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root, so there it always runs)")
    directory.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(directory)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs at {directory} as root: {done.stderr.strip()}")
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=False)


@contextlib.contextmanager
def unwritable_dir(directory: Path) -> Iterator[Path]:
    """`directory`, existing and refusing new files to this process: a read-only tmpfs as root,
    mode 0o500 otherwise."""
    if os.geteuid() == 0:
        with tmpfs(directory, "64k", read_only=True):
            yield directory
        return
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o500)
    try:
        yield directory
    finally:
        directory.chmod(0o700)
