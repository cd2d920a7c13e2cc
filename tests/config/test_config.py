"""Configuration: TOML + HAR_* environment overrides, one clear line per bad field."""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from har_daemon.config import DaemonConfig, describe_errors, load_config
from har_daemon.config.errors import unwrap_model
from har_daemon.core.errors import ConfigError
from har_daemon.core.paths import DEMO_MODEL_DIR
from har_daemon.model.meta import read_meta
from tests.shared_data import REPO

EXAMPLE = REPO / "config.example.toml"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see only the HAR_* variables they set themselves."""
    for name in list(os.environ):
        if name.upper().startswith("HAR_") or name in ("STATE_DIRECTORY", "XDG_STATE_HOME"):
            monkeypatch.delenv(name)


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str, **kw) -> list[str]:
    """The ConfigError's lines after its header."""
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), **kw)
    header, *lines = str(info.value).splitlines()
    assert header.startswith("invalid configuration in ")
    assert f"({len(lines)} problem" in header
    return lines


# -- the example and the defaults ---------------------------------------------------------------


def test_example_loads_with_its_cameras() -> None:
    cfg = load_config(EXAMPLE)
    assert [c.name for c in cfg.cameras] == ["front-door", "desk-webcam", "living-room", "demo"]
    rtsp, webcam, room, demo = cfg.cameras
    # Installed unedited, it starts: the examples wait for a real source, the demo clip plays.
    assert [c.name for c in cfg.enabled_cameras] == ["demo"]
    assert demo.loop and Path(demo.source).resolve() == (REPO / "models/demo/sample.mp4").resolve()
    assert rtsp.classifies and rtsp.fall is None  # no recognisers: the classifier alone
    assert room.classifies and room.fall is not None and room.fall.looks == "own"
    assert room.fall.model is not None and (room.fall.model / "rule.json").is_file()
    assert rtsp.source_kind == "stream" and rtsp.source.startswith("rtsp://")
    assert "secret" not in rtsp.redacted_source and "secret" not in repr(rtsp)
    assert webcam.source == 0 and webcam.source_kind == "webcam"
    assert rtsp.stall_timeout_s == 15.0  # its own
    assert webcam.stall_timeout_s == cfg.capture.stall_timeout_s  # inherited
    assert cfg.spool.max_bytes == 100_000_000 and cfg.spool.max_age == 7 * 86400
    assert cfg.logging.json_output is True


def _section_models() -> dict[str, type[BaseModel]]:
    out = {}
    for name, field in DaemonConfig.model_fields.items():
        model = unwrap_model(field.annotation)
        assert model is not None
        out[name] = model
    return out


def test_example_shows_every_option() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    for section, model in _section_models().items():
        header = "[[cameras]]" if section == "cameras" else f"[{section}]"
        assert header in text, header
        for name, field in model.model_fields.items():
            key = field.alias or name
            assert re.search(rf"^#? ?{key} = ", text, re.M), f"{section}.{key} missing"


def test_example_values_equal_the_defaults() -> None:
    """The example documents the defaults; keep the two in step."""
    example = load_config(EXAMPLE).model_dump(exclude={"cameras"})
    defaults = load_config(None).model_dump(exclude={"cameras"})
    # What the example sets on purpose: the bundled fight model and its alerting classes.
    # The bundled models are found through the package (its bundled_models link to models/).
    assert example["model"].pop("path").resolve() == (REPO / "models" / "fight").resolve()
    assert defaults["model"].pop("path").resolve() == (REPO / "models" / "demo").resolve()
    for key, value in (("alert_activities", ["fight"]), ("ignore_activities", ["noFight"])):
        assert example["inference"].pop(key) == value
        assert defaults["inference"].pop(key) == []
    # ... and the alert settings chosen for that model on validation data (its model.json).
    chosen = read_meta(REPO / "models" / "fight").training["alert_policy"]["config"]
    for key in ("smoothing", "smoothing_window", "enter_threshold", "min_windows"):
        assert example["inference"].pop(key) == chosen[key], key
        defaults["inference"].pop(key)
    assert example["inference"].pop("exit_threshold") == chosen["exit_threshold"]
    defaults["inference"].pop("exit_threshold")
    assert example == defaults


