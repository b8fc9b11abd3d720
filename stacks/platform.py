"""``build(settings)``: the one place that knows how the components fit together.

Order matters and is the design: shared dependencies (``Foundation``) first; then the
``ModelRegistry`` (it grants the kubelet and workload identities their roles); then the
``InferenceCluster`` (it needs the registry's login server, vault and image); then the
``MonitoringStack`` (it scrapes the cluster's workloads); then one ``EdgeDevice`` per fleet.
On the ``local`` tier there is no Azure: only the cluster workloads and in-cluster monitoring.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import pulumi
from pulumi_azure_native import authorization
from pydantic import ValidationError

from components._standard import (
    DEPLOYER_DESCRIPTION,
    DiagnosticSetting,
    Lock,
    PrivateEndpointConfig,
    RoleAssignment,
)
from components.deploy_runner import APP_KEY_CONFIG, DeployRunner, DeployRunnerArgs, GitHubRunnerRegistration
from components.edge_device import IOT_HUB_PRIVATE_DNS_ZONE as IOT_HUB_ZONE
from components.edge_device import (
    EdgeDevice,
    EdgeDeviceArgs,
    EdgeHub,
    EdgeHubArgs,
    EdgePullToken,
    ModelPull,
    RegistryCredential,
)
from components.foundation import Foundation, FoundationArgs, Identity
from components.inference_cluster import InferenceCluster, KubeletIdentity, WorkloadIdentity
from components.model_registry import KNOWN_ZONES as REGISTRY_ZONES
from components.model_registry import ModelRegistry
from components.monitoring_stack import MonitoringStack
from components.registry.catalogue import artifact_sources
from components.serving_workloads import KeyVaultSecrets, ServingWorkloads
from policies.rules.catalog import monthly_usd
from stacks.monitoring import azure_target, monitoring_args
from stacks.registry import needs_model_fill, needs_onnx_server, registry_args
from stacks.serving import SERVING, cluster_args, keep_urns, old_parent_urn, workloads_args
from stacks.settings import EDGE_REGISTRY_TOKEN_PASSWORD_KEY, EnvironmentSettings


class StackConfigError(ValueError, pulumi.RunError):
    """A missing or wrong stack config value: one line naming the key and the command that sets it.

    A ``RunError`` so ``pulumi up`` prints the message without a traceback; a ``ValueError`` so
    ``slmctl`` reports it as bad input (exit 2)."""


def require_secret(full_key: str, why: str) -> pulumi.Output[str]:
    """``namespace:key`` read as a secret, or one clear line saying how to set it."""
    namespace, _, key = full_key.partition(":")
    value = pulumi.Config(namespace).get_secret(key)
    if value is None:
        msg = (f"secret config {full_key} is not set ({why}); set it with: "
               f"pulumi config set --secret {full_key} <value>")
        raise StackConfigError(msg)
    return value


@dataclass(frozen=True)
class PlatformSecrets:
    """The secret config values the platform needs; they stay ``pulumi.Output`` secrets."""

    engine_api_key: pulumi.Output[str]
    grafana_admin_password: pulumi.Output[str]
    hugging_face_token: pulumi.Output[str] | None = None
    """Only when a catalogue model is gated on Hugging Face (Gemma)."""
    alert_secrets: Mapping[str, pulumi.Output[str]] | None = None
    """The alert receivers' webhook URLs / routing keys / SMTP password, by ``namespace:key``."""

    @classmethod
    def from_config(cls, config: pulumi.Config, settings: EnvironmentSettings) -> PlatformSecrets:
        """Read them with ``require_secret`` (never ``get``: that would unwrap them)."""
        return cls(
            engine_api_key=config.require_secret("engineApiKey"),
            grafana_admin_password=config.require_secret("grafanaAdminPassword"),
            hugging_face_token=config.require_secret("huggingFaceToken")
            if settings.needs_hugging_face_token else None,
            alert_secrets={key: require_secret(key, "an alert receiver's secret (monitoring.receivers)")
                           for key in settings.monitoring.secret_keys()},
        )


def load_settings(raw: Mapping[str, Any], *, stack: str) -> EnvironmentSettings:
    """Validate the ``settings`` config object, failing with one line per problem (no traceback)."""
    from slmctl.messages import validation_problems  # one formatter for the CLI and the engine

    try:
        return EnvironmentSettings.model_validate(raw)
    except ValidationError as exc:
        problems = validation_problems(exc, f"stacks/Pulumi.{stack}.yaml", {})
        raise pulumi.RunError("invalid stack settings:\n" + "\n".join(problems)) from None


