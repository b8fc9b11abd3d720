"""docs/adding-an-environment.md, followed as written on a copy of the repository, ends in a plan and gate that pass.

The guide's YAML snippets are the fixtures: read from the Markdown and pasted where the guide says;
prose steps are done the way the guide words them (see tests/guide_support.py).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from guide_support import DOCS, assert_plan_and_gate_pass, repo_copy, yaml_snippets

pytestmark = pytest.mark.slow


def _add_to_flow_list(text: str, line_start: str, before: str, new: str) -> str:
    """``stack: [dev, staging, prod]`` -> ``stack: [dev, staging, qa, prod]`` (the guide's 'add qa to')."""
    pattern = re.compile(rf"^(\s*{re.escape(line_start)}\s*\[)([^\]]*)\]", re.M)

    def add(m: re.Match[str]) -> str:
        items = [i.strip() for i in m[2].split(",")]
        items.insert(items.index(before), new)
        return f"{m[1]}{', '.join(items)}]"

    out, n = pattern.subn(add, text)
    if not n:  # a matrix `include:` list, one entry per stack with its deploy runner label
        return _add_include_entry(text, before, new)
    return out


def _add_include_entry(text: str, before: str, new: str) -> str:
    """A matrix ``include:`` list, one entry per stack with its deploy runner label: add ``new`` before ``before``."""
    entry = re.compile(rf"^(?P<i>\s*)- stack: {before}\n(?P<j>\s*)runner: slm-deploy-{before}\n", re.M)
    out, n = entry.subn(lambda m: f"{m['i']}- stack: {new}\n{m['j']}runner: slm-deploy-{new}\n{m[0]}", text)
    assert n, f"no include entry for {before} to add {new} before"
    return out


def test_adding_an_environment_as_written(tmp_path: Path) -> None:
    copy = repo_copy(tmp_path)
    guide = (DOCS / "adding-an-environment.md").read_text()
    # 1. the stack file: a copy of staging with its own name_prefix and tags
    assert "Copy the nearest one (`staging`" in guide
    text = (copy / "stacks" / "Pulumi.staging.yaml").read_text().replace("name_prefix: slmstg", "name_prefix: slmqa")
    # ... whose in-VNet runner takes its label from the stack name: no label step, no YAML snippet to paste
    assert "the label `slm-deploy-qa`" in guide
    assert yaml_snippets("adding-an-environment.md") == []
    assert "label:" not in text
    (copy / "stacks" / "Pulumi.qa.yaml").write_text(text)
    # 2. its policy levels, and its environment
    shutil.copy(copy / "policies" / "config" / "staging.json", copy / "policies" / "config" / "qa.json")
    assert "policies/environments.json" in guide
    environments = (copy / "policies" / "environments.json").read_text()
    (copy / "policies" / "environments.json").write_text(environments.replace('"stacks": {', '"stacks": {\n    "qa": "staging",', 1))
    # 3. the workflows
    workflows = copy / ".github" / "workflows"
    pr = (workflows / "pr.yml").read_text()
    pr = _add_to_flow_list(pr, "stack:", "prod", "qa")  # the gate matrix
    pr = _add_include_entry(pr, "prod", "qa")  # the preview matrix: qa lives in Azure
    (workflows / "pr.yml").write_text(pr)
    drift = _add_to_flow_list((workflows / "drift.yml").read_text(), "stack:", "prod", "qa")
    (workflows / "drift.yml").write_text(drift)
    assert "`.github/actionlint.yaml`: add `slm-deploy-qa`" in guide
    lint = copy / ".github" / "actionlint.yaml"
    lint.write_text(lint.read_text().replace("    - slm-deploy-prod\n", "    - slm-deploy-prod\n    - slm-deploy-qa\n", 1))
    deploy = (workflows / "deploy.yml").read_text()
    # staging's jobs (its runner bootstrap, if any, and its up) copied for qa, chained between staging and prod
    first = "  bootstrap-staging:\n" if "  bootstrap-staging:\n" in deploy else "  up-staging:\n"
    after = "  bootstrap-prod:\n" if "  bootstrap-prod:\n" in deploy else "  up-prod:\n"
    block = deploy[deploy.index(first):deploy.index(after)]
    qa = block.replace("staging", "qa")
    qa = qa.replace("needs: up-dev", "needs: up-staging", 1)
    deploy = deploy.replace(block, block + qa)
    tail_start = deploy.index(after)
    deploy = deploy[:tail_start] + deploy[tail_start:].replace("needs: up-staging", "needs: up-qa", 1)
    deploy = deploy.replace("for stack in dev staging prod", "for stack in dev staging qa prod")
    (workflows / "deploy.yml").write_text(deploy)
    # check it offline, as the guide says: plan, gate, and the tests that hold the stacks together
    assert_plan_and_gate_pass(copy, "qa")
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:xdist", "-q", "-p", "no:cacheprovider",
         "tests/workflows/test_workflows.py", "tests/stacks/test_settings.py", "tests/stacks/test_schema.py",
         "tests/docs/test_docs_commands.py", "-k",
         "not documented_gate_command and not actionlint_script and not zizmor_flags and not TestChecker"],
        cwd=copy, capture_output=True, text=True, timeout=900, check=False)
    assert tests.returncode == 0, tests.stdout[-6000:]