def test_defaults_without_a_file() -> None:
    cfg = load_config(None)
    assert cfg.cameras == []
    assert cfg.model.path == DEMO_MODEL_DIR
    assert DEMO_MODEL_DIR.resolve() == (REPO / "models" / "demo").resolve()
    assert (cfg.model.backend, cfg.model.stride, cfg.model.frame_spacing_s) == ("auto", 5, None)
    assert (cfg.mqtt.host, cfg.mqtt.port, cfg.mqtt.qos, cfg.mqtt.topic_prefix) == (
        "localhost",
        1883,
        1,
        "har",
    )
    assert cfg.mqtt.enabled and not cfg.mqtt.publish_scores and not cfg.mqtt.tls
    assert cfg.mqtt.effective_client_id == f"har-daemon-{socket.gethostname()}-default"
    assert not (cfg.homeassistant.enabled or cfg.snapshots.enabled or cfg.clips.enabled)
    assert cfg.stats.interval == 60 and cfg.metrics.port == 0
    assert cfg.spool.path == Path.home() / ".local" / "state" / "har-daemon"


def test_spool_path_follows_systemd_state_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/har-daemon:/var/lib/other")
    cfg = load_config(None)
    assert cfg.spool.path == Path("/var/lib/har-daemon")
    assert cfg.clips.path == Path("/var/lib/har-daemon/clips")


# -- precedence ----------------------------------------------------------------------------------


def test_environment_beats_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, '[mqtt]\nhost = "filehost"\nport = 1884\nusername = "u"\n')
    monkeypatch.setenv("HAR_MQTT__HOST", "envhost")
    monkeypatch.setenv("HAR_MQTT__PORT", "8883")
    cfg = load_config(path)
    assert (cfg.mqtt.host, cfg.mqtt.port) == ("envhost", 8883)
    assert cfg.mqtt.username == "u"  # the rest of the section still comes from the file


def test_overrides_beat_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, '[mqtt]\nhost = "filehost"\n[model]\nstride = 3\n')
    monkeypatch.setenv("HAR_MQTT__HOST", "envhost")
    cfg = load_config(path, overrides={"mqtt": {"host": "clihost"}})
    assert cfg.mqtt.host == "clihost" and cfg.model.stride == 3


def test_environment_lists_as_json_and_unrelated_variables_ignored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HAR_INFERENCE__ALERT_ACTIVITIES", '["fight"]')
    monkeypatch.setenv("HAR_CONFIG", "/etc/har-daemon/config.toml")  # not an option: ignored
    assert load_config(None).inference.alert_activities == ["fight"]


def test_environment_error_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAR_MQTT__PORT", "0")
    with pytest.raises(ConfigError) as info:
        load_config(None)
    lines = str(info.value).splitlines()
    assert lines[0] == "invalid configuration (1 problem):"
    assert lines[1].startswith("mqtt.port: ")
    assert "HAR_MQTT__PORT" in lines[1]


# -- errors: one line per bad field ---------------------------------------------------------------


def test_unknown_option_is_named(tmp_path: Path) -> None:
    [line] = problems(tmp_path, '[mqtt]\nhots = "broker"\n')
    assert line.startswith("mqtt.hots: unknown option") and "'host'" in line


def test_unknown_section_is_named(tmp_path: Path) -> None:
    [line] = problems(tmp_path, "[mqttt]\nhost = 1\n")
    assert line.startswith("mqttt: unknown section") and "'mqtt'" in line


def test_wrong_type(tmp_path: Path) -> None:
    [line] = problems(tmp_path, '[mqtt]\nport = "eighteen"\n')
    assert line.startswith("mqtt.port: ") and "integer" in line and "'eighteen'" in line