ClientConfig = authorization.GetClientConfigResult | pulumi.Output[Any]
"""The deploying identity and its tenant and subscription (``authorization.get_client_config_output()``)."""

SYSTEM_POOL: Final = "(system)"
"""The inline system pool in cost breakdowns; never a user pool key (those match ``^[a-z][a-z0-9]{0,11}$``)."""


def monthly_usd_by_pool(settings: EnvironmentSettings) -> dict[str, float]:
    """Worst-case monthly list cost per node pool (every pool at max_count); empty without Azure."""
    if not settings.uses_azure:
        return {}
    c = settings.cluster
    costs = {SYSTEM_POOL: round(monthly_usd(c.system_pool.vm_size, c.system_pool.count), 2)}
    for name, pool in sorted(c.pools.items()):
        costs[name] = round(monthly_usd(pool.vm_size, pool.max_count, spot=pool.spot), 2)
    return costs


def estimated_monthly_usd(settings: EnvironmentSettings) -> float:
    """Worst-case monthly list cost of the cluster's nodes (every pool at max_count): the stack output only.

    `pulumi up` exports it from settings (resource inputs are Outputs there). ``slmctl plan`` and the gate
    print the budget policy's estimate instead (``policies/rules/cost.py`` over every recorded resource: also
    the AKS tier, scale sets, ACI and PTUs), which is the figure a budget is judged by.
    """
    return round(sum(monthly_usd_by_pool(settings).values()), 2)


def build(settings: EnvironmentSettings, secrets: PlatformSecrets) -> dict[str, Any]:
    """Declare the whole environment; return the stack outputs."""
    tags = settings.azure_tags()
    if not settings.uses_azure:
        return _build_local(settings, secrets)

    client = authorization.get_client_config_output()
    lock = Lock(kind=settings.lock) if settings.lock else None
    private = settings.tier in {"staging", "prod"}
    foundation = Foundation("env", _foundation_args(settings, client.subscription_id, private=private, tags=tags))

    runner = _deploy_runner(settings, foundation, tags)

    registry = _registry(settings, foundation, client, secrets, private=private)
    cluster = _cluster(settings, foundation, registry, client, runner)
    serving = _serving(settings, foundation, registry, cluster=cluster, client=client, secrets=secrets)

    monitoring = MonitoringStack("observability", monitoring_args(
        settings,
        azure=azure_target(
            settings,
            resource_group_name=foundation.resource_group_name,
            subscription_id=client.subscription_id,
            cluster_id=cluster.cluster_id,
            cluster_name=cluster.cluster_name,
            log_analytics_workspace_id=foundation.log_analytics_workspace_id,
            azure_monitor_workspace_id=foundation.azure_monitor_workspace_id,
            private_endpoint_subnet_id=foundation.private_endpoint_subnet_id if private else None,
            private_dns_zone_ids=foundation.private_dns_zone_ids,
        ),
        kube_provider=cluster.kube_provider,
        workloads=serving.workloads,
        grafana_admin_password=secrets.grafana_admin_password,
        alert_secrets=secrets.alert_secrets,
        tags=tags,
    ))

    edge = _build_edge(settings, registry=registry, foundation=foundation, lock=lock, tags=tags, client=client,
                       engine_api_key=secrets.engine_api_key)

    return {
        "resource_group_name": foundation.resource_group_name,
        "cluster_name": cluster.cluster_name,
        "oidc_issuer_url": cluster.oidc_issuer_url,
        "registry_login_server": registry.registry_login_server,
        "key_vault_uri": registry.key_vault_uri,
        "foundry_endpoint": registry.foundry_endpoint,
        "grafana_endpoint": monitoring.grafana_endpoint,
        "serving_endpoints": _endpoints(settings, serving),
        "edge_fleets": edge,
        "estimated_monthly_usd": estimated_monthly_usd(settings),
    }


def _registry(settings: EnvironmentSettings, foundation: Foundation, client: ClientConfig, secrets: PlatformSecrets, *,
              private: bool) -> ModelRegistry:
    """The registry, firewalled to the AKS subnet on dev and behind private endpoints from staging up."""
    return ModelRegistry("models", registry_args(
        settings,
        resource_group_name=foundation.resource_group_name,
        location=settings.location,
        subscription_id=client.subscription_id,
        tenant_id=client.tenant_id,
        private_endpoint_subnet_id=foundation.private_endpoint_subnet_id if private else None,
        private_dns_zone_ids={z: i for z, i in foundation.private_dns_zone_ids.items() if z in REGISTRY_ZONES},
        allowed_subnet_ids=[] if private else [foundation.aks_subnet_id],
        log_analytics_workspace_id=foundation.log_analytics_workspace_id,
        kubelet_principal_id=foundation.kubelet_identity.principal_id,
        workload_principal_ids={k: v.principal_id for k, v in foundation.workload_identities.items()},
        engine_api_key=secrets.engine_api_key,
        grafana_admin_password=secrets.grafana_admin_password,
        hugging_face_token=secrets.hugging_face_token,
        role_assignments=_deployer_grants(settings, client),
    ))


