"""Facts the framework reasons with: VM SKUs, their list prices, and model-family serving defaults.

VM prices are Azure pay-as-you-go Linux list prices in USD per hour for East US as published on
azure.microsoft.com/pricing/details/virtual-machines/linux (captured ``PRICES_CAPTURED``; not re-verified in
the 2026-12-04 review, and Sweden Central, where the shipped stacks deploy, may bill more). ACI and
provisioned throughput are priced at the higher of East US and Sweden Central (``COMPUTE_PRICES_CAPTURED``). They are an estimate for budget guardrails, not a bill: re-check them when
you change regions, and remember that Spot capacity is billed at a variable discount
(``SPOT_PRICE_FACTOR`` is our planning assumption, not a quote).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

PRICES_CAPTURED: Final = "2026-11 (azure.microsoft.com pricing pages, eastus, Linux, pay-as-you-go)"
SPOT_PRICE_FACTOR: Final = 0.3
HOURS_PER_MONTH: Final = 730

GpuModel = Literal["T4", "A10", "A100-80GB", "H100-NVL"]


@dataclass(frozen=True, kw_only=True)
class VmSku:
    """One Azure VM size as the framework needs to know it."""

    name: str
    vcpus: int
    memory_gib: int
    usd_per_hour: float
    gpu_count: int = 0
    gpu_model: GpuModel | None = None
    gpu_memory_gib: int = 0
    bf16: bool = True
    """Whether the GPU supports bfloat16 (T4 does not: serve in ``--dtype half``)."""
    fp8_kv_cache: bool = False
    """Whether the GPU supports an FP8 KV cache (Ada/Hopper)."""

    @property
    def is_gpu(self) -> bool:
        """True for the N-series sizes that carry an NVIDIA GPU."""
        return self.gpu_count > 0


VM_SKUS: Final[dict[str, VmSku]] = {
    s.name: s
    for s in (
        # GPU sizes commonly used for 1-14B models.
        VmSku(name="Standard_NC4as_T4_v3", vcpus=4, memory_gib=28, usd_per_hour=0.526,
              gpu_count=1, gpu_model="T4", gpu_memory_gib=16, bf16=False),
        VmSku(name="Standard_NC8as_T4_v3", vcpus=8, memory_gib=56, usd_per_hour=0.752,
              gpu_count=1, gpu_model="T4", gpu_memory_gib=16, bf16=False),
        VmSku(name="Standard_NC16as_T4_v3", vcpus=16, memory_gib=110, usd_per_hour=1.204,
              gpu_count=1, gpu_model="T4", gpu_memory_gib=16, bf16=False),
        VmSku(name="Standard_NV36ads_A10_v5", vcpus=36, memory_gib=440, usd_per_hour=3.20,
              gpu_count=1, gpu_model="A10", gpu_memory_gib=24),
        VmSku(name="Standard_NC24ads_A100_v4", vcpus=24, memory_gib=220, usd_per_hour=3.673,
              gpu_count=1, gpu_model="A100-80GB", gpu_memory_gib=80),
        VmSku(name="Standard_NC48ads_A100_v4", vcpus=48, memory_gib=440, usd_per_hour=7.346,
              gpu_count=2, gpu_model="A100-80GB", gpu_memory_gib=80),
        VmSku(name="Standard_NC40ads_H100_v5", vcpus=40, memory_gib=320, usd_per_hour=6.98,
              gpu_count=1, gpu_model="H100-NVL", gpu_memory_gib=94, fp8_kv_cache=True),
        # CPU sizes for system pools and CPU engines (Ollama, ONNX Runtime GenAI, llama.cpp).
        VmSku(name="Standard_D2ds_v5", vcpus=2, memory_gib=8, usd_per_hour=0.113),
        VmSku(name="Standard_D4ds_v5", vcpus=4, memory_gib=16, usd_per_hour=0.226),
        VmSku(name="Standard_D8ds_v5", vcpus=8, memory_gib=32, usd_per_hour=0.452),
        VmSku(name="Standard_D16ds_v5", vcpus=16, memory_gib=64, usd_per_hour=0.904),
        VmSku(name="Standard_E8ds_v5", vcpus=8, memory_gib=64, usd_per_hour=0.576),
        VmSku(name="Standard_E16ds_v5", vcpus=16, memory_gib=128, usd_per_hour=1.152),
    )
}

ModelFamily = Literal["phi4-mini", "qwen3", "gemma3", "llama3"]


@dataclass(frozen=True, kw_only=True)
class FamilyServing:
    """How vLLM must be told to do tool calling and reasoning for one model family.

    Seed defect D1: ``--enable-auto-tool-choice`` without ``--tool-call-parser`` makes vLLM refuse
    tool calls with HTTP 400, so the parser is part of the family, not an option.
    """

    tool_call_parser: str
    chat_template: str | None
    """File name of the tool chat template shipped in vLLM's ``examples/`` directory, if needed."""
    reasoning_parser: str | None = None


