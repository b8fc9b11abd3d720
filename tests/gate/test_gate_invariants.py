"""Stack files that break a system invariant fail the real gate (pack over gRPC) naming both ends.

Each case edits the shipped dev stack (one Spot T4 node): a second model on the full pool, or more
replicas than the pool has GPUs. The Spot-taint case cannot be written as a stack file any more (the
components always add the toleration); the gate matrix drives it through the same gRPC path.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from slmctl.gate import GateResult, format_result, run_gate
from slmctl.loader import load_stack_file
from slmctl.plan import record_stack

REPO_ROOT = Path(__file__).resolve().parents[2]
SETTINGS = "slm-platform:settings"
pytestmark = [pytest.mark.slow]


def _gate(tmp_path: Path, edit: dict[str, Any]) -> GateResult:
    doc = yaml.safe_load((REPO_ROOT / "stacks" / "Pulumi.dev.yaml").read_text(encoding="utf-8"))
    settings = doc["config"][SETTINGS]
    for key, value in edit.items():
        settings["deployments"][key] = value
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    loaded = load_stack_file(path)
    return run_gate(record_stack(loaded), environment="dev", stack_file=path)


def _lines(result: GateResult, policy: str) -> list[str]:
    return [f"{v.resource}: {v.detail}" for v in result.mandatory if v.policy == policy]


def test_a_second_model_on_the_full_t4_pool_fails_naming_the_pool_and_both_models(tmp_path: Path) -> None:
    dev = yaml.safe_load((REPO_ROOT / "stacks" / "Pulumi.dev.yaml").read_text(encoding="utf-8"))
    second = copy.deepcopy(dev["config"][SETTINGS]["deployments"]["phi-4-mini"])
    result = _gate(tmp_path, {"phi-4-mini-b": second})
    assert result.exit_code == 1
    (line,) = _lines(result, "slm-gpu-pool-capacity")
    assert line.startswith("serving-gput4: serving-gput4 (azure-native:containerservice:AgentPool): nvidia.com/gpu: "
                           "found 2 GPU needed on pool 'gput4' (serving-gput4) Standard_NC4as_T4_v3 x max 1 = 1 GPU"), \
        format_result(result, "text")
    assert "serving-phi-4-mini-deploy 1 GPU" in line
    assert "serving-phi-4-mini-b-deploy 1 GPU" in line


def test_more_replicas_than_gpus_fails(tmp_path: Path) -> None:
    dev = yaml.safe_load((REPO_ROOT / "stacks" / "Pulumi.dev.yaml").read_text(encoding="utf-8"))
    dep = copy.deepcopy(dev["config"][SETTINGS]["deployments"]["phi-4-mini"])
    dep["replicas"] = {"min": 0, "max": 2}
    result = _gate(tmp_path, {"phi-4-mini": dep})
    (line,) = _lines(result, "slm-gpu-pool-capacity")
    assert "found 2 GPU needed on pool 'gput4'" in line
    assert "serving-phi-4-mini-deploy 2 GPU (max 2 from serving-phi-4-mini-scaler maxReplicaCount x 1 GPU)" in line


def test_the_shipped_dev_stack_keeps_its_one_model_within_the_pool(tmp_path: Path) -> None:
    result = _gate(tmp_path, {})
    assert _lines(result, "slm-gpu-pool-capacity") == []
    assert _lines(result, "slm-gpu-node-agents") == []
    assert _lines(result, "slm-k8s-pod-placement") == []