def _cluster(settings: EnvironmentSettings, foundation: Foundation, registry: ModelRegistry, client: ClientConfig,
             runner: DeployRunner | None) -> InferenceCluster:
    """The AKS cluster on Foundation's subnet and identities, reachable by whoever runs ``pulumi up``."""
    return InferenceCluster(SERVING, cluster_args(
        settings,
        resource_group_name=foundation.resource_group_name,
        subscription_id=client.subscription_id,
        tenant_id=client.tenant_id,
        aks_subnet_id=foundation.aks_subnet_id,
        control_plane_identity_id=foundation.control_plane_identity.resource_id,
        prerequisites=foundation.aks_prerequisites,
        kubelet_identity=KubeletIdentity(
            resource_id=foundation.kubelet_identity.resource_id,
            client_id=foundation.kubelet_identity.client_id,
            object_id=foundation.kubelet_identity.principal_id,
        ),
        workload_identities={k: _workload_identity(v, foundation)
                             for k, v in foundation.workload_identities.items()},
        log_analytics_workspace_id=foundation.log_analytics_workspace_id,
        gateway_certificate_vault_id=registry.key_vault_id,
        # The in-VNet runner applies the Kubernetes resources; a public API server must admit its NAT egress IP.
        deployer_egress_cidrs=[runner.egress_ip.apply(lambda ip: f"{ip}/32")]
        if runner is not None and not settings.cluster.private_api_server else list(settings.deployer.egress_cidrs),
        # Azure Managed Prometheus: KEDA queries the shared workspace with its own federated identity.
        keda_identity=_workload_identity(foundation.keda_identity, foundation)
        if foundation.keda_identity else None,
        # Azure RBAC with local accounts off: whoever runs `pulumi up` applies the Kubernetes objects with
        # its Entra token, so it needs this role on the cluster (the provider waits for the grant).
        role_assignments={"deployer-aks-admin": RoleAssignment(
            role="Azure Kubernetes Service RBAC Cluster Admin", principal_id=client.object_id,
            principal_type=settings.deployer_principal_type,
            description=DEPLOYER_DESCRIPTION + "applies the Kubernetes objects")},
    ))


def _serving(settings: EnvironmentSettings, foundation: Foundation, registry: ModelRegistry, *,
             cluster: InferenceCluster, client: ClientConfig, secrets: PlatformSecrets) -> ServingWorkloads:
    """The workloads on the cluster, their secrets from the registry's vault, aliased to their old parent."""
    return ServingWorkloads(SERVING, workloads_args(
        settings,
        kube_provider=cluster.kube_provider,
        node_pools=list(cluster.pools.values()),
        workload_identity_client_ids={k: v.client_id for k, v in foundation.workload_identities.items()},
        key_vault=KeyVaultSecrets(
            vault_name=registry.key_vault_name, tenant_id=client.tenant_id,
            engine_api_key_secret_name=registry.engine_api_key_secret_name,
            hugging_face_token_secret_name=registry.hugging_face_token_secret_name),
        onnx_server_image=registry.onnx_server_image,
        model_fill_image=registry.model_fill_image,
        engine_api_key=secrets.engine_api_key,
        prometheus_server_address=foundation.prometheus_query_endpoint,
        prometheus_identity_client_id=foundation.keda_identity.client_id if foundation.keda_identity else None,
        gateway_ingress_class=cluster.gateway_ingress_class,
        gateway_namespace=cluster.gateway_namespace,
        # Unversioned, so the app-routing add-on picks up each renewal of the certificate.
        gateway_tls_certificate_uri=pulumi.Output.concat(
            registry.key_vault_uri, "certificates/", settings.cluster.gateway_certificate_name),
        gateway_certificate_grants=cluster.certificate_grants,
    ), opts=pulumi.ResourceOptions(transformations=[keep_urns(cluster)]))