def test_out_of_range(tmp_path: Path) -> None:
    [line] = problems(tmp_path, "[mqtt]\nport = 70000\n")
    assert line.startswith("mqtt.port: ") and "65535" in line and "70000" in line


def test_several_problems_one_line_each(tmp_path: Path) -> None:
    lines = problems(
        tmp_path,
        "[mqtt]\nport = 0\nqos = 3\n[model]\nstride = 0\nbackend = 'onnx'\n"
        "[inference]\nsmoothing = 'median'\n",
    )
    assert sorted(line.split(":")[0] for line in lines) == [
        "inference.smoothing",
        "model.backend",
        "model.stride",
        "mqtt.port",
        "mqtt.qos",
    ]


@pytest.mark.parametrize(("enter", "exit_"), [(0.5, 0.5), (0.5, 0.7)])
def test_exit_threshold_must_be_below_enter(tmp_path: Path, enter: float, exit_: float) -> None:
    [line] = problems(
        tmp_path, f"[inference]\nenter_threshold = {enter}\nexit_threshold = {exit_}\n"
    )
    assert line.startswith("inference.exit_threshold: must be lower than enter_threshold")


def test_duplicate_camera_names(tmp_path: Path) -> None:
    text = (
        '[[cameras]]\nname = "door"\nsource = 0\n'
        '[[cameras]]\nname = "yard"\nsource = 1\n'
        '[[cameras]]\nname = "door"\nsource = "rtsp://cam/stream"\n'
    )
    [line] = problems(tmp_path, text)
    assert line.startswith("cameras: duplicate camera name 'door'")
    assert "cameras[0]" in line and "cameras[2]" in line


def test_camera_fields_are_checked(tmp_path: Path) -> None:
    text = (
        '[[cameras]]\nname = "front door"\nsource = 0\n'
        '[[cameras]]\nname = "x"\nsource = "ftp://cam/x"\n'
        '[[cameras]]\nname = "y"\nsource = 0\nreconnect_initial_s = 9\nreconnect_max_s = 3\n'
    )
    lines = problems(tmp_path, text)
    assert [line.split(":")[0] for line in lines] == [
        "cameras[0].name",
        "cameras[1].source",
        "cameras[2].reconnect_max_s",
    ]


def test_cameras_as_a_single_table_gets_a_hint(tmp_path: Path) -> None:
    [line] = problems(tmp_path, '[cameras]\nname = "door"\nsource = 0\n')
    assert line.startswith("cameras: ") and "[[cameras]]" in line


def test_cameras_inherit_capture_defaults(tmp_path: Path) -> None:
    text = (
        '[capture]\nreconnect_max_s = 120\nrtsp_transport = "udp"\n'
        '[[cameras]]\nname = "a"\nsource = "/dev/video2"\n'
        '[[cameras]]\nname = "b"\nsource = "clip.mp4"\nrtsp_transport = "tcp"\nloop = true\n'
    )
    a, b = load_config(write(tmp_path, text)).cameras
    assert (a.reconnect_max_s, a.rtsp_transport, a.source_kind) == (120, "udp", "device")
    assert (b.reconnect_max_s, b.rtsp_transport, b.source_kind, b.loop) == (
        120,
        "tcp",
        "file",
        True,
    )


def test_camera_exposes_every_capture_option(tmp_path: Path) -> None:
    """The capture thread reads its settings from the camera: each one is there, inherited."""
    text = (
        "[capture]\nopen_timeout_s = 20\nreconnect_jitter = 0\n"
        '[[cameras]]\nname = "a"\nsource = "rtsp://u:pw@cam/s"\nopen_timeout_s = 5\n'
        '[[cameras]]\nname = "b"\nsource = "rtsp://cam/t"\n'
    )
    cfg = load_config(write(tmp_path, text))
    a, b = cfg.cameras
    assert (a.open_timeout_s, b.open_timeout_s, b.reconnect_jitter) == (5, 20, 0)
    assert (a.source_kind, a.redacted_source) == ("stream", "rtsp://u:***@cam/s")
    assert set(cfg.capture.model_dump()) == {
        "rtsp_transport",
        "open_timeout_s",
        "stall_timeout_s",
        "reconnect_initial_s",
        "reconnect_max_s",
        "reconnect_jitter",
        "decoder_threads",
    }
    assert load_config(None).capture.open_timeout_s == 10.0
    [line] = problems(tmp_path, "[capture]\nopen_timeout_s = 0.5\n")
    assert line.startswith("capture.open_timeout_s: ") and "1" in line


