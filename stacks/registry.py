"""The stack file's settings as ``ModelRegistryArgs``: every tier decision about the registry is made here.

``ModelRegistry`` knows nothing of tiers: it takes a SKU, retention days, a lock, whether names must be
re-creatable, which images to build and which Foundry deployments to create. This module decides those
from an ``EnvironmentSettings`` (prod: zone-redundant storage, 90-day vault retention, pinned model
versions, a CanNotDelete lock; dev: re-creatable names) and rejects what a tier forbids, each problem
naming the stack-file field, its value and the fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from components._standard import Lock
from components.domain import OnnxGenAIDeployment
from components.model_registry import (
    FoundryModelDeployment,
    ModelRegistryArgs,
    secret_expiry,
    validation_errors,
)
from stacks.settings import EnvironmentSettings

SOFT_DELETE_RETENTION_DAYS: Final[Mapping[str, int]] = {"prod": 90, "staging": 30}
"""Key Vault soft-delete retention by tier: the minimums of policy ``slm-keyvault-recovery``
(``policies/config/<tier>.json``); 7 days (Azure's minimum) on dev."""


def needs_onnx_server(settings: EnvironmentSettings) -> bool:
    """Whether any AKS deployment or edge fleet runs the ONNX Runtime GenAI server image."""
    on_aks = any(isinstance(d, OnnxGenAIDeployment) for d in settings.aks_deployments().values())
    at_edge = any(f.engine == "onnx-genai" and f.image is None for f in settings.edge.fleets.values())
    return on_aks or at_edge


def needs_model_fill(settings: EnvironmentSettings) -> bool:
    """Whether any AKS workload or container edge fleet fills its model volume from the registry (the
    fill image is built)."""
    return settings.weights_from_registry and (bool(settings.aks_deployments()) or any(
        f.delivery != "foundry-local" for f in settings.edge.fleets.values()))


def registry_lock(settings: EnvironmentSettings) -> Lock | None:
    """``settings.lock``, else ``CanNotDelete`` in prod, else none."""
    if settings.lock is not None:
        return Lock(kind=settings.lock)
    return Lock() if settings.tier == "prod" else None


def registry_problems(settings: EnvironmentSettings) -> list[str]:
    """What the tier forbids or the catalogue lacks, one line each naming the field, value and fix."""
    errors: list[str] = []
    prod = settings.tier == "prod"
    if not settings.uses_azure:
        errors.append(f"tier: {settings.tier!r} has no Azure resources; ModelRegistry needs dev, "
                      "staging or prod")
    for key, dep in settings.foundry_deployments().items():
        path = f"deployments.{key}"
        model = settings.models.get(dep.model)
        if model is None or model.artifacts.foundry is None:
            errors.append(f"{path}.model: {dep.model!r} has no Foundry artifact "
                          f"(models.{dep.model}.artifacts.foundry); add format/name/version from the "
                          "Foundry catalogue, or serve it on AKS instead")
        if dep.sku.endswith("ProvisionedManaged") and not prod:
            errors.append(f"{path}.sku: {dep.sku!r} is reserved capacity billed around the clock and "
                          f"is reserved for prod; use GlobalStandard or DataZoneStandard on {settings.tier}")
    if prod and settings.registry.sku != "Premium":
        errors.append(f"registry.sku: {settings.registry.sku!r} has no firewall or private endpoints; prod "
                      "requires Premium")
    if prod and settings.registry.secrets_rotated_on is None:
        errors.append("registry.secrets_rotated_on: required in prod, where Key Vault secrets must "
                      "expire; set it to the day the engine API key and Grafana password were last "
                      "rotated (e.g. 2026-01-15)")
    if prod and settings.foundry.public_network_access_enabled:
        errors.append("foundry.public_network_access_enabled: true is not allowed in prod; the "
                      "account is reached through its private endpoint")
    return errors


def foundry_deployments(settings: EnvironmentSettings) -> dict[str, FoundryModelDeployment]:
    """Each ``target: foundry`` deployment with its model's pinned Foundry artifact."""
    out: dict[str, FoundryModelDeployment] = {}
    for key, dep in settings.foundry_deployments().items():
        model = settings.models[dep.model].artifacts.foundry
        if model is None:  # registry_problems reported it
            continue
        out[key] = FoundryModelDeployment(model_format=model.format, model_name=model.name,
                                          model_version=model.version, sku_name=dep.sku,
                                          capacity=dep.capacity, rai_policy_name=dep.rai_policy)
    return out


def registry_args(settings: EnvironmentSettings, **wiring: Any) -> ModelRegistryArgs:
    """``ModelRegistryArgs`` from the settings; ``wiring`` adds (or overrides) the ids, secrets and
    standard interfaces that come from other components. Raises ``ValueError`` listing every problem."""
    prod = settings.tier == "prod"
    values: dict[str, Any] = {
        "name_prefix": settings.name_prefix,
        "recreatable": settings.tier == "dev",
        "registry_sku": settings.registry.sku,
        "untagged_manifest_retention_days": settings.registry.retention_days,
        "allowed_ip_ranges": list(settings.registry.allowed_ip_ranges),
        "zone_redundant_storage": prod,
        "blob_delete_retention_days": 30 if prod else 7,
        "vault_soft_delete_retention_days": SOFT_DELETE_RETENTION_DAYS.get(settings.tier, 7),
        "secrets_expire_at_unix_time": secret_expiry(settings.registry.secrets_rotated_on),
        "model_families": sorted({m.family for m in settings.models.values()}),
        "foundry_deployments": foundry_deployments(settings),
        "foundry_public_network_access_enabled": settings.foundry.public_network_access_enabled,
        "foundry_allowed_ip_ranges": list(settings.foundry.allowed_ip_ranges),
        "foundry_application_principal_ids": dict(settings.foundry.application_principal_ids),
        "auto_upgrade_model_versions": not prod,
        "onnx_server_image_enabled": needs_onnx_server(settings),
        "model_fill_image_enabled": needs_model_fill(settings),
        "lock": registry_lock(settings),
        "tags": settings.azure_tags(),
    }
    values.update(wiring)
    args = ModelRegistryArgs(**values)
    # The component checks its own args again; checking here too reports every problem in one message.
    problems = registry_problems(settings) + validation_errors(args)
    if problems:
        msg = "ModelRegistry 'models':\n" + "\n".join(f"- {e}" for e in problems)
        raise ValueError(msg)
    return args