def _deployer_grants(settings: EnvironmentSettings,
                     client: authorization.GetClientConfigResult | pulumi.Output[Any]) -> dict[str, RoleAssignment]:
    """What whoever runs `pulumi up` (and then `slmctl models sync`) needs on the registry."""
    grants: dict[str, RoleAssignment] = {}
    if needs_onnx_server(settings) or needs_model_fill(settings):
        # It pushes the ONNX server and registry fill images with an Entra token (no admin user).
        grants["deployer-push"] = RoleAssignment(
            role="AcrPush", principal_id=client.object_id, principal_type=settings.deployer_principal_type,
            description=DEPLOYER_DESCRIPTION + "pushes the ONNX server image")
    if artifact_sources(settings):
        # It mirrors the pinned weights into the weights storage (no account key: shared keys are off).
        grants["deployer-weights"] = RoleAssignment(
            role="Storage Blob Data Contributor", principal_id=client.object_id,
            principal_type=settings.deployer_principal_type,
            description=DEPLOYER_DESCRIPTION + "mirrors the pinned weights (slmctl models sync)")
    return grants


def _foundation_args(settings: EnvironmentSettings, subscription_id: pulumi.Input[str], *, private: bool,
                     tags: Mapping[str, str]) -> FoundationArgs:
    """Private DNS zones from staging up; an Azure Monitor workspace for Azure Managed Prometheus."""
    net = settings.network
    return FoundationArgs(
        name_prefix=settings.name_prefix, location=settings.location, subscription_id=subscription_id,
        vnet_cidr=net.vnet_cidr, aks_subnet_cidr=net.aks_subnet_cidr,
        private_endpoint_subnet_cidr=net.private_endpoint_subnet_cidr,
        workload_identity_names=sorted(settings.aks_deployments()), private_networking=private,
        log_retention_days=settings.monitoring.retention_days,
        azure_monitor_workspace_enabled=settings.monitoring.mode == "azure-managed", tags=tags)


def _deploy_runner(settings: EnvironmentSettings, foundation: Foundation,
                   tags: Mapping[str, str]) -> DeployRunner | None:
    """The in-VNet runner ``pulumi up`` runs on when ``deployer.location`` is ``in-vnet-runner``."""
    runner, cidr = settings.deployer.runner, settings.deploy_runner_subnet_cidr()
    label = settings.deploy_runner_label(pulumi.get_stack())  # the workflows' runs-on for this stack
    if settings.deployer.location != "in-vnet-runner" or runner is None or label is None or cidr is None:
        return None  # the settings validation requires deployer.runner with in-vnet-runner
    return DeployRunner("deploy", DeployRunnerArgs(
        name_prefix=settings.name_prefix, location=settings.location,
        resource_group_name=foundation.resource_group_name,
        virtual_network_name=foundation.virtual_network_name, subnet_cidr=cidr,
        registration=GitHubRunnerRegistration(
            repository=runner.github_repository, app_id=runner.github_app_id,
            installation_id=runner.github_app_installation_id, label=label),
        app_key=pulumi.Config("slm-platform").require_secret(APP_KEY_CONFIG),
        admin_ssh_public_key=runner.admin_ssh_public_key, vm_size=runner.vm_size,
        after=foundation.subnets, tags=tags))


def _workload_identity(identity: Identity, foundation: Foundation) -> WorkloadIdentity:
    return WorkloadIdentity(name=identity.name, resource_group_name=foundation.resource_group_name,
                            resource_id=identity.resource_id, client_id=identity.client_id,
                            principal_id=identity.principal_id)


def _build_local(settings: EnvironmentSettings, secrets: PlatformSecrets) -> dict[str, Any]:
    """The workloads and in-cluster monitoring on the kubeconfig context; no Azure resource at all."""
    # Before issue 16 the provider and the workloads were children of InferenceCluster 'serving'.
    serving = ServingWorkloads(SERVING, workloads_args(
        settings, kube_context=settings.cluster.kube_context, engine_api_key=secrets.engine_api_key,
        hugging_face_token=secrets.hugging_face_token,
    ), opts=pulumi.ResourceOptions(transformations=[keep_urns(old_parent_urn())]))
    monitoring = MonitoringStack("observability", monitoring_args(
        settings, kube_provider=serving.kube_provider, workloads=serving.workloads,
        grafana_admin_password=secrets.grafana_admin_password, alert_secrets=secrets.alert_secrets,
    ))
    return {
        "serving_endpoints": _endpoints(settings, serving),
        "grafana_endpoint": monitoring.grafana_endpoint,
        "estimated_monthly_usd": 0.0,
    }


