"""Bad input names the line, the path, the value and the fix a new user needs (not only pydantic's words)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from stack_support import REPO_ROOT, stack_settings, write_stack

from slmctl.loader import StackFileError, load_stack_file, resolve_stack_path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(StackFileError) as info:
        load_stack_file(path)
    return info.value.problems


def problems(tmp_path: Path, settings: dict[str, Any]) -> list[str]:
    return problems_of(write_stack(tmp_path, settings))


def dev_text_with(old: str, new: str) -> str:
    text = (REPO_ROOT / "stacks" / "Pulumi.dev.yaml").read_text()
    assert old in text
    return text.replace(old, new, 1)


def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), start=1) if needle in line)


class TestDidYouMean:
    def test_a_misspelt_key(self, tmp_path: Path) -> None:
        settings = stack_settings("dev")
        settings["cluster"]["pools"]["gput4"]["vm_sise"] = settings["cluster"]["pools"]["gput4"].pop("vm_size")
        assert any("settings.cluster.pools.gput4.vm_sise: unknown key; did you mean 'vm_size'? (got" in p
                   for p in problems(tmp_path, settings))

    def test_a_misspelt_top_level_key(self, tmp_path: Path) -> None:
        settings = stack_settings("dev")
        settings["modles"] = settings.pop("models")
        assert any("settings.modles: unknown key; did you mean 'models'?" in p for p in problems(tmp_path, settings))

    def test_an_enum_value_in_the_wrong_case(self, tmp_path: Path) -> None:
        settings = stack_settings("dev")
        settings["cluster"]["sku_tier"] = "standard"
        (problem,) = problems(tmp_path, settings)
        assert problem.endswith("settings.cluster.sku_tier: 'standard' is not one of: Free, Standard, Premium; "
                                "did you mean 'Standard'?")

    def test_a_misspelt_target_names_the_target_key(self, tmp_path: Path) -> None:
        settings = stack_settings("dev")
        settings["deployments"]["phi-4-mini"]["target"] = "vlm"
        (problem,) = problems(tmp_path, settings)
        assert "settings.deployments.phi-4-mini.target: 'vlm' is not one of: vllm," in problem
        assert problem.endswith("did you mean 'vllm'?")


class TestYamlTypes:
    def test_unquoted_zones_say_quote_it(self, tmp_path: Path) -> None:
        settings = stack_settings("dev")
        settings["cluster"]["pools"]["gput4"]["zones"] = [1, 2]
        found = problems(tmp_path, settings)
        assert len(found) == 2
        assert "settings.cluster.pools.gput4.zones[0]: 1 is a number in YAML; quote it: '1'" in found[0]

    def test_an_unquoted_kubernetes_version_keeps_what_was_written(self, tmp_path: Path) -> None:
        text = dev_text_with("    cluster:\n", "    cluster:\n      kubernetes_version: 1.30\n")
        path = tmp_path / "Pulumi.kv.yaml"
        path.write_text(text)
        found = [p for p in problems_of(path) if "kubernetes_version" in p]
        assert found, problems_of(path)
        assert found[0].startswith(f"{path}:{line_of(text, 'kubernetes_version: 1.30')}: ")
        assert "YAML reads 1.30 as the number 1.3; quote it: kubernetes_version: '1.30'" in found[0]

    def test_a_numeric_cost_center_says_how_to_write_it(self, tmp_path: Path) -> None:
        settings = stack_settings("dev")
        settings["tags"]["cost_center"] = 4711
        (problem,) = problems(tmp_path, settings)
        assert problem.endswith("e.g. cost_center: cc-4711")

    def test_settings_given_as_a_string(self, tmp_path: Path) -> None:
        path = tmp_path / "Pulumi.str.yaml"
        path.write_text("config:\n  slm-platform:settings: dev\n")
        (problem,) = problems_of(path)
        assert problem.startswith(f"{path}:2: config.slm-platform:settings must be a map of settings")
        assert "'dev'" in problem


class TestTheFix:
    def test_a_branch_as_revision(self, tmp_path: Path) -> None:
        settings = stack_settings("dev")
        settings["models"]["phi-4-mini"]["artifacts"]["safetensors"]["revision"] = "main"
        (problem,) = problems(tmp_path, settings)
        assert "'main' is not a commit; give the 40-hex commit SHA, not a branch or tag" in problem

    def test_missing_models_has_a_line_number(self, tmp_path: Path) -> None:
        settings = stack_settings("dev")
        del settings["models"]
        del settings["deployments"]
        path = write_stack(tmp_path, settings)
        (problem,) = problems_of(path)
        assert problem == f"{path}:2: settings.models: required field is missing; add it"

    def test_a_model_too_big_for_any_context_does_not_say_lower_it_to_0(self, tmp_path: Path) -> None:
        settings = stack_settings("dev")
        settings["models"]["big"] = {**settings["models"]["phi-4-mini"], "parameters_billion": 12.0}
        settings["deployments"]["big"] = {"target": "vllm", "model": "big", "pool": "gput4"}
        (problem,) = [p for p in problems(tmp_path, settings) if "deployments.big" in p]
        assert "at most 0" not in problem
        assert "no context length fits" in problem
        assert "use a GPU that fits" in problem


class TestStackNames:
    def test_a_name_and_a_file_of_another_stack_are_refused(self) -> None:
        with pytest.raises(StackFileError, match=r"stack 'dev' does not match --stack-file .*'prod'"):
            resolve_stack_path("dev", REPO_ROOT / "stacks" / "Pulumi.prod.yaml")

    def test_the_name_of_the_file_itself_is_fine(self) -> None:
        assert resolve_stack_path("prod", REPO_ROOT / "stacks" / "Pulumi.prod.yaml")[0] == "prod"

    def test_a_folder_as_stack_file_is_explained(self) -> None:
        with pytest.raises(StackFileError, match=r"is a folder; pass one stack file such as .*Pulumi\.dev\.yaml"):
            resolve_stack_path(None, REPO_ROOT / "stacks")

    @pytest.mark.parametrize("name", ["my stack:1", "a/b", "x" * 101, "ümlaut"])
    def test_a_name_pulumi_rejects(self, name: str) -> None:
        with pytest.raises(StackFileError, match="not a stack name Pulumi accepts"):
            resolve_stack_path(name, None)

    def test_a_file_whose_name_pulumi_rejects(self, tmp_path: Path) -> None:
        with pytest.raises(StackFileError, match="not a stack name Pulumi accepts"):
            resolve_stack_path(None, tmp_path / "Pulumi.my stack.yaml")

    def test_an_unknown_stack_suggests_the_closest(self) -> None:
        with pytest.raises(StackFileError, match=r"did you mean 'staging'\?"):
            load_stack_file(resolve_stack_path("stagin", None)[1], stack="stagin")