FAMILY_SERVING: Final[dict[str, FamilyServing]] = {
    "phi4-mini": FamilyServing(tool_call_parser="phi4_mini_json",
                               chat_template="tool_chat_template_phi4_mini.jinja"),
    "qwen3": FamilyServing(tool_call_parser="hermes", chat_template=None, reasoning_parser="qwen3"),
    "gemma3": FamilyServing(tool_call_parser="pythonic",
                            chat_template="tool_chat_template_gemma3_pythonic.jinja"),
    "llama3": FamilyServing(tool_call_parser="llama3_json",
                            chat_template="tool_chat_template_llama3.2_json.jinja"),
}

VALID_TOOL_CALL_PARSERS: Final = frozenset(
    {f.tool_call_parser for f in FAMILY_SERVING.values()} | {"qwen3_coder", "mistral", "granite"}
)


def monthly_usd(vm_size: str, nodes: int, *, spot: bool = False) -> float:
    """Estimated monthly list cost of ``nodes`` VMs of ``vm_size`` running all month."""
    sku = VM_SKUS[vm_size]
    factor = SPOT_PRICE_FACTOR if spot else 1.0
    return round(sku.usd_per_hour * factor * HOURS_PER_MONTH * nodes, 2)

# Appended by the policy pack (issue 7): the remaining inputs of the budget estimate.
AKS_TIER_USD_PER_HOUR: Final[dict[str, float]] = {"Free": 0.0, "Standard": 0.10, "Premium": 0.60}
"""AKS control-plane price per cluster-hour (Standard = uptime SLA; Premium adds LTS)."""

