"""Where the bundled models live, in a checkout and in an installed wheel alike.

`har_daemon/bundled_models` is a symlink to the repository's `models/`; building a wheel copies
the files behind it into the package (pyproject's package-data), so a checkout, an editable
install and an installed wheel all find them at the same place. Every default that names a
bundled model or clip is built here, once.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent
BUNDLED_PREFIX = "models"
"""How configs and commands name a bundled model: `models/fight`, `models/demo`."""


BUNDLED_MODELS_DIR = PACKAGE_DIR / "bundled_models"


def bundled(relative: str | Path) -> Path:
    """A bundled file or folder, named as in the repository: `bundled("models/demo")`."""
    parts = Path(relative).parts
    if parts and parts[0] == BUNDLED_PREFIX:
        parts = parts[1:]
    return BUNDLED_MODELS_DIR.joinpath(*parts)


DEMO_MODEL_DIR = bundled("models/demo")
FIGHT_MODEL_DIR = bundled("models/fight")
DEMO_CLIP = DEMO_MODEL_DIR / "sample.mp4"
