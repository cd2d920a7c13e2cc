"""Native libraries' stderr lines become JSON log lines; so do thread deaths and warnings."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from har_daemon.core.stderr import parse_native_line
from tests.shared_data import REPO


@pytest.mark.parametrize(
    ("line", "library", "level", "component", "message"),
    [
        (
            "[tcp @ 0x55d0c8a01e40] Connection to tcp://cam:554?timeout=0 failed: Connection "
            "refused",
            "ffmpeg",
            "warning",
            "tcp",
            "Connection to tcp://cam:554?timeout=0 failed: Connection refused",
        ),
        (
            "[mov,mp4,m4a,3gp,3g2,mj2 @ 0x562a48a8d940] moov atom not found",
            "ffmpeg",
            "warning",
            "mov,mp4,m4a,3gp,3g2,mj2",
            "moov atom not found",
        ),
        (
            "[ WARN:0@1.314] global cap.cpp:212 open VIDEOIO(FFMPEG): backend is generally "
            "available but can't be used to capture by name",
            "opencv",
            "warning",
            None,
            "cap.cpp:212 open VIDEOIO(FFMPEG): backend is generally available but can't be used "
            "to capture by name",
        ),
        (
            "[ERROR:0@2.001] global cap_ffmpeg_impl.hpp:1000 open Could not open codec",
            "opencv",
            "error",
            None,
            "cap_ffmpeg_impl.hpp:1000 open Could not open codec",
        ),
        (
            "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
            "litert",
            "info",
            None,
            "Created TensorFlow Lite XNNPACK delegate for CPU.",
        ),
        ("Truncating packet of size 16711946 to 126964", "native", "warning", None, None),
    ],
)
def test_native_lines_are_classified(
    line: str, library: str, level: str, component: str | None, message: str | None
) -> None:
    parsed = parse_native_line(line + "\n")
    assert (parsed.library, parsed.level, parsed.component) == (library, level, component)
    assert parsed.message == (message or line)


def test_urls_in_native_lines_lose_their_credentials() -> None:
    parsed = parse_native_line(
        "[rtsp @ 0x1] method DESCRIBE failed for rtsp://admin:pw1@cam/s?password=pw2&ch=1: 401"
    )
    assert "pw1" not in parsed.message and "pw2" not in parsed.message
    assert "rtsp://admin:***@cam/s?password=***&ch=1" in parsed.message


def test_repeats_differ_only_in_numbers_and_addresses() -> None:
    a = parse_native_line("[h264 @ 0x5555] Invalid NAL unit size (1234 > 99).")
    b = parse_native_line("[h264 @ 0x7777] Invalid NAL unit size (88 > 7).")
    assert a.kind == b.kind


def _run(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )


def test_every_line_on_stderr_is_json_whoever_wrote_it() -> None:
    done = _run(
        """
        import os, subprocess, threading, warnings
        from har_daemon.core.logs import configure_logging
        from har_daemon.core.stderr import json_stderr
        configure_logging("debug")
        with json_stderr():
            for _ in range(8):
                os.write(2, b"[h264 @ 0x55d0] Invalid NAL unit size (1234 > 99).\\n")
            os.write(2, b"[ WARN:0@1.3] global cap.cpp:212 open VIDEOIO(FFMPEG): no\\n")
            os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\n")
            subprocess.run(["sh", "-c", "echo a child process says this >&2"], check=True)
            thread = threading.Thread(target=lambda: 1 / 0, name="worker")
            thread.start()
            thread.join()
            warnings.warn("careful", UserWarning)
            os.write(2, b"no newline at the end")
        """
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    native = [(e["library"], e["level"], e["message"]) for e in lines if e["event"] == "native.log"]
    nal = ("ffmpeg", "warning", "Invalid NAL unit size (1234 > 99).")
    assert native == [
        *[nal] * 5,  # then the repeats are held back (and counted)
        ("opencv", "warning", "cap.cpp:212 open VIDEOIO(FFMPEG): no"),
        ("litert", "info", "Created TensorFlow Lite XNNPACK delegate for CPU."),
        ("native", "warning", "a child process says this"),
        ("native", "warning", "no newline at the end"),
    ]
    crashed = next(e for e in lines if e["event"] == "thread.crashed")
    assert crashed["thread"] == "worker" and "ZeroDivisionError" in crashed["exception"]
    warned = next(e for e in lines if e["event"] == "python.warning")
    assert warned["message"] == "careful" and warned["category"] == "UserWarning"


def test_a_bug_escaping_is_one_json_line_and_exit_1() -> None:
    done = _run(
        """
        from har_daemon.core.logs import configure_logging
        from har_daemon.core.stderr import json_stderr
        configure_logging("info")
        with json_stderr():
            raise RuntimeError("a bug")
        """
    )
    assert done.returncode == 1
    (line,) = done.stderr.splitlines()
    crashed = json.loads(line)
    assert crashed["event"] == "daemon.crashed" and "RuntimeError: a bug" in crashed["exception"]


@pytest.mark.parametrize("fails", [False, True])
def test_held_native_stderr_shows_only_when_the_block_fails(fails: bool) -> None:
    code = textwrap.dedent(f"""
        import os
        from har_daemon.core.stderr import native_stderr_held
        try:
            with native_stderr_held():
                os.write(2, b"native start-up note\\n")
                if {fails}:
                    raise RuntimeError("start-up failed")
        except RuntimeError:
            pass
        os.write(2, b"after\\n")
    """)
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    expected = "native start-up note\nafter\n" if fails else "after\n"
    assert proc.stderr == expected
