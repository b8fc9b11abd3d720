"""Settings: tier defaults, and every class of bad input gives one clear line per problem."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from stack_support import REPO_ROOT, STACK_NAMES, stack_settings, write_stack

from slmctl.loader import StackFileError, load_stack_file
from stacks.settings import TIER_DEFAULTS, EnvironmentSettings


@pytest.fixture
def dev_settings() -> dict[str, Any]:
    """A mutable copy of the dev stack's settings."""
    return stack_settings("dev")


def problems(tmp_path: Path, settings: dict[str, Any]) -> list[str]:
    with pytest.raises(StackFileError) as info:
        load_stack_file(write_stack(tmp_path, settings))
    return info.value.problems


class TestShippedStacks:
    @pytest.mark.parametrize("name", STACK_NAMES)
    def test_stack_file_validates(self, name: str) -> None:
        loaded = load_stack_file(REPO_ROOT / "stacks" / f"Pulumi.{name}.yaml")
        assert loaded.settings.tier in TIER_DEFAULTS  # an environment reuses a tier (adding-an-environment.md)
        assert loaded.stack == name

    def test_every_tier_has_a_shipped_stack(self) -> None:
        tiers = {load_stack_file(REPO_ROOT / "stacks" / f"Pulumi.{n}.yaml").settings.tier for n in STACK_NAMES}
        assert tiers == set(TIER_DEFAULTS)

    def test_secrets_are_never_read_from_the_file_in_plain_text(self) -> None:
        loaded = load_stack_file(REPO_ROOT / "stacks" / "Pulumi.dev.yaml")
        assert "slm-platform:engineApiKey" in loaded.secret_keys
        assert "slm-platform:engineApiKey" in loaded.placeholder_secrets


class TestTierDefaults:
    def test_prod_locks_and_keeps_the_api_server_private(self) -> None:
        prod = EnvironmentSettings.model_validate(stack_settings("prod"))
        assert prod.lock == "CanNotDelete"
        assert prod.cluster.private_api_server is True
        assert prod.cluster.system_pool.zones == ("1", "2", "3")
        assert prod.monitoring.mode == "azure-managed"

    def test_dev_scales_to_zero_and_has_no_lock(self) -> None:
        dev = EnvironmentSettings.model_validate(stack_settings("dev"))
        assert dev.lock is None
        assert dev.replicas.min == 0
        assert dev.cluster.pools["gput4"].spot is True

    def test_a_stack_value_overrides_the_tier_default(self, dev_settings: dict[str, Any]) -> None:
        dev_settings["monitoring"] = {"retention_days": 60}
        dev = EnvironmentSettings.model_validate(dev_settings)
        assert dev.monitoring.retention_days == 60
        assert dev.monitoring.mode == "in-cluster"  # the rest of the tier default survives

    def test_family_parser_is_the_default_tool_call_parser(self) -> None:
        prod = EnvironmentSettings.model_validate(stack_settings("prod"))
        assert prod.models["phi-4-mini"].resolved_tool_call_parser == "phi4_mini_json"
        assert prod.models["qwen3-8b"].resolved_tool_call_parser == "hermes"
        assert prod.models["gemma-3-4b"].resolved_tool_call_parser == "pythonic"


