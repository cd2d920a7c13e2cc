"""Headless Chromium for report pages: a screenshot, or the DOM it parsed.

A browser's own layout is the proof that the page renders; Chromium runs with a throwaway
profile and no name resolution, so it can only show what the page carries inline.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from har_daemon.core.errors import HarError
from har_daemon.reporting.inputs import PNG_MAGIC

__all__ = ["dump_dom", "find_chromium", "render_screenshot"]

_CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """`$HAR_CHROMIUM`, else the first Chromium/Chrome on PATH (Debian: package `chromium`)."""
    env = os.environ.get("HAR_CHROMIUM")
    if env:
        return shutil.which(env) or (env if Path(env).is_file() else None)
    for name in _CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _run_chromium(args: list[str], chromium: str | None, timeout_s: float) -> str:
    """Run headless Chromium with a throwaway profile and no network; return its stdout.

    `--headless` is the new headless mode (the old one left the chromium binary in 132;
    `--headless=old` is accepted but ignored). `--no-sandbox` because containers often run
    as root; `--disable-dev-shm-usage` for their small /dev/shm.
    """
    binary = chromium or find_chromium()
    if binary is None:
        raise HarError(
            "chromium not found: install it (Debian: apt install chromium) or set HAR_CHROMIUM"
        )
    with tempfile.TemporaryDirectory(prefix="har-chromium-") as profile:
        cmd = [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            f"--user-data-dir={profile}",
            *args,
        ]
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise HarError(f"chromium did not finish within {timeout_s:.0f} s") from None
        except OSError as exc:
            raise HarError(f"cannot start {binary}: {exc.strerror or exc}") from None
    if res.returncode != 0:
        last = [ln for ln in res.stderr.splitlines() if ln.strip()][-1:] or ["no message"]
        raise HarError(f"chromium exited with {res.returncode}: {last[0][:300]}")
    return res.stdout


def render_screenshot(
    html_path: Path,
    png_path: Path,
    *,
    width: int = 1280,
    height: int = 2400,
    chromium: str | None = None,
    timeout_s: float = 120.0,
) -> Path:
    """Screenshot of the top `width` x `height` pixels of a page, as Chromium lays it out."""
    page = Path(html_path).resolve()
    if not page.is_file():
        raise HarError(f"{page} does not exist")
    out = Path(png_path).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    _run_chromium(
        [f"--screenshot={out}", f"--window-size={width},{height}", page.as_uri()],
        chromium,
        timeout_s,
    )
    if not out.is_file() or not out.read_bytes().startswith(PNG_MAGIC):
        raise HarError(f"chromium wrote no screenshot to {out}")
    return out


def dump_dom(html_path: Path, *, chromium: str | None = None, timeout_s: float = 120.0) -> str:
    """The DOM after Chromium parsed the page (`--dump-dom`): proves a browser reads it."""
    page = Path(html_path).resolve()
    if not page.is_file():
        raise HarError(f"{page} does not exist")
    return _run_chromium(["--dump-dom", page.as_uri()], chromium, timeout_s)
