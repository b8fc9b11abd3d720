"""Our stack file -> ``InferenceClusterArgs`` and ``ServingWorkloadsArgs``: the tier decisions they do not make.

``InferenceCluster`` (the AKS cluster) and ``ServingWorkloads`` (the models on any cluster) take explicit
values: a private API server, Defender, Managed Prometheus, the pools, replica bounds, digest pinning,
where weights come from, which namespaces may reach the pods. This module derives them from an
``EnvironmentSettings`` and rejects what a tier forbids; ``stacks/platform.py`` adds the ids of the
resources built before them.

Until issue 16 one ``InferenceCluster`` named ``serving`` owned both the cluster and the workloads. The
cluster kept that name, type and so every URN; the workloads moved to a ``ServingWorkloads`` of the same
name, and ``keep_urns`` aliases each of its children to its old parent, so ``pulumi up`` updates an existing
stack in place instead of replacing its namespaces and Deployments (tests/plan/test_serving_aliases.py).
"""

from __future__ import annotations

from typing import Any, Final

import pulumi

from components.domain import DEPLOYMENT_ARTIFACT, AksDeployment
from components.engines.spec import RegistryFill
from components.inference_cluster import TYPE_TOKEN as CLUSTER_TYPE
from components.inference_cluster import InferenceClusterArgs
from components.model_registry import physical_names
from components.registry.catalogue import source_for, storage_account_url
from components.serving_workloads import ClusterAddons, ServingWorkloads, ServingWorkloadsArgs
from policies.rules.reachability import AMA_METRICS_POD_LABELS
from stacks.settings import EnvironmentSettings

SERVING: Final = "serving"
"""The logical name of both components (and so the prefix of every child's name)."""


def cluster_problems(settings: EnvironmentSettings) -> list[str]:
    """What the tier forbids about the cluster, one line each naming the stack-file field and the fix."""
    errors: list[str] = []
    cluster = settings.cluster
    if not cluster.private_api_server and not cluster.authorized_ip_ranges:
        errors.append(f"cluster.authorized_ip_ranges: empty on a public API server ({settings.tier} tier) would "
                      "open it to the internet; list your office/CI CIDRs or set cluster.private_api_server: true")
    for pool_name, pool in sorted(cluster.pools.items()):
        if settings.tier == "dev" and pool.is_gpu and pool.min_count != 0:
            errors.append(f"cluster.pools.{pool_name}.min_count: {pool.min_count} keeps GPU nodes running in dev; "
                          "set 0 (the pool scales up when a pod needs it)")
    return errors


def cluster_args(settings: EnvironmentSettings, **wiring: Any) -> InferenceClusterArgs:
    """``InferenceClusterArgs`` from the settings; ``wiring`` adds the ids, identities and standard interfaces."""
    problems = cluster_problems(settings)
    if problems:
        msg = f"InferenceCluster {SERVING!r}:\n" + "\n".join(f"- {e}" for e in problems)
        raise ValueError(msg)
    c = settings.cluster
    values: dict[str, Any] = {
        "name_prefix": settings.name_prefix,
        "location": settings.location,
        "kubernetes_version": c.kubernetes_version,
        "sku_tier": c.sku_tier,
        "system_pool": c.system_pool,
        "pools": dict(c.pools),
        "admin_group_object_ids": list(c.admin_group_object_ids),
        "private_api_server": c.private_api_server,
        "authorized_ip_ranges": list(c.authorized_ip_ranges),
        "internal_gateway": c.private_api_server,
        "upgrade_channel": c.upgrade_channel,
        "node_os_upgrade_channel": c.node_os_upgrade_channel,
        "defender_enabled": settings.tier == "prod",
        "azure_monitor_metrics_enabled": settings.monitoring.mode == "azure-managed",
        "gpu_operator": c.gpu_driver == "gpu-operator",
        "tags": settings.azure_tags(),
    }
    values.update(wiring)
    return InferenceClusterArgs(**values)


def registry_fill(settings: EnvironmentSettings, dep: AksDeployment) -> RegistryFill | None:
    """Where deployment ``dep``'s fill step reads from, when its weights come from the registry."""
    if not settings.weights_from_registry:
        return None
    source = source_for(settings, dep.model, DEPLOYMENT_ARTIFACT[dep.target])  # type: ignore[arg-type]
    if source is None:
        return None  # settings validation already reported the missing artifact
    return RegistryFill(account_url=storage_account_url(physical_names(settings.name_prefix).storage_account),
                        container=source.container, model=source.model, revision=source.revision,
                        manifest_sha256=source.manifest_sha256)


def workloads_args(settings: EnvironmentSettings, **wiring: Any) -> ServingWorkloadsArgs:
    """``ServingWorkloadsArgs`` from the settings; ``wiring`` adds the provider, secrets, images and ids."""
    c = settings.cluster
    deployments = dict(sorted(settings.aks_deployments().items()))
    fills = {name: fill for name, dep in deployments.items() if (fill := registry_fill(settings, dep)) is not None}
    values: dict[str, Any] = {
        "deployments": deployments,
        "models": dict(settings.models),
        "gateway_hostname": c.gateway_hostname,
        # A laptop cluster has none of the stack file's pools: no node selectors there.
        "pools": dict(c.pools) if settings.uses_azure else {},
        "default_replicas": settings.replicas,
        "digest_pinning_required": settings.tier == "prod",
        "registry_fills": fills,
        # Staging and prod reach the weights storage only through its private endpoint.
        "private_endpoint_cidr": settings.network.private_endpoint_subnet_cidr
        if settings.tier in {"staging", "prod"} else None,
        "metrics_scraper_namespace": "kube-system" if settings.monitoring.mode == "azure-managed" else None,
        "metrics_scraper_pod_labels": (dict(AMA_METRICS_POD_LABELS) if settings.monitoring.mode == "azure-managed"
                                       else None),
        "addons": ClusterAddons.PROVIDED if settings.uses_azure else ClusterAddons(c.local_addons),
    }
    values.update(wiring)
    return ServingWorkloadsArgs(**values)


def old_parent_urn() -> pulumi.Output[str]:
    """The URN of the pre-split ``InferenceCluster`` ``serving`` in this stack (the engine's form, no Stack type)."""
    return pulumi.create_urn(SERVING, CLUSTER_TYPE)


def keep_urns(old_parent: pulumi.Resource | pulumi.Input[str]) -> pulumi.ResourceTransformation:
    """A transformation for ``ServingWorkloads``: each child is aliased to ``old_parent``, where it lived before
    the split, so ``pulumi up`` finds it by its old URN and updates it in place (same name, same type)."""

    def transform(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
        if isinstance(args.resource, ServingWorkloads):
            return None
        return pulumi.ResourceTransformationResult(props=args.props, opts=pulumi.ResourceOptions.merge(
            args.opts, pulumi.ResourceOptions(aliases=[pulumi.Alias(parent=old_parent)])))

    return transform
