"""Issue 12.10, money: what a stack can cost is gated, over the real pack and its prod/staging config.

100 A100 nodes (~$268k a month) and 1,000 provisioned throughput units (~$730k) used to pass prod with
advisories only: the node cap was advisory in prod, the budget advisory everywhere, and PTUs, ACI and
unknown sizes were priced $0 or not at all. Each test gates a small program of real ``pulumi_azure_native``
resources (prod-compliant except for what it is about) with the environment's generated config, and names
the exact policies that fail it; the compliant twin is the same shape under the cap and the budget.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pulumi_azure_native import cognitiveservices, compute, containerinstance, containerservice

from policies.pack import environment_config
from policies.rules.catalog import (
    ACI_GPU_USD_PER_HOUR,
    ACI_USD_PER_GB_HOUR,
    ACI_USD_PER_VCPU_HOUR,
    HOURS_PER_MONTH,
)
from slmctl.gate import GateResult, run_gate
from slmctl.recorder import record

RG = "rg-money"
TAGS = {"environment": "prod", "owner": "ml@contoso.example", "costCenter": "cc-4711", "workload": "slm-platform"}
MONEY = {"slm-cost-monthly-budget", "slm-cost-budget-headroom", "slm-gpu-pool-node-cap", "slm-gpu-pool-priority"}


def gpu_pool(name: str, **override: Any) -> containerservice.AgentPool:
    args: dict[str, Any] = {
        "vm_size": "Standard_NC24ads_A100_v4", "mode": "User", "enable_auto_scaling": True, "min_count": 0,
        "max_count": 2, "node_taints": ["sku=gpu:NoSchedule"], "node_labels": {"accelerator": "nvidia"},
        "enable_encryption_at_host": True, "scale_set_priority": "Regular", **override}
    return containerservice.AgentPool(name, agent_pool_name=name.replace("-", "")[:12], resource_group_name=RG,
                                      resource_name_="aks", **args)


def ptu_deployment(name: str, capacity: int, sku: str = "GlobalProvisionedManaged") -> None:
    cognitiveservices.Deployment(name, account_name="foundry", resource_group_name=RG, sku={"name": sku, "capacity": capacity},
                                 properties={"model": {"format": "Microsoft", "name": "Phi-4-mini-instruct", "version": "1"},
                                             "version_upgrade_option": "NoAutoUpgrade",
                                             "rai_policy_name": "Microsoft.DefaultV2"})


def gpu_scale_set(name: str, size: str, capacity: int, priority: str | None = None) -> None:
    compute.VirtualMachineScaleSet(name, vm_scale_set_name=name, resource_group_name=RG, location="swedencentral",
                                   tags=TAGS, sku={"name": size, "capacity": capacity},
                                   virtual_machine_profile={"priority": priority} if priority else {})


def aci_gpu_group(name: str, gpus: int) -> None:
    containerinstance.ContainerGroup(
        name, container_group_name=name, resource_group_name=RG, location="swedencentral", tags=TAGS,
        os_type="Linux", ip_address={"type": "Private", "ports": [{"port": 8000}]},
        containers=[{"name": "vllm", "image": "vllm/vllm-openai:v0.11.0", "resources": {"requests": {
            "cpu": 4, "memory_in_gb": 16, **({"gpu": {"count": gpus, "sku": "V100"}} if gpus else {})}}}])


def gate(program: Any, environment: str = "prod", config_path: Path | None = None) -> GateResult:
    return run_gate(record(program, stack=environment), environment=environment, config_path=config_path)


def money(result: GateResult, level: str = "mandatory") -> set[tuple[str, str]]:
    return {(v.policy, v.resource) for v in result.violations if v.policy in MONEY and v.level == level}


def test_a_hundred_a100_nodes_fail_prod() -> None:
    result = gate(lambda: gpu_pool("gpu-farm", max_count=100))
    assert money(result) == {("slm-gpu-pool-node-cap", "gpu-farm"), ("slm-cost-monthly-budget", "")}
    assert result.exit_code == 1
    budget = next(v.detail for v in result.violations if v.policy == "slm-cost-monthly-budget")
    assert "found $268,129 (upper bound" in budget
    assert "gpu-farm (Standard_NC24ads_A100_v4 x 100) $268,129" in budget
    cap = next(v.detail for v in result.violations if v.policy == "slm-gpu-pool-node-cap")
    assert cap.endswith("maxCount: found 100; at most 8 GPU nodes per pool here (raise maxGpuNodes in the policy "
                        "config after a cost review).")


def test_a_thousand_ptus_fail_prod_on_the_budget_alone() -> None:
    """1,000 PTUs is within prod's maxCapacity (GPU-06), so only the priced budget can stop it."""
    result = gate(lambda: ptu_deployment("ptu", 1000))
    assert money(result) == {("slm-cost-monthly-budget", "")}
    assert not [v for v in result.violations if v.policy == "slm-cost-foundry-deployment-sku"]
    detail = next(v.detail for v in result.violations if v.policy == "slm-cost-monthly-budget")
    assert "found $730,000" in detail
    assert "ptu (GlobalProvisionedManaged 1000 PTU) $730,000" in detail
    assert result.exit_code == 1


