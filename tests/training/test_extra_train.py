"""`train --extra-train`: clips that only train (issue 19: quiet scenes as negatives, the other
scenes kept for the false-alert measurement). They must never reach validation or test, and
must leave the split of `--data` exactly as it was."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from har_daemon.core.errors import DataError
from har_daemon.training.dataset import group_split, scan_dataset
from har_daemon.training.train import TrainOptions, train
from tests.cli.test_cli import har

pytestmark = pytest.mark.slow

CLASSES = ("Swing", "Biking")


def _synth(out: Path, seed: int, groups: int) -> Path:
    result = har(
        "synth-data", "--out", str(out), "--classes", ",".join(CLASSES), "--groups", str(groups),
        "--clips-per-group", "2", "--seed", str(seed),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return out


def _options(data: Path, out: Path, extra: Path) -> TrainOptions:
    return TrainOptions(
        data_dir=data,
        out_dir=out,
        classes=CLASSES,
        epochs=1,
        sequence_length=6,  # small windows: what reaches training is the question, not accuracy
        frame_size=32,
        extra_train_dir=extra,
        verbose=0,
        export_tflite=False,  # not what this test is about, and the slowest step left
    )


def test_extra_clips_only_train_and_leave_the_split_as_it_was(tmp_path: Path) -> None:
    data = _synth(tmp_path / "data", seed=1, groups=4)
    extra = _synth(tmp_path / "extra", seed=2, groups=1)
    # The same UCF group names as --data: a group on both sides would leak; refused.
    with pytest.raises(DataError, match="also in the split data"):
        train(_options(data, tmp_path / "m0", extra))
    assert not (tmp_path / "m0").exists()
    # Renamed, each extra clip is a group of its own.
    extra_names = set()
    for p in sorted(extra.rglob("*.avi")):
        p.rename(p.with_name(f"extra_{p.stem}.avi"))
        extra_names.add(f"extra_{p.stem}.avi")
    assert len(extra_names) == 4
    (extra / "Unknown").mkdir()
    (extra / "Unknown" / "x.avi").write_bytes(b"")
    with pytest.raises(DataError, match="Unknown"):
        train(_options(data, tmp_path / "m1", extra))
    (extra / "Unknown" / "x.avi").unlink()
    (extra / "Unknown").rmdir()

    result = train(_options(data, tmp_path / "with", extra))
    t = json.loads((tmp_path / "with" / "model.json").read_text())["training"]
    # The split train makes without extra clips: test first, then validation from the rest.
    records = scan_dataset(data, CLASSES)
    pool, test = group_split(records, test_fraction=0.2, seed=0)
    fit, val = group_split(pool, test_fraction=0.2, seed=1)

    def names(recs: list) -> list[str]:  # type: ignore[type-arg]
        return sorted(r.path.relative_to(data).as_posix() for r in recs)

    assert t["test_clips"] == names(test) and t["validation_clips"] == names(val)
    assert t["clips"]["train"] == len(fit) + 4
    assert t["extra_train"] == {
        "data_dir": str(extra),
        "clips": 4,
        "groups": {f"{c}/{Path(n).stem}": 1 for n in extra_names for c in CLASSES if c in n},
    }
    assert sorted(result.test_clips) == names(test)
    assert not {Path(c).name for c in t["test_clips"] + t["validation_clips"]} & extra_names
