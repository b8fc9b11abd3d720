"""The deployment kinds: a model served by one engine, in Foundry or on a node pool."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from components.domain._base import FrozenModel as _Model
from components.domain.models import ModelId
from components.domain.pools import PoolName

DeploymentName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")]
FoundrySku = Literal[
    "GlobalStandard", "DataZoneStandard", "Standard",
    "GlobalProvisionedManaged", "DataZoneProvisionedManaged", "ProvisionedManaged",
]


class Replicas(_Model):
    """Autoscaling bounds (KEDA) for one workload."""

    min: int = Field(default=1, ge=0)
    max: int = Field(default=2, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.min > self.max:
            msg = f"min={self.min} is greater than max={self.max}; raise max or lower min"
            raise ValueError(msg)
        return self


class Slo(_Model):
    """Per-model service-level objectives; the alert rules are generated from these."""

    ttft_p95_seconds: float = Field(default=2.0, gt=0)
    itl_p95_seconds: float = Field(default=0.15, gt=0)
    queue_backlog_requests: int = Field(default=8, ge=1)
    """Also the KEDA target: one more replica per this many waiting requests."""
    abort_ratio: float = Field(default=0.05, gt=0, lt=1)


class AksServing(_Model):
    model: ModelId
    pool: PoolName | None = None
    """The node pool it runs on. Required on AKS tiers; ignored on ``local``."""
    replicas: Replicas | None = None
    """Default: the tier's replica bounds (dev 0-1, staging 1-2, prod 2-4)."""
    slo: Slo = Field(default_factory=Slo)
    image: str | None = None
    """Default: the engine's pinned public image. Prod requires ``@sha256:`` digests."""


class VllmDeployment(AksServing):
    """vLLM's OpenAI-compatible server on a GPU pool."""

    target: Literal["vllm"]
    max_model_len_tokens: int | None = Field(default=None, ge=512)
    """Default: min(model context, 16384), always bounded (vLLM checks it fits the KV cache)."""
    max_num_seqs: int | None = Field(default=None, ge=1)
    """Default: what fits the GPU at ``max_model_len_tokens``, capped at 64."""
    max_num_batched_tokens: int = Field(default=8192, ge=512)
    gpu_memory_utilization: float = Field(default=0.9, gt=0.1, le=0.95)
    tool_calling_enabled: bool = True
    """Default: on, with the family's parser and template (D1)."""


class OllamaDeployment(AksServing):
    """Ollama serving a GGUF quantization (CPU or GPU)."""

    target: Literal["ollama"]
    context_tokens: int = Field(default=8192, ge=512)
    num_parallel: int = Field(default=2, ge=1, le=32)
    models_volume_gib: int = Field(default=20, ge=5)
    auth_proxy_image: str | None = None
    """The API-key gate in front of Ollama (which checks no key). Default: ``nginx:1.28.0-alpine``;
    tiers that pin digests need ``<registry>/nginx:<tag>@sha256:<digest>`` here."""


class OnnxGenAIDeployment(AksServing):
    """ONNX Runtime GenAI behind this repo's small OpenAI-compatible server."""

    target: Literal["onnx-genai"]
    context_tokens: int = Field(default=4096, ge=512)


class FoundryDeployment(_Model):
    """A managed deployment in Azure AI Foundry."""

    target: Literal["foundry"]
    model: ModelId
    sku: FoundrySku = "GlobalStandard"
    capacity: int = Field(default=1, ge=1, le=1000)
    """Thousands of tokens per minute (Standard SKUs) or PTUs (provisioned SKUs)."""
    rai_policy: str = "Microsoft.DefaultV2"


Deployment = Annotated[
    VllmDeployment | OllamaDeployment | OnnxGenAIDeployment | FoundryDeployment,
    Field(discriminator="target"),
]
AksDeployment = VllmDeployment | OllamaDeployment | OnnxGenAIDeployment

