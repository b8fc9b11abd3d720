"""Issue 12.1: the environment (and so the policy levels) comes from the stack, never from its file.

CI runs ``pulumi preview --stack prod --policy-pack-config policies/config/prod.json``; the pack under
the engine sees only ``PULUMI_STACK``. A ``Pulumi.prod.yaml`` saying ``tier: staging`` used to get
staging levels offline. Each variant below fails on the old code (tier-derived levels).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from google.protobuf import empty_pb2
from pulumi.runtime.proto import analyzer_pb2

from policies import environments
from policies.environments import config_path_for_stack, environment_of_stack
from policies.pack import environment_for_stack
from slmctl.gate import PackProcess, run_gate
from slmctl.loader import StackFileError, load_stack_file
from slmctl.recorder import record

REPO_ROOT = Path(__file__).resolve().parents[2]
SETTINGS = "slm-platform:settings"


def _copy(tmp_path: Path, source: str, name: str, tier: str) -> Path:
    doc = yaml.safe_load((REPO_ROOT / "stacks" / f"Pulumi.{source}.yaml").read_text(encoding="utf-8"))
    doc["config"][SETTINGS]["tier"] = tier
    path = tmp_path / f"Pulumi.{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


@pytest.mark.parametrize(("stack", "tier"), [("prod", "staging"), ("prod", "local"), ("prod", "dev"),
                                             ("staging", "dev"), ("dev", "local"), ("perf", "prod")])
def test_a_tier_that_does_not_match_the_stack_is_refused(tmp_path: Path, stack: str, tier: str) -> None:
    source = tier if tier != "prod" else "prod"
    path = _copy(tmp_path, source, stack, tier)
    with pytest.raises(StackFileError) as err:
        load_stack_file(path)
    (problem,) = err.value.problems
    env = environment_of_stack(stack)
    assert f"settings.tier: found {tier!r} but stack {stack!r} is the {env!r} environment" in problem
    assert problem.startswith(f"{path}:6: ") or ":" in problem.split(" ")[0]


def test_the_cli_gate_refuses_a_self_declared_lower_tier_with_exit_2(tmp_path: Path) -> None:
    path = _copy(tmp_path, "staging", "prod", "staging")
    result = subprocess.run([sys.executable, "-m", "slmctl", "gate", "--stack-file", str(path)], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "is the 'prod' environment" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_mapped_stack_uses_its_mapped_environment(tmp_path: Path) -> None:
    assert environments.stack_mapping()["perf"] == "staging"
    loaded = load_stack_file(_copy(tmp_path, "staging", "perf", "staging"))
    assert loaded.settings.tier == "staging"
    assert environment_of_stack("perf") == "staging"
    assert config_path_for_stack("perf").name == "staging.json"


@pytest.mark.parametrize("stack", ["feature-x", "prod-weu", "organization/slm-platform/my-test", ""])
def test_an_unknown_stack_is_gated_at_prod_levels(stack: str) -> None:
    assert environment_of_stack(stack) == "prod"
    assert config_path_for_stack(stack).name == "prod.json"


def test_the_pack_ignores_the_tier_in_the_stack_config() -> None:
    assert environment_for_stack("organization/slm-platform/prod") == "prod"
    assert environment_for_stack("staging") == "staging"


def test_the_pack_under_the_engine_takes_prod_levels_from_pulumi_stack_even_if_the_tier_says_local() -> None:
    config = {SETTINGS: json.dumps({"tier": "local"})}
    with PackProcess(project="slm-platform", stack="organization/slm-platform/prod", config=config) as pack:
        info = pack.stub.GetAnalyzerInfo(empty_pb2.Empty(), timeout=60)
    assert info.initialConfig["slm-storage-no-public-blob"].enforcementLevel == analyzer_pb2.MANDATORY
    assert info.initialConfig["slm-aks-api-server-access"].enforcementLevel == analyzer_pb2.MANDATORY


def _public_blob() -> None:
    from pulumi_azure_native import storage

    storage.StorageAccount("st", account_name="st", resource_group_name="rg", kind="StorageV2", sku={"name": "Standard_ZRS"},
                           allow_blob_public_access=True,
                           enable_https_traffic_only=True, minimum_tls_version="TLS1_2")


def test_the_offline_gate_derives_levels_from_the_recorded_stack() -> None:
    result = run_gate(record(_public_blob, stack="prod"))
    assert result.environment == "prod"
    assert any(v.policy == "slm-storage-no-public-blob" and v.level == "mandatory" for v in result.violations)
    unknown = run_gate(record(_public_blob, stack="feature-x"))
    assert unknown.environment == "prod"
    assert unknown.exit_code == 1


def test_the_offline_gate_uses_config_for_the_stack_when_it_exists(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """What ``--policy-pack-config policies/config/<stack>.json`` would use: here a per-stack file that
    keeps the policy mandatory but exempts the one resource, with its reason."""
    prod = json.loads((REPO_ROOT / "policies" / "config" / "prod.json").read_text(encoding="utf-8"))
    prod["slm-storage-no-public-blob"] = {"enforcementLevel": "mandatory", "exempt": [
        {"pattern": "st", "reason": "public test fixture container, ticket SEC-1"}]}
    (tmp_path / "prod-weu.json").write_text(json.dumps(prod), encoding="utf-8")
    monkeypatch.setattr(environments, "CONFIG_DIR", tmp_path)
    assert config_path_for_stack("prod-weu") == tmp_path / "prod-weu.json"
    result = run_gate(record(_public_blob, stack="prod-weu"))
    assert not any(v.policy == "slm-storage-no-public-blob" for v in result.violations)
    assert [e.resource for e in result.exemptions] == ["st"]


def test_codeowners_protect_the_gate_levels_and_the_environment_mapping() -> None:
    lines = [line.split() for line in (REPO_ROOT / ".github" / "CODEOWNERS").read_text(encoding="utf-8").splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    owned = {parts[0]: parts[1:] for parts in lines}
    for path in ("/policies/", "/policies/config/prod.json", "/policies/environments.json", "/.github/CODEOWNERS"):
        assert owned.get(path), path
        assert all(owner.startswith("@") for owner in owned[path])
