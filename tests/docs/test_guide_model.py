"""docs/adding-a-model.md, followed as written on a copy of the repository, ends in a plan and gate that pass.

The guide's YAML snippets are the fixtures: read from the Markdown and pasted where the guide says;
prose steps are done the way the guide words them (see tests/guide_support.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from guide_support import (
    DOCS,
    SETTINGS,
    assert_plan_and_gate_pass,
    paste_into_stack,
    repo_copy,
    yaml_snippets,
)

pytestmark = pytest.mark.slow


def test_adding_a_model_as_written(tmp_path: Path) -> None:
    copy = repo_copy(tmp_path)
    guide = (DOCS / "adding-a-model.md").read_text()
    assert "In `stacks/Pulumi.dev.yaml`" in guide
    for snippet in yaml_snippets("adding-a-model.md"):
        paste_into_stack(copy, "dev", snippet)
    settings = yaml.safe_load((copy / "stacks" / "Pulumi.dev.yaml").read_text())["config"][SETTINGS]
    assert "qwen3-8b" in settings["models"]
    assert "qwen3-8b" in settings["deployments"]
    assert_plan_and_gate_pass(copy, "dev")