def _endpoints(settings: EnvironmentSettings, serving: ServingWorkloads) -> dict[str, str]:
    host = settings.cluster.gateway_hostname
    return {name: f"https://{host}/{name}/v1" for name in sorted(serving.workloads)}


def _build_edge(settings: EnvironmentSettings, *, registry: ModelRegistry, foundation: Foundation,
                lock: Lock | None, tags: Mapping[str, str],
                client: authorization.GetClientConfigResult | pulumi.Output[Any],
                engine_api_key: pulumi.Output[str]) -> list[str]:
    """One shared ``EdgeHub`` when any fleet uses IoT Edge, a pull token when any fleet runs
    containers, then one ``EdgeDevice`` per fleet."""
    fleets = settings.edge.fleets
    pull_credential = None
    if any(f.delivery != "foundry-local" for f in fleets.values()):
        token = EdgePullToken("edge-pull", registry_name=registry.registry_name,
                              resource_group_name=foundation.resource_group_name,
                              model_ids=sorted({f.model for f in fleets.values() if f.delivery != "foundry-local"}))
        pull_credential = RegistryCredential(
            address=registry.registry_login_server, username=token.token_name,
            password=require_secret(EDGE_REGISTRY_TOKEN_PASSWORD_KEY,
                                    "the password of the registry token edge devices pull with: "
                                    f"az acr token credential generate -n {token.token_name} --password1"))
    hub = None
    if any(f.delivery == "iot-edge" for f in fleets.values()):
        hub = EdgeHub("edge", EdgeHubArgs(
            resource_group_name=foundation.resource_group_name, location=settings.location,
            public_network_access_enabled=settings.tier != "prod", tags=tags, lock=lock,
            subscription_id=client.subscription_id,
            # The IoT Edge deployments are applied through the hub's data plane with an Entra token
            # of whoever runs `pulumi up` (local auth is off), so that principal needs this role.
            role_assignments={"deployer": RoleAssignment(
                role="IoT Hub Data Contributor", principal_id=client.object_id,
                principal_type=settings.deployer_principal_type,
                description=DEPLOYER_DESCRIPTION + "applies the IoT Edge configurations")},
            # Public access is off in prod: the hub is reached through a private endpoint in the VNet.
            private_endpoint=PrivateEndpointConfig(
                subnet_id=foundation.private_endpoint_subnet_id,
                private_dns_zone_ids=[foundation.private_dns_zone_ids[IOT_HUB_ZONE]])
            if settings.tier == "prod" else None,
            diagnostic_settings={"law": DiagnosticSetting(
                workspace_resource_id=foundation.log_analytics_workspace_id)},
        ))
    model_pull = None
    if settings.weights_from_registry and registry.model_fill_image is not None:
        # Devices reach the private registry the way they reach the IoT Hub: over the site's
        # ExpressRoute/VPN to the private endpoints, never the internet (docs/adding-an-edge-fleet.md).
        pe_cidr = settings.network.private_endpoint_subnet_cidr
        model_pull = ModelPull(
            login_server=registry.registry_login_server, fill_image=registry.model_fill_image,
            network_path=(f"the registry's private endpoint in {pe_cidr} over the site's ExpressRoute/VPN "
                          "(privatelink.azurecr.io forwarded to the VNet's DNS); no internet"),
            egress_cidrs=(pe_cidr,))
    for name, fleet in sorted(fleets.items()):
        EdgeDevice(f"edge-{name}", EdgeDeviceArgs(
            fleet_name=name, fleet=fleet, device_class_name=fleet.device_class,
            device_class=settings.edge.device_classes[fleet.device_class],
            model_id=fleet.model, model=settings.models[fleet.model],
            kubeconfig=require_secret(fleet.kubeconfig_key(name),
                                      f"edge.fleets.{name} is a kubernetes fleet: its cluster's kubeconfig; "
                                      "e.g. \"$(cat k3s.yaml)\"")
            if fleet.delivery == "kubernetes" else None,
            engine_api_key=engine_api_key,
            registry_credential=pull_credential if fleet.delivery != "foundry-local" else None,
            model_pull=model_pull if fleet.delivery != "foundry-local" else None,
            iot_hub_host_name=hub.hub_host_name if hub is not None and fleet.delivery == "iot-edge" else None,
            iot_hub_grants=hub.grants if hub is not None and fleet.delivery == "iot-edge" else (),
            onnx_server_image=registry.onnx_server_image,
            digest_pinning_required=settings.tier == "prod",
            labels={"environment": settings.environment},
        ))
    return sorted(fleets)
