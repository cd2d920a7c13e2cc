"""evaluate --split: the clips model.json lists as held out for test or for validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from har_daemon.core.errors import DataError
from har_daemon.model.meta import ModelMeta
from har_daemon.training.dataset import ClipRecord
from har_daemon.training.evaluate import held_out_records


def _meta(training: dict[str, object]) -> ModelMeta:
    return ModelMeta(
        name="p",
        classes=["fight", "noFight"],
        frame_spacing_s=0.1,
        architecture="lrcn",
        training=training,
    )


def test_each_split_keeps_only_its_own_clips(tmp_path: Path) -> None:
    names = ["fight/a.mp4", "fight/b.mp4", "noFight/c.mp4", "noFight/d.mp4"]
    records = [ClipRecord(tmp_path / n, n.split("/")[0], n) for n in names]
    meta = _meta(
        {"test_clips": ["fight/a.mp4"], "validation_clips": ["fight/b.mp4", "noFight/d.mp4"]}
    )
    test = held_out_records(records, meta, "test", tmp_path, tmp_path)
    validation = held_out_records(records, meta, "validation", tmp_path, tmp_path)
    assert [r.path.name for r in test] == ["a.mp4"]
    assert [r.path.name for r in validation] == ["b.mp4", "d.mp4"]


def test_a_model_without_the_split_is_a_clear_error(tmp_path: Path) -> None:
    meta = _meta({"test_clips": ["fight/a.mp4"]})
    with pytest.raises(DataError, match="lists no held-out validation clips"):
        held_out_records([], meta, "validation", tmp_path, tmp_path / "model")
