"""Where the bundled models live, in a checkout and in an installed wheel alike.

A wheel carries the repository's `models/` as `har_daemon/bundled_models/` (see pyproject's
package-dir mapping); a checkout or an editable install reads `models/` beside the package.
Every default that names a bundled model or clip is built here, once.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent
BUNDLED_PREFIX = "models"
"""How configs and commands name a bundled model: `models/fight`, `models/demo`."""


def bundled_models_dir() -> Path:
    """The folder holding the bundled model directories."""
    inside = PACKAGE_DIR / "bundled_models"
    return inside if inside.is_dir() else PACKAGE_DIR.parent / BUNDLED_PREFIX


def bundled(relative: str | Path) -> Path:
    """A bundled file or folder, named as in the repository: `bundled("models/demo")`."""
    parts = Path(relative).parts
    if parts and parts[0] == BUNDLED_PREFIX:
        parts = parts[1:]
    return bundled_models_dir().joinpath(*parts)


DEMO_MODEL_DIR = bundled("models/demo")
DEMO_CLIP = DEMO_MODEL_DIR / "sample.mp4"
