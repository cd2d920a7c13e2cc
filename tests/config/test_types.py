"""The config's value parsers and path defaults, called directly (no file, no environment)."""

from __future__ import annotations

from pathlib import Path

import pytest

from har_daemon.config import ClipsConfig, SpoolConfig
from har_daemon.config.errors import format_loc
from har_daemon.config.paths import default_state_dir
from har_daemon.config.types import (
    default_of,
    expand_path,
    parse_duration,
    parse_size,
    parse_source,
    source_kind,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90.0),
        ("1.5h", 5400.0),
        (" 7d ", 7 * 86400.0),
        ("2 m", 120.0),
        ("250ms", 0.25),
        ("1W", 604800.0),
        ("36H", 36 * 3600.0),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "size"),
    [("100MB", 10**8), ("1.5GiB", int(1.5 * 2**30)), ("4k", 4000), ("512", 512), ("2 kib", 2048)],
)
def test_sizes(text: str, size: int) -> None:
    parsed = parse_size(text)
    assert parsed == size and isinstance(parsed, int)


@pytest.mark.parametrize(
    ("parse", "text", "example"),
    [
        (parse_duration, "7 days", "'7d'"),
        (parse_duration, "-1s", "'7d'"),
        (parse_duration, "", "'7d'"),
        (parse_size, "1TB", "'100MB'"),
        (parse_size, "1e6", "'100MB'"),
    ],
)
def test_bad_units_name_an_example(parse, text: str, example: str) -> None:
    with pytest.raises(ValueError, match=example):
        parse(text)


def test_non_strings_are_left_to_the_field_type() -> None:
    assert parse_duration(3) == 3 and parse_duration(None) is None
    assert parse_size(2.5) == 2 and parse_size(None) is None  # sizes are whole bytes


def test_expand_path() -> None:
    assert expand_path("~/clips") == Path.home() / "clips"
    assert expand_path(Path("rel")) == Path("rel")
    assert expand_path(5) == 5


@pytest.mark.parametrize(
    ("value", "parsed", "kind"),
    [
        (0, 0, "webcam"),
        (" 2 ", 2, "webcam"),
        ("/dev/video0", "/dev/video0", "device"),
        ("rtsp://u:p@cam/s", "rtsp://u:p@cam/s", "stream"),
        ("HTTPS://cam/mjpg", "HTTPS://cam/mjpg", "stream"),
        ("file:///srv/a.mp4", "file:///srv/a.mp4", "file"),
        ("clips/a.mp4", "clips/a.mp4", "file"),
    ],
)
def test_sources_and_their_kind(value: int | str, parsed: int | str, kind: str) -> None:
    assert parse_source(value) == parsed
    assert source_kind(parse_source(value)) == kind


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (True, "webcam index"),
        (1.5, "webcam index"),
        (-1, ">= 0"),
        ("  ", "must not be empty"),
        ("ftp://cam/x", "unsupported URL scheme 'ftp'"),
    ],
)
def test_bad_sources(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_source(value)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"STATE_DIRECTORY": "/var/lib/har:/var/lib/other"}, Path("/var/lib/har")),
        ({"XDG_STATE_HOME": "/x/state"}, Path("/x/state/har-daemon")),
        ({"STATE_DIRECTORY": "", "XDG_STATE_HOME": ""}, Path.home() / ".local/state/har-daemon"),
    ],
)
def test_default_state_dir(env: dict[str, str], expected: Path) -> None:
    assert default_state_dir(env=env) == expected


def test_format_loc() -> None:
    assert format_loc(("cameras", 0, "name")) == "cameras[0].name"
    assert format_loc(("mqtt", "port")) == "mqtt.port"
    assert format_loc(()) == "(top level)"


def test_default_of(monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_of(SpoolConfig, "max_rows") == SpoolConfig().max_rows == 100_000
    monkeypatch.setenv("STATE_DIRECTORY", "/srv/state")
    assert default_of(ClipsConfig, "path") == Path("/srv/state/clips")  # factories are called