def test_regional_ptus_are_priced_at_their_own_rate() -> None:
    """ProvisionedManaged (Regional) bills $2.20 a PTU-hour in Sweden Central, 2.2x Global: 30 exceed prod's $40k."""
    result = gate(lambda: ptu_deployment("ptu-regional", 30, sku="ProvisionedManaged"))
    assert money(result) == {("slm-cost-monthly-budget", "")}
    assert "found $48,180" in next(v.detail for v in result.violations if v.policy == "slm-cost-monthly-budget")


def test_spot_capacity_and_unpriced_compute_fail_prod() -> None:
    def program() -> None:
        gpu_pool("gpu-spot", scale_set_priority="Spot", scale_set_eviction_policy="Delete", spot_max_price=-1)
        gpu_scale_set("gpu-low-vmss", "Standard_NC24ads_A100_v4", 2, priority="Low")
        gpu_scale_set("gpu-unpriced-vmss", "Standard_ND96amsr_A100_v4", 1)

    result = gate(program)
    assert money(result) == {("slm-gpu-pool-priority", "gpu-spot"), ("slm-gpu-pool-priority", "gpu-low-vmss"),
                             ("slm-cost-monthly-budget", "gpu-unpriced-vmss")}
    details = {v.resource: v.detail for v in result.violations if v.policy in MONEY}
    assert details["gpu-low-vmss"].endswith("virtualMachineProfile.priority: found 'Low'; serving pools here use "
                                            "Regular capacity.")
    assert ("cost: cannot price gpu-unpriced-vmss (Standard_ND96amsr_A100_v4 x 1): vmSize "
            "'Standard_ND96amsr_A100_v4' has no price in catalog.VM_SKUS") in details["gpu-unpriced-vmss"]


def test_unpriced_compute_is_only_advisory_in_dev() -> None:
    result = gate(lambda: gpu_scale_set("gpu-unpriced-vmss", "Standard_ND96amsr_A100_v4", 1), "dev")
    assert ("slm-cost-monthly-budget", "gpu-unpriced-vmss") in money(result, "advisory")
    assert money(result) == set()


def test_an_aci_gpu_group_is_priced_and_fails_the_staging_budget() -> None:
    """Four V100s on ACI, all month, cost more than staging's $6,000 (the estimate used to leave ACI out)."""
    result = gate(lambda: aci_gpu_group("aci-gpu", gpus=4), "staging")
    usd = round((4 * ACI_USD_PER_VCPU_HOUR + 16 * ACI_USD_PER_GB_HOUR + 4 * ACI_GPU_USD_PER_HOUR["V100"])
                * HOURS_PER_MONTH)
    assert usd > 6000
    assert money(result) == {("slm-cost-monthly-budget", "")}
    detail = next(v.detail for v in result.violations if v.policy == "slm-cost-monthly-budget")
    assert f"aci-gpu (ACI 4 vCPU, 16 GB, 4 V100 GPU) ${usd:,}" in detail


