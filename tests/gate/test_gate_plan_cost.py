"""One estimate, one source: ``slmctl plan``'s monthly cost is the budget policy's, over the same resources.

Plan used to price the settings' node pools only, so it printed $5,002 for staging while the gate's budget
policy counted $5,157 (the deploy runner's scale set and the AKS tier on top). Each test plans (or records)
a stack, then gates that recording over the analyzer protocol with the stack's generated config, the
headroom warning lowered to 1 % so the pack always prints its total, and compares the two totals.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pulumi
import pytest
from pulumi_azure_native import cognitiveservices, compute, containerinstance, containerservice

from policies.pack import MONTHLY_BUDGET_USD, environment_config
from policies.rules import cost
from slmctl.gate import GateResult, run_gate
from slmctl.loader import REPO_ROOT, load_stack_file
from slmctl.plan import estimate_recording, make_plan
from slmctl.recorder import Recording, record

HEADROOM = "slm-cost-budget-headroom"
RG = "rg-zoo"
TAGS = {"environment": "prod", "owner": "ml@contoso.example", "costCenter": "cc-4711", "workload": "slm-platform"}


def _always_warning(tmp_path: Path, env: str) -> Path:
    """The generated config of ``env`` with the headroom warning from 1 %: the pack then prints its total."""
    config = environment_config(env)
    config[HEADROOM] = {**config[HEADROOM], "warnAtPercent": 1}
    path = tmp_path / f"{env}.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def gate_total(result: GateResult) -> str | None:
    """The total the pack's headroom finding prints (``$5,157``), or None when it printed none."""
    found = [re.search(r"estimated monthly cost: found \$([\d,]+),", v.detail) for v in result.violations
             if v.policy == HEADROOM]
    assert len(found) <= 1
    return found[0].group(1) if found and found[0] else None


@pytest.mark.parametrize("stack", ["local", "dev", "staging", "prod"])
def test_plan_and_gate_print_the_same_total_for_every_shipped_stack(tmp_path: Path, stack: str) -> None:
    path = REPO_ROOT / "stacks" / f"Pulumi.{stack}.yaml"
    plan = make_plan(load_stack_file(path))
    total = plan.document()["estimated_monthly_usd"]
    result = run_gate(plan.recording, config_path=_always_warning(tmp_path, stack), stack_file=path)
    if MONTHLY_BUDGET_USD[stack] == 0:  # local: no Azure resource, no budget, nothing to warn about
        assert total == 0
        assert gate_total(result) is None
        return
    assert gate_total(result) == f"{total:,.0f}"
    items = {line["item"] for line in plan.document()["estimated_monthly_cost"]}
    assert "system pool" in items
    assert "scale set deploy-vmss" in items, "the deploy runner's scale set is part of the estimate"


def _compute_zoo() -> None:
    """Every compute type the pack prices: an AKS pool, GPU scale sets (one under a versioned token), ACI, PTUs."""
    containerservice.AgentPool("gpu-pool", agent_pool_name="gpupool", resource_group_name=RG, resource_name_="aks",
                               vm_size="Standard_NC24ads_A100_v4", mode="User", enable_auto_scaling=True,
                               min_count=0, max_count=2)
    compute.VirtualMachineScaleSet("gpu-vmss", vm_scale_set_name="gpu-vmss", resource_group_name=RG,
                                   location="swedencentral", tags=TAGS,
                                   sku={"name": "Standard_NC24ads_A100_v4", "capacity": 3})
    pulumi.CustomResource("azure-native:compute/v20240701:VirtualMachineScaleSet", "gpu-vmss-versioned", {
        "vmScaleSetName": "gpu-vmss-versioned", "resourceGroupName": RG, "location": "swedencentral", "tags": TAGS,
        "sku": {"name": "Standard_NC4as_T4_v3", "capacity": 2}})
    containerinstance.ContainerGroup(
        "aci-gpu", container_group_name="aci-gpu", resource_group_name=RG, location="swedencentral", tags=TAGS,
        os_type="Linux", ip_address={"type": "Private", "ports": [{"port": 8000}]},
        containers=[{"name": "vllm", "image": "vllm/vllm-openai:v0.11.0", "resources": {"requests": {
            "cpu": 4, "memory_in_gb": 16, "gpu": {"count": 1, "sku": "V100"}}}}])
    cognitiveservices.Deployment("ptu-dz", account_name="foundry", resource_group_name=RG,
                                 sku={"name": "DataZoneProvisionedManaged", "capacity": 15},
                                 properties={"model": {"format": "Microsoft", "name": "Phi-4-mini-instruct",
                                                       "version": "1"}})


@pytest.fixture(scope="module")
def zoo() -> Recording:
    return record(_compute_zoo, stack="prod")


def test_plan_and_gate_agree_on_gpu_scale_sets_aci_and_ptus(tmp_path: Path, zoo: Recording) -> None:
    lines = estimate_recording(zoo)
    by_resource: dict[str, Any] = {line.resource: line for line in lines}
    assert set(by_resource) == {"gpu-pool", "gpu-vmss", "gpu-vmss-versioned", "aci-gpu", "ptu-dz"}
    assert all(line.usd > 0 and line.unpriced is None for line in lines), lines
    assert by_resource["gpu-vmss-versioned"].what == "Standard_NC4as_T4_v3 x 2", "a versioned token is priced too"
    result = run_gate(zoo, environment="prod", config_path=_always_warning(tmp_path, "prod"))
    assert gate_total(result) == f"{cost.monthly_total(lines):,.0f}"
