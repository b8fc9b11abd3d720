"""docs/adding-an-edge-fleet.md, followed as written on a copy of the repository, ends in a plan and gate that pass.

The guide's YAML snippets are the fixtures: read from the Markdown and pasted where the guide says;
prose steps are done the way the guide words them (see tests/guide_support.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from guide_support import (
    REPO_ROOT,
    SETTINGS,
    assert_plan_and_gate_pass,
    paste_into_stack,
    repo_copy,
    slmctl,
    yaml_snippets,
)

pytestmark = pytest.mark.slow


def test_adding_an_edge_fleet_as_written(tmp_path: Path) -> None:
    copy = repo_copy(tmp_path)
    before = yaml.safe_load((REPO_ROOT / "stacks" / "Pulumi.prod.yaml").read_text())["config"][SETTINGS]["edge"]
    for snippet in yaml_snippets("adding-an-edge-fleet.md"):
        paste_into_stack(copy, "prod", snippet)
    after = yaml.safe_load((copy / "stacks" / "Pulumi.prod.yaml").read_text())["config"][SETTINGS]["edge"]
    assert set(after["fleets"]) > set(before["fleets"])  # added beside prod's fleet, not instead of it
    assert_plan_and_gate_pass(copy, "prod")
    rendered = slmctl(copy, "render", "prod", "--quiet")
    assert rendered.returncode == 0, rendered.stderr
    new = (set(after["fleets"]) - set(before["fleets"])).pop()
    assert list((copy / "build" / "prod" / "edge").glob(f"{new}*"))