class TestErrors:
    def test_unknown_key_names_its_path(self, tmp_path: Path, dev_settings: dict[str, Any]) -> None:
        dev_settings["cluster"]["pools"]["gput4"]["colour"] = "blue"
        (line,) = problems(tmp_path, dev_settings)
        assert "settings.cluster.pools.gput4.colour: unknown key" in line
        assert "'blue'" in line

    def test_wrong_type_shows_the_value(self, tmp_path: Path, dev_settings: dict[str, Any]) -> None:
        dev_settings["cluster"]["pools"]["gput4"]["max_count"] = "lots"
        (line,) = problems(tmp_path, dev_settings)
        assert "settings.cluster.pools.gput4.max_count" in line
        assert "'lots'" in line

    def test_invalid_enum_lists_the_allowed_values(self, tmp_path: Path, dev_settings: dict[str, Any]) -> None:
        dev_settings["cluster"]["pools"]["gput4"]["vm_size"] = "Standard_NC4as_T9"
        (line,) = problems(tmp_path, dev_settings)
        assert "vm_size" in line
        assert "Standard_NC4as_T4_v3" in line
        assert "'Standard_NC4as_T9'" in line

    def test_deployment_of_a_model_not_in_the_catalogue(self, tmp_path: Path,
                                                        dev_settings: dict[str, Any]) -> None:
        dev_settings["deployments"]["phi-4-mini"]["model"] = "phi-5"
        (line,) = problems(tmp_path, dev_settings)
        assert "deployments.phi-4-mini.model: 'phi-5' is not in the catalogue; use one of: phi-4-mini" in line

    def test_duplicate_names_are_refused_not_overwritten(self, tmp_path: Path) -> None:
        text = (REPO_ROOT / "stacks" / "Pulumi.dev.yaml").read_text()
        path = tmp_path / "Pulumi.dup.yaml"
        path.write_text(text.replace("      phi-4-mini-managed:", "      phi-4-mini:"))
        with pytest.raises(StackFileError) as info:
            load_stack_file(path)
        (line,) = info.value.problems
        assert "duplicate key 'phi-4-mini'" in line
        assert "first at line" in line

    def test_gpu_pool_too_small_for_the_model_says_what_to_lower(self, tmp_path: Path,
                                                                 dev_settings: dict[str, Any]) -> None:
        dev_settings["deployments"]["phi-4-mini"]["max_model_len_tokens"] = 131072
        (line,) = problems(tmp_path, dev_settings)
        assert "does not fit one T4 (16 GiB)" in line
        assert "lower it to at most" in line
        assert "Standard_NC24ads_A100_v4" in line

    def test_vllm_on_a_cpu_pool_is_refused(self, tmp_path: Path, dev_settings: dict[str, Any]) -> None:
        dev_settings["cluster"]["pools"]["cpu"] = {"vm_size": "Standard_D8ds_v5", "max_count": 2}
        dev_settings["deployments"]["phi-4-mini"]["pool"] = "cpu"
        (line,) = problems(tmp_path, dev_settings)
        assert "CUDA-only (seed defect D3)" in line

    def test_api_server_open_to_the_internet_is_refused(self, tmp_path: Path,
                                                        dev_settings: dict[str, Any]) -> None:
        dev_settings["cluster"]["authorized_ip_ranges"] = ["0.0.0.0/0"]
        (line,) = problems(tmp_path, dev_settings)
        assert "opens the API server to the internet" in line

    def test_public_api_server_needs_authorized_ranges(self, tmp_path: Path,
                                                       dev_settings: dict[str, Any]) -> None:
        dev_settings["cluster"].pop("authorized_ip_ranges")
        (line,) = problems(tmp_path, dev_settings)
        assert "cluster.authorized_ip_ranges: empty on a public API server" in line

    def test_prod_requires_digest_pinned_images(self, tmp_path: Path) -> None:
        prod = stack_settings("prod")
        prod["deployments"]["qwen3-8b"]["image"] = "vllm/vllm-openai:latest"
        (line,) = problems(tmp_path, prod)
        assert "deployments.qwen3-8b.image" in line
        assert "not pinned by digest" in line

    @staticmethod
    def _only_problem(path: Path, text: str) -> str:
        path.write_text(text)
        with pytest.raises(StackFileError) as info:
            load_stack_file(path)
        (line,) = info.value.problems
        return line

    def test_yaml_syntax_error_names_the_line(self, tmp_path: Path) -> None:
        path = tmp_path / "Pulumi.broken.yaml"
        line = self._only_problem(path, "config:\n  slm-platform:settings:\n    tier: [dev\n")
        assert line.startswith(f"{path}:")
        assert "YAML error" in line

    def test_a_tab_indent_is_named_as_the_fix(self, tmp_path: Path) -> None:
        path = tmp_path / "Pulumi.tabbed.yaml"
        line = self._only_problem(path, "config:\n\tslm-platform:settings: {}\n")
        assert line.startswith(f"{path}:2: YAML error: ")
        assert "the line holds a tab: YAML indents with spaces only" in line

    def test_missing_stack_file_lists_the_shipped_stacks(self, tmp_path: Path) -> None:
        with pytest.raises(StackFileError) as info:
            load_stack_file(tmp_path / "Pulumi.nope.yaml")
        assert ", ".join(STACK_NAMES) in info.value.problems[0]

    def test_several_problems_give_one_line_each(self, tmp_path: Path, dev_settings: dict[str, Any]) -> None:
        dev_settings["tags"]["cost_center"] = "4711"
        dev_settings["cluster"]["pools"]["gput4"]["colour"] = "blue"
        lines = problems(tmp_path, dev_settings)
        assert len(lines) == 2
        assert all("\n" not in line for line in lines)


