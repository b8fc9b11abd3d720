"""Builders for InferenceCluster, ServingWorkloads and engine tests: small settings and fake Azure inputs."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.inference_cluster import (
    InferenceCluster,
    InferenceClusterArgs,
    KubeletIdentity,
    WorkloadIdentity,
)
from components.serving_workloads import KeyVaultSecrets, ServingWorkloads, ServingWorkloadsArgs
from slmctl.recorder import Recording, record
from stacks.serving import cluster_args, workloads_args
from stacks.settings import EnvironmentSettings

REVISION = "0" * 39 + "1"
GGUF_SHA256 = "3c168af1dea0a414299c7d9077e100ac763370e5a98b3c53801a958a47f0a5db"
"""An illustrative pinned blob digest (registry revisions of GGUF artifacts are their digest)."""
PINNED_OLLAMA = "ollama/ollama:0.12.6@sha256:" + "a" * 64
PINNED_AUTH_PROXY = "nginx:1.28.0-alpine@sha256:" + "b" * 64

MODELS: dict[str, Any] = {
    "phi-4-mini": {
        "family": "phi4-mini", "parameters_billion": 3.8, "layers": 32, "kv_heads": 8, "head_dim": 128,
        "max_context_tokens": 131072,
        "artifacts": {
            "safetensors": {"repo": "microsoft/Phi-4-mini-instruct", "revision": REVISION},
            "onnx": {"repo": "microsoft/Phi-4-mini-instruct-onnx", "revision": REVISION,
                     "cpu_variant": "cpu_and_mobile/cpu-int4-rtn-block-32-acc-level-4",
                     "cuda_variant": "gpu/gpu-int4-rtn-block-32"},
            "gguf": {"ollama_tag": "phi4-mini:3.8b-q4_K_M", "sha256": GGUF_SHA256},
        },
    },
    "qwen3-8b": {
        "family": "qwen3", "parameters_billion": 8.2, "layers": 36, "kv_heads": 8, "head_dim": 128,
        "max_context_tokens": 32768,
        "artifacts": {"safetensors": {"repo": "Qwen/Qwen3-8B", "revision": REVISION}},
    },
}


def settings_dict(tier: str = "dev", **overrides: Any) -> dict[str, Any]:
    """A small, valid environment: a T4 GPU pool, a CPU pool, vLLM + Ollama + ONNX workloads."""
    base: dict[str, Any] = {
        "tier": tier,
        "name_prefix": f"slm{tier[:4]}",
        "tags": {"owner": "platform-team", "cost_center": "cc-1234"},
        "models": copy.deepcopy(MODELS),
        "cluster": {
            "authorized_ip_ranges": ["203.0.113.0/24"],
            "admin_group_object_ids": ["aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"],
            "pools": {
                "gpu": {"vm_size": "Standard_NC4as_T4_v3", "min_count": 0, "max_count": 2},
                "cpu": {"vm_size": "Standard_D8ds_v5", "min_count": 0, "max_count": 2},
            },
        },
        "deployments": {
            "phi4": {"target": "vllm", "model": "phi-4-mini", "pool": "gpu"},
            "phi4-ollama": {"target": "ollama", "model": "phi-4-mini", "pool": "cpu"},
            "phi4-onnx": {"target": "onnx-genai", "model": "phi-4-mini", "pool": "cpu"},
        },
    }
    if tier == "prod":
        base["cluster"]["pools"]["gpu"]["vm_size"] = "Standard_NC24ads_A100_v4"
        base["cluster"]["system_pool"] = {"zones": ["1", "2", "3"]}
        base["deployments"]["phi4-ollama"]["image"] = PINNED_OLLAMA
        base["deployments"]["phi4-ollama"]["auth_proxy_image"] = PINNED_AUTH_PROXY
    if tier == "local":
        base["cluster"] = {"kube_context": "kind-slm"}
        for dep in base["deployments"].values():
            dep.pop("pool", None)
    return _merge(base, overrides)


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def make_settings(tier: str = "dev", **overrides: Any) -> EnvironmentSettings:
    """Validated settings for ``tier``."""
    return EnvironmentSettings.model_validate(settings_dict(tier, **overrides))


ONNX_IMAGE = "slmdevacr.azurecr.io/onnx-server@sha256:" + "b" * 64
FILL_IMAGE = "slmdevacr.azurecr.io/slm/model-fill@sha256:" + "c" * 64


SUB = "/subscriptions/00000000-0000-0000-0000-000000000000"
RG = "slm-rg"


def identities(settings: EnvironmentSettings) -> dict[str, WorkloadIdentity]:
    """One fake workload identity per AKS deployment, as Foundation would create them."""
    return {
        dep: WorkloadIdentity(name=f"wi-{dep}", resource_group_name=RG,
                              resource_id=f"{SUB}/resourceGroups/{RG}/providers/Microsoft.ManagedIdentity/"
                                          f"userAssignedIdentities/wi-{dep}",
                              client_id=f"client-{dep}", principal_id=f"principal-{dep}")
        for dep in settings.aks_deployments()
    }


def make_cluster_args(settings: EnvironmentSettings, **overrides: Any) -> InferenceClusterArgs:
    """The platform's mapping with plain-string stand-ins for every Azure id (Outputs in a stack)."""
    wiring: dict[str, Any] = {
        "resource_group_name": RG,
        "subscription_id": "00000000-0000-0000-0000-000000000000",
        "tenant_id": "11111111-1111-1111-1111-111111111111",
        "aks_subnet_id": f"{SUB}/resourceGroups/{RG}/providers/Microsoft.Network/virtualNetworks/vnet/subnets/aks",
        "control_plane_identity_id": f"{SUB}/resourceGroups/{RG}/providers/Microsoft.ManagedIdentity/"
                                     "userAssignedIdentities/aks-control-plane",
        "kubelet_identity": KubeletIdentity(resource_id="kubelet-id", client_id="kubelet-client",
                                            object_id="kubelet-object"),
        "workload_identities": identities(settings),
        "log_analytics_workspace_id": f"{SUB}/resourceGroups/{RG}/providers/Microsoft.OperationalInsights/"
                                      "workspaces/logs",
    }
    return cluster_args(settings, **{**wiring, **overrides})


