"""The house rules the code keeps, checked by tools: import layers, lint, module size.

The import rules live in pyproject.toml ([tool.importlinter]): higher layers import lower ones
only, and the daemon's packages (and the offline replay) never reach TensorFlow, Keras,
matplotlib, jinja2, the training code or the report. Walls are drawn by the tool, so imports
sit at the top of modules: the one import inside a function is the registry's lazy edge to the
Keras backend, which import-linter lists as the exception.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.shared_data import REPO

PACKAGE = REPO / "har_daemon"
VENV_BIN = Path(sys.executable).parent
MAX_LINES = 500
LAZY_IMPORTS_ALLOWED = {("har_daemon/model/registry.py", "har_daemon.model.keras.backend")}


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)


def test_import_contracts_hold() -> None:
    result = _run(str(VENV_BIN / "lint-imports"))
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "broken" in result.stdout and "0 broken" in result.stdout


def test_ruff_is_clean() -> None:
    for cmd in (["check", "."], ["format", "--check", "."]):
        result = _run(str(VENV_BIN / "ruff"), *cmd)
        assert result.returncode == 0, result.stdout[-4000:]


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "bundled_models" not in p.parts)


def test_no_module_over_the_line_limit() -> None:
    long = {
        str(p.relative_to(REPO)): n
        for p in _modules()
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long, long


def test_imports_sit_at_the_top_of_modules() -> None:
    inside: set[tuple[str, str]] = set()
    for path in _modules():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.ImportFrom) and inner.module:
                        inside.add((str(path.relative_to(REPO)), inner.module))
                    elif isinstance(inner, ast.Import):
                        inside |= {(str(path.relative_to(REPO)), a.name) for a in inner.names}
    assert inside == LAZY_IMPORTS_ALLOWED
