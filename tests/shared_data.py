"""Where the checkout and the real data beside it live, and a skip that says why when absent."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]


def load_script(name: str) -> ModuleType:
    """scripts/<name>.py as a module (scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()
TUTORIAL_H5 = SHARED_DATA / "tutorial-models" / "tutorial_convlstm_4class.h5"
TUTORIAL_CLASSES = ("WalkingWithDog", "TaiChi", "Swing", "HorseRace")
FIGHT_DATA = SHARED_DATA / "surveillance-fight"
FALLS_DATA = SHARED_DATA / "falls"


def require(path: Path) -> Path:
    """Skip the calling test, naming the missing path, when the shared data is not here."""
    if not path.exists():
        pytest.skip(f"real data not on this machine: {path} is absent (see shared/data/README.md)")
    return path
