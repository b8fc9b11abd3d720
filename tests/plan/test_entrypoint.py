"""The real entry point (`__main__.py`, what `pulumi up` runs) works under the engine's config contract."""

from __future__ import annotations

import json
import runpy

import pytest
import yaml
from stack_support import REPO_ROOT

from slmctl.loader import go_json, load_stack_file
from slmctl.recorder import record


def test_project_file_points_pulumi_at_the_stacks_directory() -> None:
    project = yaml.safe_load((REPO_ROOT / "Pulumi.yaml").read_text())
    assert project["name"] == "slm-platform"
    assert project["runtime"] == {"name": "python", "options": {"toolchain": "pip", "virtualenv": ".venv"}}
    assert project["stackConfigDir"] == "stacks"


def test_main_program_builds_the_same_resources_as_slmctl_plan() -> None:
    from slmctl.plan import make_plan

    loaded = load_stack_file(REPO_ROOT / "stacks" / "Pulumi.dev.yaml")
    via_main = record(lambda: runpy.run_path(str(REPO_ROOT / "__main__.py")), stack="dev",
                      config=loaded.config, secret_keys=loaded.secret_keys)
    assert [r.urn for r in via_main.registrations] == [r.urn for r in make_plan(loaded).recording.registrations]
    assert via_main.outputs["estimated_monthly_usd"] > 0


def test_main_program_refuses_bad_settings_naming_the_yaml_path() -> None:
    loaded = load_stack_file(REPO_ROOT / "stacks" / "Pulumi.dev.yaml")
    config = dict(loaded.config)
    settings = json.loads(config["slm-platform:settings"])
    settings["deployments"]["phi-4-mini"]["model"] = "phi-5"
    config["slm-platform:settings"] = go_json(settings)
    with pytest.raises(Exception, match=r"deployments\.phi-4-mini\.model: 'phi-5' is not in the catalogue"):
        record(lambda: runpy.run_path(str(REPO_ROOT / "__main__.py")), stack="dev", config=config,
               secret_keys=loaded.secret_keys)
