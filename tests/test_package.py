"""The Debian package as an installer meets it: built by scripts/build-deb.sh, installed with
dpkg, its config checked as the service's user, and its unit run by a real systemd.

Root only (dpkg -i, a system user, systemd): CI runs the suite as root on a fresh Debian
machine. systemd boots as PID 1 of its own PID and mount namespaces (unshare) with private /tmp
and /var/tmp (booting cleans /tmp: tmpfiles' `D /tmp`), and with sysinit.target as its goal, so
that none of the machine's own services start. The build is cached by the content of the files
it is made from (~/.cache/har-daemon/deb/), so a second run only installs.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from har_daemon.tools.broker import MosquittoBroker, MqttRecorder
from tests.shared_data import REPO

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(600),
    pytest.mark.skipif(os.geteuid() != 0, reason="installs a package: root only (CI runs as root)"),
]

PACKAGE = "har-daemon"
PREFIX = Path("/opt/har-daemon")
CONFIG = Path("/etc/har-daemon/config.toml")
STATE = Path("/var/lib/har-daemon")
SYSTEMD = Path("/lib/systemd/systemd")
DROP_IN = Path("/run/systemd/system/har-daemon.service.d/test.conf")  # inside the namespace
BOOT = (
    "mount -t tmpfs tmpfs /tmp && mount -t tmpfs tmpfs /var/tmp && "
    f"exec {SYSTEMD} --system --unit=sysinit.target"
)


def _sources_key() -> str:
    """What build-deb.sh packs: the working tree's files that git does not ignore."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    digest = hashlib.sha256()
    for name in sorted(filter(None, listed)):
        path = REPO / name
        if name == ".venv" or not (path.is_file() or path.is_symlink()):
            continue
        digest.update(name.encode() + b"\0")
        digest.update(os.readlink(path).encode() if path.is_symlink() else path.read_bytes())
    return digest.hexdigest()[:16]


