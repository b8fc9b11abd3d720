"""Shared test helpers: the shipped stack files and their settings, to vary in tests."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
STACK_FILES = sorted((REPO_ROOT / "stacks").glob("Pulumi.*.yaml"))
STACK_NAMES = [p.name.split(".")[1] for p in STACK_FILES]


def stack_settings(name: str) -> dict[str, Any]:
    """The raw ``slm-platform:settings`` object of a shipped stack file."""
    doc = yaml.safe_load((REPO_ROOT / "stacks" / f"Pulumi.{name}.yaml").read_text())
    return copy.deepcopy(doc["config"]["slm-platform:settings"])


def write_stack(tmp_path: Path, settings: dict[str, Any], name: str = "test") -> Path:
    """Write a stack file holding ``settings`` and return its path."""
    path = tmp_path / f"Pulumi.{name}.yaml"
    path.write_text(yaml.safe_dump({"config": {"slm-platform:settings": settings}}, sort_keys=False))
    return path
