"""The domain layer: models, artifacts, engines, deployment kinds, pools, edge fleets, catalogue facts, memory-fit.

Plain frozen (pydantic) types with no knowledge of tiers, stack files or Pulumi resources. Components and
stacks import them from here; nothing in this package imports ``pulumi``, ``stacks`` or a component.
"""

from __future__ import annotations

from components.domain._base import CONFIG_NAMESPACE, FrozenModel, GitRevision, Sha256
from components.domain.alerting import (
    AlertSeverity,
    EmailAddress,
    EmailReceiver,
    PagerDutyReceiver,
    Receiver,
    SecretConfigKey,
    WebhookReceiver,
    secret_config_key,
)
from components.domain.catalogue import FAMILY_SERVING, VM_SKUS, ModelFamily, VmSize, VmSku
from components.domain.deployments import (
    AksDeployment,
    AksServing,
    Deployment,
    DeploymentName,
    FoundryDeployment,
    FoundrySku,
    OllamaDeployment,
    OnnxGenAIDeployment,
    Replicas,
    Slo,
    VllmDeployment,
)
from components.domain.edge import (
    EDGE_DELIVERY_OS,
    EDGE_MEMORY_HEADROOM,
    EDGE_SYSTEM_RESERVED_GIB,
    IOT_TAG_KEY_PATTERN,
    DeviceClass,
    Fleet,
)
from components.domain.engines import (
    DEPLOYMENT_ARTIFACT,
    EDGE_ENGINE_ARTIFACT,
    EDGE_ENGINES,
    ENGINES,
    EngineRegistration,
)
from components.domain.fit import (
    DEFAULT_CONTEXT_TOKENS,
    MAX_NUM_SEQS_CAP,
    MIN_CONTEXT_TOKENS,
    NODE_ALLOCATABLE_FRACTION,
    vllm_max_model_len,
    vllm_max_num_seqs,
)
from components.domain.models import (
    FoundryModel,
    GgufArtifact,
    ModelArtifacts,
    ModelId,
    ModelSpec,
    OnnxArtifact,
    SafetensorsArtifact,
)
from components.domain.pools import NodePool, PoolName, SystemPool

__all__ = [
    "CONFIG_NAMESPACE",
    "DEFAULT_CONTEXT_TOKENS",
    "DEPLOYMENT_ARTIFACT",
    "EDGE_DELIVERY_OS",
    "EDGE_ENGINES",
    "EDGE_ENGINE_ARTIFACT",
    "EDGE_MEMORY_HEADROOM",
    "EDGE_SYSTEM_RESERVED_GIB",
    "ENGINES",
    "FAMILY_SERVING",
    "IOT_TAG_KEY_PATTERN",
    "MAX_NUM_SEQS_CAP",
    "MIN_CONTEXT_TOKENS",
    "NODE_ALLOCATABLE_FRACTION",
    "VM_SKUS",
    "AksDeployment",
    "AksServing",
    "AlertSeverity",
    "Deployment",
    "DeploymentName",
    "DeviceClass",
    "EmailAddress",
    "EmailReceiver",
    "EngineRegistration",
    "Fleet",
    "FoundryDeployment",
    "FoundryModel",
    "FoundrySku",
    "FrozenModel",
    "GgufArtifact",
    "GitRevision",
    "ModelArtifacts",
    "ModelFamily",
    "ModelId",
    "ModelSpec",
    "NodePool",
    "OllamaDeployment",
    "OnnxArtifact",
    "OnnxGenAIDeployment",
    "PagerDutyReceiver",
    "PoolName",
    "Receiver",
    "Replicas",
    "SafetensorsArtifact",
    "SecretConfigKey",
    "Sha256",
    "Slo",
    "SystemPool",
    "VllmDeployment",
    "VmSize",
    "VmSku",
    "WebhookReceiver",
    "secret_config_key",
    "vllm_max_model_len",
    "vllm_max_num_seqs",
]
