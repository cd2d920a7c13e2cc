"""scripts/appearance_model/reference.py's reader of PyTorch's legacy .pt format, on files written
here in that format (torch is not installed: stand-in `torch` modules give pickle the globals a
real file names), so the conversion's first step is held to the format without the weights."""

from __future__ import annotations

import collections
import os
import pickle
import struct
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from scripts.appearance_model import reference as ref


class _Storage:
    def __init__(self, key: str, data: np.ndarray) -> None:
        self.key, self.data = key, data


def _fake_torch(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    torch, utils = types.ModuleType("torch"), types.ModuleType("torch._utils")
    storage_types = {}
    for name in ("FloatStorage", "LongStorage"):
        cls = type(name, (), {"__module__": "torch"})
        setattr(torch, name, cls)
        storage_types[name] = cls

    def _rebuild_tensor_v2(*args):  # only its name travels
        raise AssertionError("never called while writing")

    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = (
        "torch._utils",
        "_rebuild_tensor_v2",
    )
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return types.SimpleNamespace(rebuild=_rebuild_tensor_v2, **storage_types)


def _write_legacy(path: Path, torch, state: dict, storages: list[_Storage]) -> None:
    class Tensor:
        def __init__(self, storage, offset, size, stride):
            self.args = (storage, offset, size, stride, False, collections.OrderedDict())

        def __reduce__(self):
            return torch.rebuild, self.args

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, _Storage):
                kind = torch.LongStorage if obj.data.dtype == np.int64 else torch.FloatStorage
                return ("storage", kind, obj.key, "cpu", obj.data.size, None)
            return None

    od = collections.OrderedDict((k, Tensor(*v)) for k, v in state.items())
    with open(path, "wb") as f:
        pickle.dump(ref.LEGACY_MAGIC, f, protocol=2)
        pickle.dump(1001, f, protocol=2)
        pickle.dump({"protocol_version": 1001, "little_endian": True}, f, protocol=2)
        Pickler(f, protocol=2).dump(od)
        pickle.dump([s.key for s in storages], f, protocol=2)
        for s in storages:
            f.write(
                struct.pack("<q", s.data.size)
                + s.data.astype(s.data.dtype.newbyteorder("<")).tobytes()
            )


def test_tensors_come_back_with_their_offsets_strides_and_dtypes(tmp_path, monkeypatch):
    torch = _fake_torch(monkeypatch)
    flat = np.arange(30, dtype=np.float32) * 0.5
    a, b = _Storage("0", flat), _Storage("1", np.array([7], np.int64))
    state = {
        "conv.weight": (a, 0, (2, 3, 2), (6, 2, 1)),  # contiguous
        "conv.transposed": (a, 12, (3, 2), (1, 3)),  # a strided view at an offset, shared storage
        "bn.num_batches_tracked": (b, 0, (), ()),
    }
    _write_legacy(tmp_path / "w.pt", torch, state, [a, b])
    got = ref.load_legacy_pt(tmp_path / "w.pt")
    assert list(got) == list(state)
    np.testing.assert_array_equal(got["conv.weight"], flat[:12].reshape(2, 3, 2))
    np.testing.assert_array_equal(got["conv.transposed"], flat[12:18].reshape(2, 3).T)
    assert got["conv.weight"].dtype == np.float32
    assert got["bn.num_batches_tracked"].shape == () and got["bn.num_batches_tracked"] == 7


def test_a_file_that_names_any_other_global_is_refused(tmp_path, monkeypatch):
    _fake_torch(monkeypatch)
    with open(tmp_path / "evil.pt", "wb") as f:
        for obj in (ref.LEGACY_MAGIC, 1001, {"little_endian": True}, {"x": os.system}):
            pickle.dump(obj, f, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="unexpected global posix.system"):
        ref.load_legacy_pt(tmp_path / "evil.pt")


def test_a_zip_format_file_is_not_taken_for_a_legacy_one(tmp_path):
    (tmp_path / "new.pt").write_bytes(b"PK\x03\x04" + bytes(60))
    with pytest.raises(pickle.UnpicklingError):
        ref.load_legacy_pt(tmp_path / "new.pt")
