"""The paper's architectures."""

from __future__ import annotations

import numpy as np
import pytest

from har_daemon.model.keras.arch import build_convlstm, build_lrcn, build_model


def test_convlstm_has_the_papers_parameter_count() -> None:
    model = build_convlstm(num_classes=4)
    assert model.count_params() == 44_524
    assert tuple(model.input_shape) == (None, 20, 64, 64, 3)
    assert tuple(model.output_shape) == (None, 4)


def test_convlstm_layers_follow_the_paper() -> None:
    model = build_convlstm(num_classes=4)
    convs = [layer for layer in model.layers if type(layer).__name__ == "ConvLSTM2D"]
    assert [c.filters for c in convs] == [4, 8, 14, 16]
    assert all(c.kernel_size == (3, 3) for c in convs)
    assert all(c.cell.recurrent_dropout == pytest.approx(0.2) for c in convs)
    assert all(c.return_sequences for c in convs)
    pools = [layer for layer in model.layers if type(layer).__name__ == "MaxPooling3D"]
    assert [p.pool_size for p in pools] == [(1, 2, 2)] * 4
    drops = [layer for layer in model.layers if type(layer).__name__ == "TimeDistributed"]
    assert len(drops) == 3


@pytest.mark.parametrize("arch", ["convlstm", "lrcn"])
def test_outputs_are_probability_distributions(arch: str) -> None:
    model = build_model(arch, num_classes=3)
    x = np.random.default_rng(0).random((2, 20, 64, 64, 3), dtype=np.float32)
    y = np.asarray(model(x, training=False))
    assert y.shape == (2, 3)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, atol=1e-5)
    assert (y >= 0).all()


def test_lrcn_ends_in_lstm() -> None:
    model = build_lrcn(num_classes=4)
    assert any(type(layer).__name__ == "LSTM" for layer in model.layers)


def test_unknown_architecture_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown architecture"):
        build_model("resnet", num_classes=4)
