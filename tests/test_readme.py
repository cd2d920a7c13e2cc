"""README's promises: two set-up commands first, and CI runs exactly the test command."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _first_code_block() -> list[str]:
    text = (REPO / "README.md").read_text()
    match = re.search(r"```(?:sh|bash)?\n(.*?)```", text, re.S)
    assert match, "README.md has no code block"
    return [line for line in match.group(1).splitlines() if line.strip()]


def test_readme_opens_with_exactly_two_commands() -> None:
    text = (REPO / "README.md").read_text()
    before = text.split("```", 1)[0]
    assert before.strip().startswith("# "), "nothing but the title before the commands"
    assert len(before.strip().splitlines()) == 1
    commands = _first_code_block()
    assert len(commands) == 2
    assert "har-daemon run" in commands[0]
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    last = [line for line in ci if line.strip() and not line.lstrip().startswith("#")][-1]
    assert last.strip() == _first_code_block()[1].strip()