class TestCommandLine:
    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "slmctl", *args], cwd=REPO_ROOT,
                              capture_output=True, text=True, timeout=120, check=False)

    def test_bad_stack_file_exits_2_without_a_traceback(self, tmp_path: Path,
                                                        dev_settings: dict[str, Any]) -> None:
        dev_settings["deployments"]["phi-4-mini"]["model"] = "phi-5"
        result = self.run("plan", "--stack-file", str(write_stack(tmp_path, dev_settings)))
        assert result.returncode == 2
        assert "Traceback" not in result.stderr + result.stdout
        assert "deployments.phi-4-mini.model: 'phi-5'" in result.stderr

    def test_unknown_stack_exits_2(self) -> None:
        result = self.run("plan", "nope")
        assert result.returncode == 2
        assert "stack file not found" in result.stderr


class TestDeployer:
    def test_shipped_azure_stacks_deploy_from_their_in_vnet_runner_and_local_from_the_workstation(self) -> None:
        for name in ("dev", "staging", "prod"):
            settings = EnvironmentSettings.model_validate(stack_settings(name))
            assert settings.deployer.location == "in-vnet-runner"
            assert settings.deploy_runner_label(name) == f"slm-deploy-{name}"
        assert EnvironmentSettings.model_validate(stack_settings("local")).deployer.location == "workstation"

    def test_the_default_runner_label_is_the_stacks_not_the_tiers(self) -> None:
        # a qa stack on the staging tier must not register (and be picked by) staging's label
        staging = EnvironmentSettings.model_validate(stack_settings("staging"))
        assert staging.deploy_runner_label("qa") == "slm-deploy-qa"
        raw = stack_settings("staging")
        raw["deployer"]["runner"]["label"] = "slm-deploy-qa-vnet"
        assert EnvironmentSettings.model_validate(raw).deploy_runner_label("qa") == "slm-deploy-qa-vnet"

    def test_the_runner_subnet_defaults_to_the_27_after_the_private_endpoint_subnet(self) -> None:
        staging = EnvironmentSettings.model_validate(stack_settings("staging"))
        assert staging.deploy_runner_subnet_cidr() == "10.41.17.0/27"
        assert staging.deployer_principal_type == "ServicePrincipal"

    def test_in_vnet_runner_without_runner_settings_names_what_to_set(self, tmp_path: Path, dev_settings: dict[str, Any]) -> None:
        settings = dev_settings
        del settings["deployer"]["runner"]
        (problem,) = problems(tmp_path, settings)
        assert "deployer.runner: required when deployer.location is 'in-vnet-runner'" in problem
        assert "github_app_installation_id" in problem

    def test_runner_settings_with_a_hosted_location_are_refused(self, tmp_path: Path, dev_settings: dict[str, Any]) -> None:
        settings = dev_settings
        settings["deployer"]["location"] = "github-hosted"
        (problem,) = problems(tmp_path, settings)
        assert "deployer.runner: set, but deployer.location is 'github-hosted'" in problem

    @pytest.mark.parametrize(("cidr", "expected"), [
        ("10.99.0.0/27", "is not inside network.vnet_cidr=10.40.0.0/16"),
        ("10.40.16.0/27", "overlaps network.private_endpoint_subnet_cidr=10.40.16.0/24"),
    ])
    def test_runner_subnet_must_be_free_and_inside_the_vnet(self, tmp_path: Path, dev_settings: dict[str, Any], cidr: str,
                                                      expected: str) -> None:
        settings = dev_settings
        settings["deployer"]["runner"]["subnet_cidr"] = cidr
        (problem,) = problems(tmp_path, settings)
        assert f"deployer.runner.subnet_cidr: {cidr}" in problem
        assert expected in problem

    def test_egress_cidrs_must_be_public_ranges(self, tmp_path: Path, dev_settings: dict[str, Any]) -> None:
        settings = dev_settings
        settings["deployer"] = {"location": "workstation", "egress_cidrs": ["10.0.0.0/8"]}
        (problem,) = problems(tmp_path, settings)
        assert "deployer.egress_cidrs: '10.0.0.0/8' must be a public IPv4 range" in problem

    def test_local_cannot_use_an_in_vnet_runner(self) -> None:
        settings = stack_settings("local")
        settings["deployer"] = stack_settings("dev")["deployer"]
        with pytest.raises(ValueError, match="the local tier has none"):
            EnvironmentSettings.model_validate(settings)