def test_the_compliant_twin_passes_prod_with_a_headroom_warning() -> None:
    """Eight A100s (the cap) on Regular capacity, 20 PTUs and a CPU ACI group: 91% of prod's budget, a warning only."""
    def program() -> None:
        gpu_pool("gpu-ok", max_count=8)
        ptu_deployment("ptu-ok", 20)
        aci_gpu_group("aci-ok", gpus=0)

    result = gate(program)
    assert money(result) == set()
    assert money(result, "advisory") == {("slm-cost-budget-headroom", "")}
    warning = next(v.detail for v in result.violations if v.policy == "slm-cost-budget-headroom")
    assert "found $36,246, 91% of the budget of $40,000 (this warning starts at 80%" in warning


def _exempting(tmp_path: Path, env: str, name: str, type_: str, policies: tuple[str, ...]) -> Path:
    """The generated ``env`` config plus an exact-name exemption of ``name`` (what config integrity allows)."""
    config = environment_config(env)
    for policy in policies:
        entry = config[policy] if isinstance(config[policy], dict) else {"enforcementLevel": config[policy]}
        config[policy] = {**entry, "exempt": [{"pattern": name, "type": type_,
                                               "reason": "reviewed by finance, ticket FIN-42"}]}
    path = tmp_path / f"{env}.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


@pytest.mark.parametrize(("env", "size", "nodes", "usd"), [
    ("prod", "Standard_NC48ads_A100_v4", 8, "42,901"),  # at prod's node cap, above its $40,000
    ("staging", "Standard_NC24ads_A100_v4", 4, "10,725"),  # at staging's node cap, above its $6,000
])
def test_exempting_the_most_expensive_resource_does_not_silence_the_budget(tmp_path: Path, env: str, size: str,
                                                                           nodes: int, usd: str) -> None:
    """The sum is the stack's: an exact-name exemption of its biggest item (allowed in staging/prod) used to drop it."""
    config = _exempting(tmp_path, env, "gpu-farm", "azure-native:containerservice:AgentPool",
                        ("slm-cost-monthly-budget", "slm-cost-budget-headroom"))
    result = gate(lambda: gpu_pool("gpu-farm", max_count=nodes, vm_size=size), env, config)
    assert money(result) == {("slm-cost-monthly-budget", "")}
    assert ("slm-cost-budget-headroom", "") in money(result, "advisory")
    assert [e for e in result.exemptions if e.policy.startswith("slm-cost-")] == []
    assert result.exit_code == 1
    detail = next(v.detail for v in result.violations if v.policy == "slm-cost-monthly-budget")
    assert detail.startswith(f"stack: estimated monthly cost: found ${usd} (upper bound")
    assert f"gpu-farm ({size} x {nodes}) ${usd}" in detail


def test_an_exempted_unpriced_resource_leaves_the_priced_sum_gated(tmp_path: Path) -> None:
    """Exempting a 'cannot price' resource is per resource: its finding goes, the budget over the rest stays."""
    config = _exempting(tmp_path, "prod", "gpu-unpriced-vmss", "azure-native:compute:VirtualMachineScaleSet",
                        ("slm-cost-monthly-budget",))

    def program() -> None:
        gpu_pool("gpu-big", max_count=8, vm_size="Standard_NC48ads_A100_v4")  # 8 x 2 A100s: $42,900
        gpu_scale_set("gpu-unpriced-vmss", "Standard_ND96amsr_A100_v4", 1)

    result = gate(program, "prod", config)
    assert money(result) == {("slm-cost-monthly-budget", "")}
    assert [(e.policy, e.resource) for e in result.exemptions if e.policy == "slm-cost-monthly-budget"] == [
        ("slm-cost-monthly-budget", "gpu-unpriced-vmss")]
