"""README's promises: two set-up commands first, and CI runs exactly the test command."""

from __future__ import annotations

import argparse
import json
import re
import tomllib
from pathlib import Path

from har_daemon.cli.parser import build_parser

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


# -- the models table: generated from the model directories' figures -----------------------------

FIGHT_SETTING = "person lrcn, config.example.toml's setting"
"""The event-level run with config.example.toml's alert setting (evaluation.event_level)."""


def models_table_rows() -> list[str]:
    """README's summary rows, from models/*/model.json: no figure is typed in by hand."""
    fight = json.loads((REPO / "models" / "fight" / "model.json").read_text())["evaluation"]
    demo = json.loads((REPO / "models" / "demo" / "model.json").read_text())["evaluation"]
    cv = fight["cross_validation"]
    acc, recall = cv["accuracy"], cv["per_class_recall"]["fight"]
    stream = fight["event_level"]["variants"][FIGHT_SETTING]["pooled"]
    return [
        "| `models/fight` (what `config.example.toml` serves) | fight / no fight on fixed CCTV "
        "cameras, in crops around the people found | "
        f"{cv['folds']}-fold cross-validation on {cv['n_clips']} real clips grouped by source: "
        f"accuracy {acc['mean']:.3f} ± {acc['std']:.3f}, fight recall {recall['mean']:.3f} ± "
        f"{recall['std']:.3f}. Held-out clips joined into streams, the example's settings: "
        f"{stream['detected']} of {stream['intervals']} fights found, "
        f"{stream['false_alerts_per_quiet_hour']:.0f} false alerts per quiet hour, time to alert "
        f"p95 {stream['tta_p95_s']:.2f} s | "
        "misses its targets (0.85 recall, no false alert, alert within 3 s). Vigorous indoor "
        "motion near the camera (sitting or lying down, jumping) raises false alerts; a scene "
        "where the detector finds nobody raises nothing; a fight shorter than one 2 s window "
        "after a scene cut is never seen |",
        "| `models/person` | finds the people the fight model looks at (NanoDet-g, Apache-2.0) "
        "| [models/README.md](models/README.md) | small, crowded and lying people are missed |",
        "| `models/demo` (the default) | the synthetic motions of `har-daemon synth-data` | "
        f"accuracy {demo['accuracy']:.3f} on {demo['n_clips']} held-out synthetic clips | "
        "anything real: it is for trying the daemon and for the tests |",
    ]


def test_the_models_table_is_generated_from_model_json() -> None:
    text = (REPO / "README.md").read_text()
    for row in models_table_rows():
        assert row in text, f"README's models table is stale; expected the row\n{row}"


def test_readme_names_the_supported_python_versions() -> None:
    spec = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    assert spec == ">=3.11,<3.14", "update README's supported versions with requires-python"
    assert "Python 3.11, 3.12 and 3.13 are supported" in (REPO / "README.md").read_text()


# -- the commands and links work -----------------------------------------------------------------


def test_every_command_in_the_readme_table_exists() -> None:
    """`har-daemon <cmd>` rows of the commands table are subcommands of the real parser."""
    text = (REPO / "README.md").read_text()
    named = set(re.findall(r"^\| `har-daemon ([a-z-]+)", text, re.M))
    parser = build_parser()
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    commands = set(actions[0].choices)
    assert named and named <= commands, sorted(named - commands)
    assert commands <= named | {"help"}, f"commands missing from README: {commands - named}"


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to '-'."""
    out = set()
    for heading in re.findall(r"^#+ (.+)$", markdown, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        out.add(slug)
    return out


def test_every_relative_link_in_the_docs_resolves() -> None:
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            path_part, _, anchor = target.partition("#")
            dest = (page.parent / path_part).resolve() if path_part else page
            if not dest.exists():
                broken.append(f"{page.name}: {target}")
                continue
            if anchor and dest.suffix == ".md" and anchor not in _anchors(dest.read_text()):
                broken.append(f"{page.name}: {target} (no such heading)")
    assert not broken, broken


def test_every_docs_page_is_reachable_from_the_readme() -> None:
    """A page nobody links is a page nobody reads: each docs/*.md is linked from the README."""
    readme = (REPO / "README.md").read_text()
    unlinked = [p.name for p in (REPO / "docs").glob("*.md") if f"docs/{p.name}" not in readme]
    assert not unlinked, unlinked
