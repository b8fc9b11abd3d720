"""Shared fixtures for the ModelRegistry tests: small settings per tier and a recorded build."""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pytest

from components.model_registry import ModelRegistry, ModelRegistryArgs
from slmctl.recorder import Recording, Registration, record, redact
from stacks.registry import registry_args
from stacks.settings import EnvironmentSettings

REV = "0123456789abcdef0123456789abcdef01234567"
ENGINE_KEY = "engine-key-7f3a9c1d2b"
GRAFANA_PASSWORD = "grafana-pw-55e0a1b2c3"
REFRESH_TOKEN = "acr-refresh-token-9d8c7b6a"
ZONES = (
    "privatelink.services.ai.azure.com",
    "privatelink.openai.azure.com",
    "privatelink.cognitiveservices.azure.com",
    "privatelink.azurecr.io",
    "privatelink.blob.core.windows.net",
    "privatelink.vaultcore.azure.net",
)
SUBNET_ID = "/subscriptions/s/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/v/subnets/private-endpoints"
WORKSPACE_ID = "/subscriptions/s/resourceGroups/ops/providers/Microsoft.OperationalInsights/workspaces/logs"
KUBELET = "kubelet-principal-1"
WORKLOAD = "workload-principal-phi"
APP_PRINCIPAL = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
REQUIRED_TAGS = ("environment", "owner", "costCenter", "workload", "managedBy")
TAGGABLE = frozenset({
    "azure-native:containerregistry:Registry", "azure-native:storage:StorageAccount",
    "azure-native:keyvault:Vault", "azure-native:keyvault:Secret", "azure-native:cognitiveservices:Account",
    "azure-native:cognitiveservices:Project", "azure-native:cognitiveservices:Deployment",
    "azure-native:network:PrivateEndpoint",
})


def zone_id(zone: str) -> str:
    """A private DNS zone id as the platform would pass it."""
    return f"/subscriptions/s/resourceGroups/dns/providers/Microsoft.Network/privateDnsZones/{zone}"


def base_data(tier: str) -> dict[str, Any]:
    """A small valid environment: two Foundry deployments, one ONNX deployment, two families."""
    return {
        "tier": tier,
        "name_prefix": f"slm{tier[:4]}",
        "tags": {"owner": "ml-platform", "cost_center": "cc-1234"},
        "models": {
            "phi-4-mini": {
                "family": "phi4-mini", "parameters_billion": 3.8, "layers": 32, "kv_heads": 8,
                "head_dim": 128, "max_context_tokens": 131072,
                "artifacts": {
                    "foundry": {"format": "Microsoft", "name": "Phi-4-mini-instruct", "version": "1"},
                    "onnx": {"repo": "microsoft/Phi-4-mini-instruct-onnx", "revision": REV,
                             "cpu_variant": "cpu_and_mobile/cpu-int4-rtn-block-32-acc-level-4"},
                },
            },
            "qwen3-4b": {
                "family": "qwen3", "parameters_billion": 4.0, "layers": 36, "kv_heads": 8,
                "head_dim": 128, "max_context_tokens": 32768,
                "artifacts": {"safetensors": {"repo": "Qwen/Qwen3-4B", "revision": REV}},
            },
        },
        "deployments": {
            # Deliberately not in alphabetical order: creation order must be the sorted one.
            "phi-b": {"target": "foundry", "model": "phi-4-mini", "capacity": 5},
            "phi-a": {"target": "foundry", "model": "phi-4-mini"},
            "phi-onnx": {"target": "onnx-genai", "model": "phi-4-mini", "pool": "cpu"},
        },
        "cluster": {"authorized_ip_ranges": ["203.0.113.0/24"], "pools": {"cpu": {"vm_size": "Standard_D8ds_v5"}}},
        "foundry": {"application_principal_ids": {"chat-api": APP_PRINCIPAL}},
        "registry": {"secrets_rotated_on": "2026-01-15"},
    }


def merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``override`` into a copy of ``base`` (a None value deletes the key)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


@dataclass
class Built:
    """One recorded ModelRegistry build plus the component's outputs, resolved."""

    recording: Recording
    outputs: dict[str, Any]
    token_calls: list[tuple[str, str]] = field(default_factory=list)

    def of_type(self, suffix: str) -> list[Registration]:
        """Registrations whose type token ends with ``suffix`` (e.g. ``keyvault:Secret``), by name."""
        return sorted((r for r in self.recording.registrations if r.type.endswith(suffix)),
                      key=lambda r: r.name)

    def one(self, suffix: str, name: str | None = None) -> Registration:
        """The single registration of a type (and name)."""
        found = [r for r in self.of_type(suffix) if name is None or r.name == name]
        assert len(found) == 1, [r.name for r in found]
        return found[0]

    def urn(self, name: str) -> str:
        """The URN of the registration called ``name``."""
        (reg,) = [r for r in self.recording.registrations if r.name == name]
        return reg.urn

    def arm_id(self, name: str) -> str:
        """The mock ARM id of the registration called ``name`` (what ``.id`` resolves to)."""
        return self.outputs["__ids"][name]

    def plan_text(self) -> str:
        """The whole recording as the plan file shows it (secrets redacted) plus the outputs."""
        return json.dumps({"inputs": [redact(r.inputs) for r in self.recording.registrations],
                           "outputs": {k: v for k, v in self.outputs.items() if k != "__ids"}},
                          default=str)