def make_workload_args(settings: EnvironmentSettings, provider: k8s.Provider | None,
                       cluster: InferenceCluster | None = None, **overrides: Any) -> ServingWorkloadsArgs:
    """The platform's mapping for the workloads on ``cluster`` (Azure) or the kubeconfig context (local)."""
    if cluster is None:
        wiring: dict[str, Any] = {"engine_api_key": pulumi.Output.secret("local-test-key"),
                                  "onnx_server_image": ONNX_IMAGE, "kube_context": settings.cluster.kube_context}
    else:
        wiring = {
            "node_pools": list(cluster.pools.values()),
            "workload_identity_client_ids": {k: v.client_id for k, v in identities(settings).items()},
            "key_vault": KeyVaultSecrets(vault_name="slmdev-kv", tenant_id="11111111-1111-1111-1111-111111111111",
                                         engine_api_key_secret_name="engine-api-key"),
            "onnx_server_image": pulumi.Output.from_input(ONNX_IMAGE),
            "model_fill_image": pulumi.Output.from_input(FILL_IMAGE),
            "engine_api_key": pulumi.Output.secret("unused-on-azure"),
            "gateway_ingress_class": cluster.gateway_ingress_class,
            "gateway_namespace": cluster.gateway_namespace,
            "gateway_certificate_grants": cluster.certificate_grants,
        }
    return workloads_args(settings, kube_provider=provider, **{**wiring, **overrides})


CLUSTER_FIELDS = frozenset(f.name for f in dataclasses.fields(InferenceClusterArgs))
WORKLOAD_FIELDS = frozenset(f.name for f in dataclasses.fields(ServingWorkloadsArgs))


def deploy(settings: EnvironmentSettings, **overrides: Any) -> ServingWorkloads:
    """Inside a program: the cluster (Azure tiers) and the workloads, as ``stacks/platform.py`` wires them.

    Each override goes to the Args that has the field (an unknown name is an error)."""
    unknown = sorted(set(overrides) - CLUSTER_FIELDS - WORKLOAD_FIELDS)
    assert not unknown, unknown
    on_cluster = {k: v for k, v in overrides.items() if k in CLUSTER_FIELDS and k not in WORKLOAD_FIELDS}
    on_workloads = {k: v for k, v in overrides.items() if k in WORKLOAD_FIELDS}
    if not settings.uses_azure:
        return ServingWorkloads("serving", make_workload_args(settings, None, **on_workloads))
    cluster = InferenceCluster("serving", make_cluster_args(settings, **on_cluster))
    return ServingWorkloads("serving", make_workload_args(settings, cluster.kube_provider, cluster, **on_workloads))


def build(settings: EnvironmentSettings, **overrides: Any) -> Recording:
    """Record the cluster and workloads named ``serving`` built from ``settings``."""
    return record(lambda: deploy(settings, **overrides), stack=settings.tier)


Builder = Callable[..., Recording]
