"""The shipped systemd units: valid, hardened, and no restart loop on a config error."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.shared_data import REPO

UNITS = REPO / "systemd"
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(
    ANALYZE is None, reason="systemd-analyze is not installed (scripts/install-deps.sh adds it)"
)


def _installed_copy(unit: str, tmp_path: Path, name: str | None = None) -> Path:
    """The unit with ExecStart pointing at this checkout's har-daemon, as an install would."""
    text = (UNITS / unit).read_text()
    exe = Path(sys.executable).parent / "har-daemon"
    if not exe.exists():
        exe = Path(sys.executable)
    text = text.replace("/opt/har-daemon/bin/har-daemon", str(exe))
    out = tmp_path / (name or unit)
    out.write_text(text)
    return out


@needs_analyze
@pytest.mark.parametrize(
    ("unit", "name"),
    [("har-daemon.service", None), ("har-daemon@.service", "har-daemon@lobby.service")],
)
def test_units_verify(unit: str, name: str | None, tmp_path: Path) -> None:
    path = _installed_copy(unit, tmp_path, name)
    result = subprocess.run(
        [ANALYZE, "verify", str(path)], capture_output=True, text=True, timeout=60
    )
    problems = [
        line for line in result.stderr.splitlines() if str(path.name) in line or "Unknown" in line
    ]
    assert result.returncode == 0 and not problems, result.stderr


@needs_analyze
@pytest.mark.parametrize("unit", ["har-daemon.service", "har-daemon@.service"])
def test_units_are_hardened(unit: str, tmp_path: Path) -> None:
    path = _installed_copy(unit, tmp_path)
    result = subprocess.run(
        [ANALYZE, "security", "--offline=true", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout + result.stderr)
    assert match, result.stdout[-2000:]
    assert float(match.group(1)) <= 2.0


@pytest.mark.parametrize("unit", ["har-daemon.service", "har-daemon@.service"])
def test_notify_watchdog_and_no_restart_loop_on_config_errors(unit: str) -> None:
    text = (UNITS / unit).read_text()
    assert "Type=notify" in text
    assert re.search(r"^WatchdogSec=\d+", text, re.M)
    assert "Restart=on-failure" in text
    # Exit 2 is har-daemon's "your configuration is wrong": restarting cannot help.
    assert re.search(r"^RestartPreventExitStatus=.*\b2\b", text, re.M)
    assert "StateDirectory=har-daemon" in text
    # The package's system user, which the config files are group-readable by.
    assert re.search(r"^User=har-daemon$", text, re.M)
    assert not re.search(r"^DynamicUser=", text, re.M)