def test_decoder_threads_default_inherit_and_bounds(tmp_path: Path) -> None:
    text = (
        "[capture]\ndecoder_threads = 1\n"
        '[[cameras]]\nname = "a"\nsource = "clip.mp4"\n'
        '[[cameras]]\nname = "b"\nsource = "rtsp://cam/4k"\ndecoder_threads = 4\n'
    )
    a, b = load_config(write(tmp_path, text)).cameras
    assert (a.decoder_threads, b.decoder_threads) == (1, 4)
    assert load_config(None).capture.decoder_threads == 0
    [line] = problems(tmp_path, "[capture]\ndecoder_threads = 17\n")
    assert line.startswith("capture.decoder_threads: ") and "16" in line
    [line] = problems(tmp_path, "[capture]\ndecoder_threads = -1\n")
    assert line.startswith("capture.decoder_threads: ")


def test_missing_tls_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope-ca.pem"
    [line] = problems(tmp_path, f'[mqtt]\ntls = true\ntls_ca_file = "{missing}"\n')
    assert line.startswith("mqtt.tls_ca_file: file not found") and str(missing) in line


def test_tls_files_that_exist(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    cfg = load_config(write(tmp_path, f'[mqtt]\ntls = true\ntls_ca_file = "{ca}"\nport = 8883\n'))
    assert cfg.mqtt.tls_ca_file == ca
    [line] = problems(tmp_path, f'[mqtt]\ntls_ca_file = "{ca}"\n')
    assert line.startswith("mqtt.tls_ca_file: ") and "tls = true" in line
    [line] = problems(tmp_path, f'[mqtt]\ntls = true\ntls_key_file = "{ca}"\n')
    assert line.startswith("mqtt.tls_key_file: needs tls_cert_file")


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[mqtt]\nhost = "broker"\nport = \n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    msg = str(info.value)
    assert str(path) in msg and "line 3" in msg and "\n" not in msg


def test_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError, match=re.escape(f"config file {path} not found")):
        load_config(path)
    with pytest.raises(ConfigError, match="is not a file"):
        load_config(tmp_path)


def test_config_error_exits_with_status_2(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "absent.toml")
    assert info.value.exit_code == 2


# -- secrets ------------------------------------------------------------------------------------


def test_password_never_shown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = load_config(write(tmp_path, '[mqtt]\nusername = "u"\npassword = "hunter2"\n'))
    assert cfg.mqtt.password is not None
    assert cfg.mqtt.password.get_secret_value() == "hunter2"
    for text in (repr(cfg), str(cfg), repr(cfg.mqtt), cfg.model_dump_json(), str(cfg.model_dump())):
        assert "hunter2" not in text
    assert "hunter2" not in str(cfg.redacted_dict())
    monkeypatch.setenv("HAR_MQTT__PASSWORD", "from-env-s3cret")
    cfg = load_config(None, overrides={"mqtt": {"username": "u"}})
    assert cfg.mqtt.password.get_secret_value() == "from-env-s3cret"
    assert "from-env-s3cret" not in cfg.model_dump_json() + repr(cfg)


def test_password_not_leaked_by_errors(tmp_path: Path) -> None:
    [line] = problems(tmp_path, '[mqtt]\nusername = "u"\npassword = 987654321\n')
    assert line.startswith("mqtt.password: ") and "987654321" not in line
    [line] = problems(tmp_path, '[mqtt]\npassword = "pw"\n')
    assert line == "mqtt.password: a password needs a username"