# Issue 12.10: every other compute type the pack allows is priced, from the same public list prices.
# Re-verified 2026-12-04 (issue 12 follow-up) against the sources named beside each figure. Where the two regions
# this catalogue covers differ, the figure is the higher one (Sweden Central, where the shipped stacks deploy):
# the estimate is an upper bound. Nothing fetches prices at run time; these are transcribed by hand.
COMPUTE_PRICES_CAPTURED: Final = (
    "re-verified 2026-12-04: Foundry provisioned throughput from the Azure Retail Prices API snapshot that the "
    "azure-genai-prices 0.2.0 package ships (data/snapshot.json, fetched 2026-08-11); ACI vCPU and memory from "
    "public transcriptions of the same API's 'Container Instances' meters (eastus queried 2026-08-27, "
    "swedencentral 2026-09-06); ACI GPU rates not re-verified (see ACI_GPU_USD_PER_HOUR). USD, pay-as-you-go."
)
ACI_USD_PER_VCPU_HOUR: Final = 0.0466
"""Azure Container Instances, Linux, Standard SKU: one vCPU for an hour (billed per second on the group's requests).

Meter 'Standard vCPU Duration', serviceName 'Container Instances': swedencentral $0.0466 (effective 2021-06-08,
as transcribed 2026-09-06); eastus $0.0405 (transcribed 2026-08-27). Both transcriptions are third-party
copies of the Retail Prices API answer found with the code search, not Microsoft pages."""
ACI_USD_PER_GB_HOUR: Final = 0.00511
"""Azure Container Instances, Linux, Standard SKU: one GB of memory for an hour.

Meter 'Standard Memory Duration': swedencentral $0.00511, eastus $0.00445 (same transcriptions as the vCPU rate)."""
ACI_GPU_USD_PER_HOUR: Final[dict[str, float]] = {"K80": 0.90, "P100": 2.07, "V100": 3.06}
"""Azure Container Instances GPU, per GPU-hour, by the ``gpu.sku`` values the ContainerGroup API accepts.

V100 $3.06 ('V100 GPU Duration') matches one undated third-party transcription of the eastus meters; K80 $0.90
and P100 $2.07 could not be verified (no source found; Azure is retiring ACI's GPU SKUs). Treat them as
unverified estimates, close to the single-GPU NC sizes (NC6, NC6s_v2) they ran on."""
PTU_USD_PER_HOUR: Final[dict[str, float]] = {
    # 'Provisioned Managed Global Unit', productName 'Azure OpenAI': $1.00 in eastus and swedencentral
    # (effective 2024-11-01); azure-genai-prices 0.2.0 snapshot of the Retail Prices API, fetched 2026-08-11.
    "GlobalProvisionedManaged": 1.00,
    # 'Provisioned Managed Data Zone Unit': $1.10 in eastus and swedencentral (US and EU data zones, effective
    # 2024-11-01); same snapshot. (Some APAC regions bill $1.20 since 2026-08.) Was from memory; now verified.
    "DataZoneProvisionedManaged": 1.10,
    # 'Provisioned Managed Regional Unit': $2.20 in swedencentral (effective 2025-09-01), $2.00 in eastus
    # (effective 2024-04-01), $2.40 in westeurope; same snapshot. Was $2.00 (the eastus rate) until 2026-12-04.
    "ProvisionedManaged": 2.20,
}
"""Foundry provisioned throughput, hourly (no reservation), per PTU and deployment type (ProvisionedManaged is
Regional). Reservations bill less; the estimate is the no-commitment upper bound."""
TOKEN_PRICED_SKUS: Final = frozenset({"Standard", "GlobalStandard", "DataZoneStandard", "GlobalBatch",
                                      "DataZoneBatch"})
"""Foundry deployment types billed per token only: no fixed monthly cost (the estimate counts them as $0 and says
so; their spend is bounded by the rate limit ``sku.capacity`` and watched by the usage alerts, not this gate)."""

# Appended for issue 17 (policy slm-foundry-model-offered): the Foundry offers the stacks rely on.
FOUNDRY_OFFERS_CAPTURED: Final = (
    "2026-12-03 from Microsoft Learn (MicrosoftDocs/azure-ai-docs): 'Foundry Models from partners and "
    "community', Microsoft section (Phi-4-mini-instruct, registry azureml, version 1, tier Global standard); "
    "the Data Zone Standard availability matrices (model-matrix/data-zone-standard.md and "
    "marketplace-deployments-standard.md) list no Phi model."
)


@dataclass(frozen=True, kw_only=True)
class FoundryOffer:
    """One model version as Foundry offers it: the deployment SKUs (types) it can be deployed with."""

    name: str
    format: str
    version: str
    skus: frozenset[str]
    source: str


FOUNDRY_OFFERS: Final[tuple[FoundryOffer, ...]] = (
    FoundryOffer(name="Phi-4-mini-instruct", format="Microsoft", version="1", skus=frozenset({"GlobalStandard"}),
                 source="https://learn.microsoft.com/azure/foundry/foundry-models/concepts/models-from-partners"
                        "#microsoft; https://ai.azure.com/explore/models/Phi-4-mini-instruct/version/1/registry/"
                        "azureml"),
)
"""Offers by (format, name, version). Regional availability is not recorded: it changes without notice and
is checked with ``az cognitiveservices model list -l <region>`` (docs/components/inference-cluster.md)."""