@pytest.fixture(scope="module")
def deb() -> Path:
    out = Path.home() / ".cache" / "har-daemon" / "deb" / _sources_key()
    built = sorted(out.glob("*.deb"))
    if built:
        return built[0]
    for stale in out.parent.glob("*"):  # one cached build: a package is ~110 MB
        shutil.rmtree(stale, ignore_errors=True)
    result = subprocess.run(
        ["bash", REPO / "scripts" / "build-deb.sh", out],
        capture_output=True, text=True, timeout=480,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return Path(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def installed(deb: Path) -> Iterator[Path]:
    before = subprocess.run(["dpkg-query", "-W", "-f=${Status}", PACKAGE], capture_output=True)
    if b"install ok installed" in before.stdout:
        pytest.skip("a har-daemon package is installed here already: the test would purge it")
    result = subprocess.run(["dpkg", "-i", deb], capture_output=True, text=True, timeout=300)
    try:
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        assert "installed, not enabled" in result.stdout
        yield deb
    finally:
        subprocess.run(["dpkg", "--purge", PACKAGE], capture_output=True, timeout=300)


def _owner(path: Path) -> tuple[str, str, int]:
    st = path.stat()
    group = subprocess.run(["getent", "group", str(st.st_gid)], capture_output=True, text=True)
    return pwd.getpwuid(st.st_uid).pw_name, group.stdout.split(":")[0], stat.S_IMODE(st.st_mode)


def test_the_package_installs_a_venv_from_usr_the_units_and_a_readable_config(
    installed: Path,
) -> None:
    user = pwd.getpwnam(PACKAGE)
    assert user.pw_uid < 1000 and user.pw_shell.endswith("nologin")
    assert _owner(CONFIG.parent) == ("root", PACKAGE, 0o750)
    assert _owner(CONFIG) == ("root", PACKAGE, 0o640)
    assert CONFIG.read_text() == (REPO / "config.example.toml").read_text()
    conffiles = subprocess.run(
        ["dpkg-query", "-W", "-f=${Conffiles}", PACKAGE], capture_output=True, text=True
    ).stdout
    assert str(CONFIG) in conffiles
    for unit in ("har-daemon.service", "har-daemon@.service"):
        assert (Path("/lib/systemd/system") / unit).is_file()
    # Nothing enabled without the installer's word.
    assert not list(Path("/etc/systemd/system").glob("*.wants/har-daemon*"))
    # A python in /usr (the unit's ProtectHome= hides /root and /home), nothing of the build.
    python = (PREFIX / "bin" / "python").resolve()
    assert python.is_relative_to("/usr"), python
    for script in (PREFIX / "bin").iterdir():
        if script.is_file() and not script.is_symlink():
            text = script.read_text(errors="replace")
            assert "/root" not in text and "/home" not in text and "/tmp" not in text, script
    where = subprocess.run(
        [PREFIX / "bin" / "python", "-c", "import har_daemon; print(har_daemon.__file__)"],
        cwd="/", env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
    )  # fmt: skip
    assert where.stdout.startswith(str(PREFIX)), where


def test_check_config_as_the_service_user(installed: Path) -> None:
    """The installed example, unedited, as the unit runs it: its user, its state directory."""
    check = [PREFIX / "bin" / "har-daemon", "check-config", "--config", CONFIG]
    ok = subprocess.run(
        ["runuser", "-u", PACKAGE, "--", "env", "-i", f"STATE_DIRECTORY={STATE}", *check],
        cwd="/", capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("configuration OK") and "cameras: demo (file)" in ok.stdout
    # Anyone else cannot read it (it may hold the broker's password).
    other = subprocess.run(
        ["runuser", "-u", "nobody", "--", "env", "-i", *check],
        cwd="/", capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert other.returncode == 2 and "Permission denied" in other.stderr, other.stderr
    assert len(other.stderr.strip().splitlines()) == 1


class Systemd:
    """systemd as PID 1 of its own namespaces; `ctl` runs systemctl (or any command) inside."""

    def __init__(self, log: Path) -> None:
        self._log = log.open("wb")
        self.proc = subprocess.Popen(
            ["unshare", "--pid", "--fork", "--mount", "--mount-proc", "sh", "-c", BOOT],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        self.log = log
        self.pid = self._pid1()

    def _pid1(self) -> int:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
            found = children.read_text().split() if children.exists() else []
            if found:
                return int(found[0])
            assert self.proc.poll() is None, self.log.read_text(errors="replace")[-3000:]
            time.sleep(0.1)
        raise AssertionError("unshare started no PID 1")

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["nsenter", "-t", str(self.pid), "-m", "-p", *args],
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip

    def ctl(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return self.run("systemctl", *args, timeout=timeout)

    def show(self, unit: str, *props: str) -> dict[str, str]:
        out = self.ctl("show", unit, *(f"--property={p}" for p in props)).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def wait_booted(self, timeout: float = 90) -> str:
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text(errors="replace")[-3000:]
            state = self.ctl("is-system-running", timeout=10).stdout.strip()
            if state in ("running", "degraded"):
                return state
            time.sleep(0.5)
        raise AssertionError(f"systemd did not finish booting ({state!r}): {self.log.read_text()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.ctl("poweroff", timeout=30)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)  # the namespace's PID 1: everything in it ends
                self.proc.wait(30)
        self._log.close()


@pytest.fixture
def systemd(installed: Path, tmp_path: Path) -> Iterator[Systemd]:
    for tool in ("unshare", "nsenter"):
        assert shutil.which(tool), f"{tool} (util-linux) is missing"
    assert SYSTEMD.exists(), "systemd is not installed (scripts/install-deps.sh adds it)"
    booted = Systemd(tmp_path / "systemd.log")
    try:
        booted.wait_booted()
        yield booted
    finally:
        booted.stop()


def _drop_in(sd: Systemd, *env: str) -> None:
    lines = "\n".join(f'Environment="{e}"' for e in env)
    sd.run("sh", "-c", f"mkdir -p {DROP_IN.parent} && printf '[Service]\\n{lines}\\n' > {DROP_IN}")
    assert sd.ctl("daemon-reload").returncode == 0


def test_the_unit_under_systemd(systemd: Systemd, tmp_path: Path) -> None:
    """READY, events on a broker, a clean stop; a config error stays down until fixed."""
    sd, unit = systemd, "har-daemon.service"
    since = f"--since=@{int(time.time())}"  # the journal may be persistent: this run's lines only
    broker = MosquittoBroker(tmp_path / "mosquitto").start()
    try:
        mqtt = (f"HAR_MQTT__HOST={broker.host}", f"HAR_MQTT__PORT={broker.port}")
        # The demo model has no class 'fight', which the example's [inference] names: exit 2.
        _drop_in(sd, *mqtt, "HAR_MODEL__PATH=models/demo")
        assert sd.ctl("start", unit).returncode != 0
        failed = sd.show(unit, "ActiveState", "ExecMainStatus", "NRestarts")
        assert failed["ActiveState"] == "failed" and failed["ExecMainStatus"] == "2", failed
        time.sleep(7)  # RestartSec=5: exit 2 must not be restarted
        assert sd.show(unit, "NRestarts", "ActiveState") == {
            "NRestarts": "0", "ActiveState": "failed"
        }  # fmt: skip
        journal = sd.run("journalctl", "-u", unit, since, "-o", "cat", "--no-pager").stdout
        assert "unknown activity 'fight'" in journal, journal[-2000:]

        # Fixed: restart gives a running service that reached READY (Type=notify).
        _drop_in(
            sd, *mqtt, "HAR_MODEL__PATH=models/demo",
            "HAR_INFERENCE__ALERT_ACTIVITIES=[]", "HAR_INFERENCE__IGNORE_ACTIVITIES=[]",
        )  # fmt: skip
        with MqttRecorder(broker, "har/#") as recorder:
            started = sd.ctl("restart", unit)
            log = sd.run("journalctl", "-u", unit, since).stdout
            assert started.returncode == 0, started.stderr + log
            running = sd.show(unit, "ActiveState", "SubState", "StatusText", "MainPID", "User")
            assert running["ActiveState"] == "active" and running["StatusText"], running
            owner = sd.run("stat", "-c", "%U", f"/proc/{running['MainPID']}").stdout.strip()
            assert owner == PACKAGE, owner
            recorder.wait_for("har/status", b"online", timeout=30)
            recorder.wait_for("har/demo/events", timeout=90)

        stopped = sd.ctl("stop", unit)
        assert stopped.returncode == 0, stopped.stderr
        after = sd.show(unit, "ActiveState", "Result", "ExecMainStatus")
        assert after == {"ActiveState": "inactive", "Result": "success", "ExecMainStatus": "0"}
        journal = sd.run("journalctl", "-u", unit, since, "-o", "cat", "--no-pager").stdout
        assert '"event": "daemon.stopped"' in journal
        # The sandbox leaves LiteRT its fast kernels (ProcSubset=pid hid /proc/cpuinfo from them).
        assert "XNNPACK delegate" in journal and "Error in cpuinfo" not in journal
    finally:
        broker.stop()