def test_camera_url_password_hidden_in_errors(tmp_path: Path) -> None:
    [line] = problems(tmp_path, '[[cameras]]\nname = "a b"\nsource = "rtsp://u:topsecret@cam/"\n')
    assert "topsecret" not in line


def test_camera_url_query_secrets_hidden(tmp_path: Path) -> None:
    url = "rtsp://cam/cam/realmonitor?channel=1&user=admin&password=qu3ry"
    cfg = load_config(write(tmp_path, f'[[cameras]]\nname = "dahua"\nsource = "{url}"\n'))
    cam = cfg.cameras[0]
    assert cam.source == url  # the capture thread still gets the real URL
    assert cam.redacted_source == url.replace("qu3ry", "***")
    for text in (repr(cam), str(cam), repr(cfg), str(cfg.redacted_dict())):
        assert "qu3ry" not in text
    [line] = problems(tmp_path, f'[[cameras]]\nname = "a b"\nsource = "{url}"\n')
    assert "qu3ry" not in line


# -- helpers ------------------------------------------------------------------------------------


def test_sizes_durations_and_sources(tmp_path: Path) -> None:
    text = (
        '[spool]\nmax_bytes = "1.5GiB"\nmax_age = "36h"\n[inference]\nupdate_interval_s = "2m"\n'
        '[[cameras]]\nname = "w"\nsource = "2"\n[logging]\nlevel = "DEBUG"\njson = false\n'
    )
    cfg = load_config(write(tmp_path, text))
    assert cfg.spool.max_bytes == int(1.5 * 2**30) and cfg.spool.max_age == 36 * 3600
    assert cfg.inference.update_interval_s == 120
    assert cfg.cameras[0].source == 2 and cfg.cameras[0].source_kind == "webcam"
    assert (cfg.logging.level, cfg.logging.json_output) == ("debug", False)
    [line] = problems(tmp_path, '[spool]\nmax_age = "7 days"\n')
    assert line.startswith("spool.max_age: ") and "'7d'" in line


def test_describe_errors_alone() -> None:
    with pytest.raises(ValidationError) as info:
        DaemonConfig.model_validate({"mqtt": {"port": -1}, "metrics": {"port": "x"}})
    lines = describe_errors(info.value, env={})
    assert [line.split(":")[0] for line in lines] == ["mqtt.port", "metrics.port"]


def test_relative_model_path_is_found_beside_the_config_then_among_bundled_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # a service's working directory: neither of the two
    own = tmp_path / "etc" / "mymodels" / "m1"
    own.mkdir(parents=True)
    cfg_file = tmp_path / "etc" / "har.toml"
    cfg_file.write_text('[model]\npath = "mymodels/m1"\n')
    assert load_config(cfg_file).model.path == own
    cfg_file.write_text('[model]\npath = "models/demo"\n')
    assert load_config(cfg_file).model.path.resolve() == (REPO / "models" / "demo").resolve()
    cfg_file.write_text('[model]\npath = "nowhere/m"\n')
    assert load_config(cfg_file).model.path == Path("nowhere/m")


def test_a_relative_file_source_is_found_beside_the_config_then_among_the_bundled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "mine.mp4").write_bytes(b"")
    (tmp_path / "here.mp4").write_bytes(b"")
    path = write(
        tmp_path / "etc",
        "\n".join(
            f'[[cameras]]\nname = "{name}"\nsource = "{source}"'
            for name, source in (
                ("beside", "mine.mp4"),
                ("bundled", "models/demo/sample.mp4"),
                ("cwd", "here.mp4"),
                ("missing", "nowhere.mp4"),
            )
        ),
    )
    sources = [c.source for c in load_config(path).cameras]
    assert sources[0] == str(tmp_path / "etc" / "mine.mp4")
    assert Path(sources[1]).resolve() == (REPO / "models" / "demo" / "sample.mp4").resolve()
    assert sources[2:] == ["here.mp4", "nowhere.mp4"]  # the working directory's, as given