class Harness:
    """Builds settings and records ModelRegistry programs; carries the shared constants."""

    ENGINE_KEY = ENGINE_KEY
    GRAFANA_PASSWORD = GRAFANA_PASSWORD
    REFRESH_TOKEN = REFRESH_TOKEN
    ZONES = ZONES
    SUBNET_ID = SUBNET_ID
    WORKSPACE_ID = WORKSPACE_ID
    KUBELET = KUBELET
    WORKLOAD = WORKLOAD
    APP_PRINCIPAL = APP_PRINCIPAL
    REQUIRED_TAGS = REQUIRED_TAGS
    TAGGABLE = TAGGABLE
    zone_id = staticmethod(zone_id)
    base_data = staticmethod(base_data)

    def __init__(self) -> None:
        self._defaults: dict[str, Built] = {}

    def default(self, tier: str) -> Built:
        """The build of ``settings(tier)`` with default args, recorded once per session (read-only)."""
        if tier not in self._defaults:
            self._defaults[tier] = self.build(self.settings(tier))
        return self._defaults[tier]

    def settings(self, tier: str, **override: Any) -> EnvironmentSettings:
        """Validated settings for ``tier`` with ``override`` deep-merged in."""
        return EnvironmentSettings.model_validate(merge(base_data(tier), override))

    def args(self, settings: EnvironmentSettings, *, private: bool | None = None,
             **override: Any) -> ModelRegistryArgs:
        """Args as the platform maps them from ``settings``; ``private`` defaults to True outside dev."""
        private = settings.tier != "dev" if private is None else private
        values: dict[str, Any] = {
            "resource_group_name": "slm-rg",
            "location": "swedencentral",
            "subscription_id": "sub-0000",
            "tenant_id": "tenant-1111",
            "private_endpoint_subnet_id": SUBNET_ID if private else None,
            "private_dns_zone_ids": {z: zone_id(z) for z in ZONES} if private else {},
            "log_analytics_workspace_id": WORKSPACE_ID,
            "kubelet_principal_id": KUBELET,
            "workload_principal_ids": {"phi-onnx": WORKLOAD},
            # Plain strs here (an Output must be made inside the recorded program, on its event loop);
            # ``build`` passes the engine key as a secret Output, the password stays a plain str.
            "engine_api_key": ENGINE_KEY,
            "grafana_admin_password": GRAFANA_PASSWORD,
            "tags": settings.azure_tags(),
        }
        values.update(override)
        return registry_args(settings, **values)

    def build(self, settings: EnvironmentSettings, *, private: bool | None = None,
              provider: Callable[[str, str], str] | bool | None = True, **override: Any) -> Built:
        """Record a program that builds one ModelRegistry and exports every output.

        ``provider=True`` (default) injects a fake token provider that records its calls;
        ``provider=None`` leaves the default (the component must then not touch the network).
        """
        calls: list[tuple[str, str]] = []

        def fake(login_server: str, tenant_id: str) -> str:
            calls.append((login_server, tenant_id))
            return REFRESH_TOKEN

        if provider is True:
            override["registry_token_provider"] = fake
        elif provider is not False and provider is not None:
            override["registry_token_provider"] = provider
        args = self.args(settings, private=private, **override)

        def program() -> None:
            mr = ModelRegistry("models", dataclasses.replace(
                args, engine_api_key=pulumi.Output.secret(ENGINE_KEY)))
            names = ("registry_login_server", "registry_id", "registry_name", "storage_account_id",
                     "storage_account_name", "key_vault_id", "key_vault_name", "key_vault_uri",
                     "foundry_account_id", "foundry_endpoint", "foundry_account_name",
                     "engine_api_key_secret_name", "grafana_password_secret_name", "onnx_server_image",
                     "model_fill_image")
            for out in names:
                pulumi.export(out, getattr(mr, out))
            ids = {"models-acr": mr.registry.id, "models-weights": mr.storage_account.id,
                   "models-kv": mr.key_vault.id}
            if mr.foundry_account is not None:
                ids["models-foundry"] = mr.foundry_account.id
            pulumi.export("__ids", ids)

        rec = record(program, stack=settings.tier)
        return Built(recording=rec, outputs=rec.outputs, token_calls=calls)


@pytest.fixture(scope="session")
def harness() -> Harness:
    """Settings factory and recorder for ModelRegistry programs."""
    return Harness()
