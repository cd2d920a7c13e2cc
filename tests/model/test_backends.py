"""Inference backends: LiteRT agrees with Keras, batches of any size, and runs without TF."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from har_daemon.core.errors import ConfigError, ModelError
from har_daemon.model.keras.backend import KerasBackend
from har_daemon.model.keras.export import EXPORT_ATOL
from har_daemon.model.litert import LiteRTBackend
from har_daemon.model.meta import read_meta, write_meta
from har_daemon.model.registry import create_backend, resolve_kind
from tests.model.test_export import model_dir_for, random_windows, real_windows, save_random
from tests.shared_data import REPO as ROOT


@pytest.fixture(params=["convlstm", "tutorial", "lrcn"])
def exported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return model_dir_for(request.param, tmp_path_factory, exported=True)


@pytest.fixture
def convlstm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return model_dir_for("convlstm", tmp_path_factory, exported=True)


def test_litert_matches_keras_on_real_and_random_windows(exported: Path) -> None:
    keras_backend = create_backend("keras", exported)
    litert = create_backend("litert", exported, threads=2)
    assert (keras_backend.name, litert.name) == ("keras", "litert")
    assert litert.meta == keras_backend.meta
    x = np.concatenate([real_windows(litert.meta), random_windows(litert.meta, n=3)])
    ref = keras_backend.predict(x)
    assert np.ptp(ref, axis=1).min() > 0.05  # not uniform: the comparison can fail
    np.testing.assert_allclose(litert.predict(x), ref, atol=EXPORT_ATOL, rtol=0)
    # Any batch size, in any order (the interpreter's input is resized between calls).
    for n in (1, 6, 2, 1):
        np.testing.assert_allclose(litert.predict(x[:n]), ref[:n], atol=EXPORT_ATOL, rtol=0)
    np.testing.assert_allclose(litert.predict(x[0]), ref[:1], atol=EXPORT_ATOL, rtol=0)


def test_empty_batch_and_wrong_shapes(convlstm_dir: Path) -> None:
    for backend in (LiteRTBackend(convlstm_dir), KerasBackend(convlstm_dir)):
        empty = backend.predict(np.zeros((0, 20, 64, 64, 3), np.float32))
        assert empty.shape == (0, 4)
        with pytest.raises(ValueError, match=r"\(N, 20, 64, 64, 3\)"):
            backend.predict(np.zeros((1, 20, 32, 32, 3), np.float32))


def test_litert_runs_without_tensorflow_or_keras(convlstm_dir: Path) -> None:
    code = textwrap.dedent(
        f"""
        import json, sys
        import numpy as np
        from har_daemon.model.registry import create_backend, resolve_kind
        backend = create_backend("litert", {str(convlstm_dir)!r}, threads=2)
        x = np.random.default_rng(0).random((2, *backend.meta.input_shape), dtype=np.float32)
        probs = backend.predict(x)
        status = open("/proc/self/status").read()
        rss_kb = int(status.split("VmRSS:")[1].split()[0])
        heavy = sorted({{m.split(".")[0] for m in sys.modules}} & {{"tensorflow", "keras"}})
        print(json.dumps({{"probs": probs.tolist(), "heavy": heavy, "rss_mb": rss_kb / 1024}}))
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["heavy"] == []
    # Same numbers as in this (TensorFlow-loaded) process, which the test above checks.
    same = LiteRTBackend(convlstm_dir).predict(random_windows(read_meta(convlstm_dir), 2, seed=0))
    np.testing.assert_allclose(np.array(result["probs"]), same, atol=1e-6, rtol=0)
    print(f"TF-free litert process RSS: {result['rss_mb']:.0f} MB")
    assert result["rss_mb"] < 300  # TensorFlow alone takes more than this


def test_missing_export_says_which_command_to_run(tmp_path: Path) -> None:
    model_dir = save_random(tmp_path / "m", "lrcn")
    with pytest.raises(ModelError) as err:
        create_backend("litert", model_dir)
    message = str(err.value)
    assert f"har-daemon export {model_dir}" in message and "\n" not in message
    # Recorded in model.json but deleted since: the same advice.
    write_meta(model_dir, read_meta(model_dir).model_copy(update={"tflite_file": "model.tflite"}))
    with pytest.raises(ModelError, match=r"model\.tflite is missing; run `har-daemon export"):
        create_backend("litert", model_dir)


def test_export_that_disagrees_with_model_json_is_refused(
    tmp_path: Path, convlstm_dir: Path
) -> None:
    model_dir = tmp_path / "m"
    model_dir.mkdir()
    for name in ("model.keras", "model.tflite"):
        (model_dir / name).write_bytes((convlstm_dir / name).read_bytes())
    meta = read_meta(convlstm_dir).model_copy(update={"classes": ["a", "b", "c"]})
    write_meta(model_dir, meta)
    with pytest.raises(ModelError, match="does not match"):
        create_backend("litert", model_dir)
    (model_dir / "model.tflite").write_bytes(b"not a flatbuffer")
    with pytest.raises(ModelError, match="cannot load"):
        create_backend("litert", model_dir)


def test_unknown_backend_is_a_config_error(convlstm_dir: Path) -> None:
    with pytest.raises(ConfigError, match="choose from auto, keras, litert"):
        create_backend("onnx", convlstm_dir)


def test_auto_serves_the_export_and_falls_back_to_keras(tmp_path: Path, convlstm_dir: Path) -> None:
    assert resolve_kind("auto", convlstm_dir) == "litert"
    assert create_backend("auto", convlstm_dir).name == "litert"
    no_export = save_random(tmp_path / "m", "lrcn")
    assert resolve_kind("auto", no_export) == "keras"
    assert create_backend("auto", no_export).name == "keras"
    assert resolve_kind("keras", convlstm_dir) == "keras"


def test_fixed_batch_export_is_fed_in_padded_chunks(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from har_daemon.model.keras.export import build_inference_twin, convert_to_tflite
    from har_daemon.model.keras.store import load_model_dir

    source = model_dir_for("lrcn", tmp_path_factory, exported=True)
    model_dir = tmp_path / "fixed"
    model_dir.mkdir()
    for name in ("model.json", "model.keras"):
        (model_dir / name).write_bytes((source / name).read_bytes())
    loaded = load_model_dir(model_dir)
    fixed = convert_to_tflite(build_inference_twin(loaded.model), loaded.meta.input_shape, batch=2)
    (model_dir / "model.tflite").write_bytes(fixed)
    backend = LiteRTBackend(model_dir)
    x = random_windows(loaded.meta, n=3, seed=5)
    ref = loaded.predict(x)
    for n in (1, 2, 3):
        np.testing.assert_allclose(backend.predict(x[:n]), ref[:n], atol=EXPORT_ATOL, rtol=0)
