"""InferenceCluster: AKS with GPU/CPU pools, and the hardened, autoscaled serving workloads on it.

On Azure tiers it creates the cluster and its pools; on ``local`` it creates no Azure resource and
deploys the same workloads to the kubeconfig context from the settings. Engine specifics come from
the pure adapters in ``components.engines``; this module only turns them into typed Kubernetes
objects (never YAML or Helm for our own workloads, so tests and the policy pack see them).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import pulumi
import pulumi_kubernetes as k8s
from pulumi_azure_native import containerservice, managedidentity

from components._security import container_security, namespace_labels, pod_security
from components._standard import (
    DiagnosticSetting,
    RoleAssignment,
    StandardInterfaces,
    apply_diagnostic_settings,
    apply_lock,
    apply_role_assignments,
)
from components.domain import DEPLOYMENT_ARTIFACT, AksDeployment, NodePool
from components.domain.catalogue import VM_SKUS, VmSku
from components.domain.fit import shape_annotations
from components.engines import container_for
from components.engines import vllm as vllm_engine
from components.engines.scaling import ScalePlan, scale_plan
from components.engines.spec import (
    ALLOWED_GATEWAY_PATHS,
    FILL_IMAGE_FROM_REGISTRY,
    ContainerSpec,
    Engine,
    RegistryFill,
    image_is_digest_pinned,
)
from components.kubeconfig import non_interactive
from components.model_registry import physical_names
from components.monitoring.helm_values import GPU_NODE_AGENT_TOLERATIONS
from components.registry.catalogue import source_for, storage_account_url
from policies.rules.egress import ENTRA_ID_LOGIN_CIDRS
from policies.rules.plan_graph import DEFAULT_MAX_PODS, node_allocatable
from stacks.settings import EnvironmentSettings

GPU_TAINT: Final = "sku=gpu:NoSchedule"
SYSTEM_TAINT: Final = "CriticalAddonsOnly=true:NoSchedule"
SPOT_TAINT_KEY: Final = "kubernetes.azure.com/scalesetpriority"
POOL_LABEL: Final = "kubernetes.azure.com/agentpool"
API_KEY_SECRET: Final = "engine-api-key"  # noqa: S105 (the Secret's name, not its value)
API_KEY_SECRET_KEY: Final = "api-key"  # noqa: S105 (a key name inside the Secret)
HF_TOKEN_SECRET_KEY: Final = vllm_engine.HF_TOKEN_SECRET_KEY
CSI_MOUNT_PATH: Final = "/mnt/secrets-store"
TOKEN_AUDIENCE: Final = "api://AzureADTokenExchange"  # noqa: S105 (Entra's fixed audience)
APP_ROUTING_CLASS: Final = "webapprouting.kubernetes.azure.com"
APP_ROUTING_NAMESPACE: Final = "app-routing-system"
GPU_OPERATOR_CHART_VERSION: Final = "v25.3.0"
"""NVIDIA GPU Operator chart version (helm.ngc.nvidia.com/nvidia). Pinned; bump deliberately."""
GPU_OPERATOR_REPO: Final = "https://helm.ngc.nvidia.com/nvidia"
DEVICE_PLUGIN_CHART_VERSION: Final = "0.17.1"
"""NVIDIA k8s-device-plugin chart (seen pinned in public Terraform; verify with ``helm search repo``)."""
DEVICE_PLUGIN_REPO: Final = "https://nvidia.github.io/k8s-device-plugin"
KEDA_REPO: Final = "https://kedacore.github.io/charts"
KEDA_CHART_VERSION: Final = "2.20.2"
"""KEDA chart (kedacore/charts) the ``local`` tier installs: the ScaledObject CRD and operator. AKS
uses its managed KEDA add-on instead."""
INGRESS_NGINX_REPO: Final = "https://kubernetes.github.io/ingress-nginx"
INGRESS_NGINX_CHART_VERSION: Final = "4.13.3"
"""ingress-nginx chart (controller 1.13.x) the ``local`` tier installs for the ``nginx`` gateway
class. AKS uses the app-routing add-on instead."""
ONNX_IMAGE_FROM_REGISTRY: Final = "registry-built/onnx-server"
"""Placeholder handed to the pure ONNX adapter when the image is a ``pulumi.Output`` (ModelRegistry
builds it); the component substitutes the Output when it declares the container."""
PART_OF: Final = "slm-platform"


# --------------------------------------------------------------------------- args and outputs


@dataclass(frozen=True, kw_only=True)
class KubeletIdentity:
    """The user-assigned identity the nodes (kubelet) use, e.g. to pull from ACR."""

    resource_id: pulumi.Input[str]
    client_id: pulumi.Input[str]
    object_id: pulumi.Input[str]


@dataclass(frozen=True, kw_only=True)
class WorkloadIdentity:
    """A user-assigned identity one serving workload's service account federates to."""

    name: pulumi.Input[str]
    """The identity's resource name (the federated credential is its child)."""
    resource_group_name: pulumi.Input[str]
    resource_id: pulumi.Input[str]
    client_id: pulumi.Input[str]
    principal_id: pulumi.Input[str]


@dataclass(frozen=True, kw_only=True)
class ServingWorkload:
    """One serving workload, as plain values (MonitoringStack builds ServiceMonitors from it)."""

    deployment: str
    engine: Engine
    namespace: str
    service_name: str
    port: int
    metrics_path: str | None
    """``None`` for Ollama: it has no ``/metrics`` (seed defect D4)."""
    served_model_name: str
    pod_labels: Mapping[str, str]
    gpu: bool


@dataclass(frozen=True, kw_only=True)
class InferenceClusterArgs(StandardInterfaces):
    """Inputs of ``InferenceCluster``. Azure ids are ``None`` on the ``local`` tier."""

    settings: EnvironmentSettings
    location: str
    resource_group_name: pulumi.Input[str] | None = None
    """Required on Azure tiers."""
    subscription_id: pulumi.Input[str] | None = None
    """Required on Azure tiers (role-assignment ids are built from it)."""
    tenant_id: pulumi.Input[str] | None = None
    """Required on Azure tiers (Entra ID and the Key Vault CSI provider)."""
    aks_subnet_id: pulumi.Input[str] | None = None
    """The subnet every pool joins. ``None`` means the ``local`` tier: no Azure resources at all."""
    control_plane_identity_id: pulumi.Input[str] | None = None
    """Resource id of the control plane's user-assigned identity (needs Managed Identity Operator
    on the kubelet identity and Network Contributor on the subnet; granted by the caller)."""
    kubelet_identity: KubeletIdentity | None = None
    prerequisites: Sequence[pulumi.Resource] = ()
    """Default: none. What AKS needs before it creates the cluster, typically the two grants above
    (``Foundation.aks_prerequisites``): the cluster waits for them (``depends_on``), else the create races
    them and fails on a bring-your-own kubelet identity or subnet it may not yet use."""
    workload_identities: Mapping[str, WorkloadIdentity] = field(default_factory=dict[str, WorkloadIdentity])
    """One per AKS deployment, keyed by deployment name (required on Azure tiers)."""
    log_analytics_workspace_id: pulumi.Input[str] | None = None
    """Container Insights, Defender and the audit diagnostic setting write here."""
    registry_login_server: pulumi.Input[str] | None = None
    """Informational: images are referenced by full name; AcrPull for the kubelet is the caller's."""
    key_vault_name: pulumi.Input[str] | None = None
    """The vault holding the engine API key (Azure tiers); synced by the CSI driver."""
    engine_api_key_secret_name: str | None = None
    """The Key Vault secret name of the engine API key (Azure tiers)."""
    onnx_server_image: pulumi.Input[str] | None = None
    """Default: none; required for ``onnx-genai`` deployments without their own ``image``."""
    model_fill_image: pulumi.Input[str] | None = None
    """The registry fill step's image (ModelRegistry builds ``components/registry/fill``). Required when
    ``settings.weights_from_registry`` (staging and prod): every model volume is filled by it."""
    engine_api_key: pulumi.Input[str] | None = None
    """Secret. Used on ``local`` only (a plain Kubernetes Secret, since there is no Key Vault)."""
    hugging_face_token_secret_name: str | None = None
    """Default: none. The Key Vault secret holding the Hugging Face token that gated models
    (``ModelSpec.gated``) download with; synced by the CSI driver next to the API key."""
    hugging_face_token: pulumi.Input[str] | None = None
    """Secret. ``local`` only: the Hugging Face token for gated models (no Key Vault there)."""
    monitoring_namespace: str = "monitoring"
    """Default: ``monitoring``: where in-cluster Prometheus runs; its pods may reach the metrics ports.
    With Azure Managed Prometheus (``monitoring.mode: azure-managed``) the scraper is ``ama-metrics`` in
    ``kube-system``, so that namespace is admitted instead (policy ``slm-reach-metrics-scraper``)."""
    prometheus_server_address: pulumi.Input[str] | None = None
    """Default: ``http://prometheus-operated.<monitoring_namespace>.svc:9090`` (the Service the
    Prometheus operator creates). KEDA queries it for the queue-depth triggers."""
    prometheus_identity_client_id: pulumi.Input[str] | None = None
    """Default: none (unauthenticated in-cluster Prometheus). With Azure Managed Prometheus, the
    client id of an identity federated to KEDA's operator with Monitoring Data Reader on the
    workspace; a ``TriggerAuthentication`` (azure-workload) is then created per namespace."""
    keda_identity: WorkloadIdentity | None = None
    """Default: none. With Azure Managed Prometheus, the identity whose client id is
    ``prometheus_identity_client_id``: the component federates it to KEDA's operator service
    account (``kube-system:keda-operator``) on the cluster's OIDC issuer."""
    gateway_ingress_class: str | None = None
    """Default: ``webapprouting.kubernetes.azure.com`` (the AKS app-routing add-on, enabled here) on
    Azure, ``nginx`` on ``local``."""
    gateway_namespace: str | None = None
    """Default: ``app-routing-system`` on Azure, ``ingress-nginx`` on ``local``: the namespace
    whose pods may reach the serving ports."""
    gateway_tls_secret_name: str = "gateway-tls"  # noqa: S105 (a Secret name)
    """Default: ``gateway-tls``, a TLS Secret you create in each serving namespace (``local``: e.g. with
    cert-manager or ``kubectl create secret tls``). Unused with ``gateway_tls_certificate_uri``."""
    gateway_tls_certificate_uri: pulumi.Input[str] | None = None
    """Default: none. The unversioned Key Vault certificate URI the app-routing add-on syncs into the Secret
    ``keyvault-<ingress name>`` it serves (the add-on's naming). Needs ``key_vault_id``: the add-on's identity
    is granted *Key Vault Certificate User* on it before any Ingress is created."""
    key_vault_id: pulumi.Input[str] | None = None
    """The vault holding the gateway certificate (Azure tiers)."""
    deployer_egress_cidrs: Sequence[pulumi.Input[str]] = ()
    """Default: none. CIDRs ``pulumi up`` reaches a public API server from (e.g. the in-VNet runner's NAT IP);
    added to ``cluster.authorized_ip_ranges`` so the deployer can apply the Kubernetes resources."""


# --------------------------------------------------------------------------- pure planning


@dataclass(frozen=True, kw_only=True)
class WorkloadPlan:
    """Everything about one workload that can be decided from plain values."""

    name: str
    namespace: str
    service_account: str
    spec: ContainerSpec
    pool: str | None
    sku: VmSku | None
    spot: bool
    selector: Mapping[str, str]
    pod_labels: Mapping[str, str]
    scale: ScalePlan
    checkov_skips: tuple[str, ...]


def workload_plan(settings: EnvironmentSettings, name: str, dep: AksDeployment, *,
                  onnx_image: str | None) -> WorkloadPlan:
    """Decide the container, labels, pool and scaling of deployment ``name`` (no resources)."""
    model = settings.models[dep.model]
    pool: NodePool | None = None
    if settings.uses_azure and dep.pool is not None:
        pool = settings.cluster.pools[dep.pool]
    sku = VM_SKUS[pool.vm_size] if pool is not None else None
    spec = container_for(name, dep, model, sku, api_key_secret=API_KEY_SECRET, onnx_server_image=onnx_image,
                         digest_pinned_default=settings.tier == "prod", registry=registry_fill(settings, dep))
    images = [spec.image, *(s.image for s in spec.init_steps)]
    built = {ONNX_IMAGE_FROM_REGISTRY, FILL_IMAGE_FROM_REGISTRY}
    unpinned = sorted({i for i in images if i not in built and not image_is_digest_pinned(i)})
    if settings.tier == "prod" and unpinned:
        msg = (f"deployments.{name}.image: {', '.join(unpinned)} is not pinned by digest; prod images must be "
               "'repo:tag@sha256:<digest>'")
        raise ValueError(msg)
    selector = {"app.kubernetes.io/name": spec.engine, "app.kubernetes.io/instance": name}
    labels = {
        **selector,
        "app.kubernetes.io/component": "inference",
        "app.kubernetes.io/part-of": PART_OF,
        "slm.io/model": dep.model,
        "slm.io/engine": spec.engine,
    }
    if settings.uses_azure:
        labels["azure.workload.identity/use"] = "true"
    replicas = settings.replicas_for(dep)
    skips: list[str] = []
    if unpinned:
        skips.append(f"CKV_K8S_43=tag-pinned image on the {settings.tier} tier; prod requires digests "
                     "(component check and policy K8S-08)")
    if spec.secret_env:
        skips.append("CKV_K8S_35=the engine reads its API key only from an environment variable; it comes "
                     "from a Secret synced by the Key Vault CSI driver (secretKeyRef, never a literal)")
    return WorkloadPlan(
        name=name,
        namespace=f"slm-{name}",
        service_account=name,
        spec=spec,
        pool=dep.pool if pool is not None else None,
        sku=sku,
        spot=pool.spot if pool is not None else False,
        selector=selector,
        pod_labels=labels,
        scale=scale_plan(spec, min_replicas=replicas.min, max_replicas=replicas.max,
                         queue_threshold=dep.slo.queue_backlog_requests),
        checkov_skips=tuple(skips),
    )


@dataclass(frozen=True)
class Rollout:
    """A Deployment's rolling-update bounds."""

    max_surge: int
    max_unavailable: int


SURGE_ROLLOUT: Final = Rollout(max_surge=1, max_unavailable=0)
"""Zero-downtime: a new pod starts before an old one stops (needs a free slot per rolling workload)."""
REPLACE_ROLLOUT: Final = Rollout(max_surge=0, max_unavailable=1)
"""Replace one pod at a time: always finishes when the max replicas fit (one replica is briefly down)."""


def pods_per_node(spec: ContainerSpec, sku: VmSku) -> int:
    """How many pods of ``spec`` one node of ``sku`` holds (whole GPUs, AKS allocatable CPU and memory)."""
    cpu_m, memory_mib = node_allocatable(sku, DEFAULT_MAX_PODS["overlay"])
    res = spec.resources
    fits = [int(cpu_m // res.cpu_millicores) if res.cpu_millicores else 10**6,
            int(memory_mib // res.memory_mib) if res.memory_mib else 10**6]
    if res.gpus:
        fits.append(sku.gpu_count // res.gpus)
    return max(0, min(fits))


def rollouts(settings: EnvironmentSettings, plans: Mapping[str, WorkloadPlan]) -> dict[str, Rollout]:
    """Per pool, the rollout every deployment on it can always finish (issue 17, defect 15).

    A surge rollout needs one free pod slot per workload that may roll at once (``pulumi up`` rolls
    them together). When the pool's slots at ``max_count`` hold every workload's max replicas plus
    one surge pod each, keep zero-downtime surge; otherwise replace one pod at a time. The policy
    ``slm-gpu-pool-capacity`` checks the same numbers on the plan.
    """
    out: dict[str, Rollout] = dict.fromkeys(plans, SURGE_ROLLOUT)
    by_pool: dict[str, list[WorkloadPlan]] = {}
    for plan in plans.values():
        if plan.pool is not None and plan.sku is not None:
            by_pool.setdefault(plan.pool, []).append(plan)
    for pool_name, members in by_pool.items():
        pool = settings.cluster.pools[pool_name]
        demand = sum(p.scale.max_replicas for p in members)
        slots = pool.max_count * min(pods_per_node(p.spec, p.sku) for p in members if p.sku is not None)
        if demand + len(members) > slots:
            out |= {p.name: REPLACE_ROLLOUT for p in members}
    return out


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


def api_server_access(settings: EnvironmentSettings, deployer_egress_cidrs: Sequence[pulumi.Input[str]] = (),
                      ) -> containerservice.ManagedClusterAPIServerAccessProfileArgs:
    """Private API server, or a public one restricted to the listed CIDRs (and the deployer's); never open to all."""
    cluster = settings.cluster
    if cluster.private_api_server:
        return containerservice.ManagedClusterAPIServerAccessProfileArgs(
            enable_private_cluster=True, enable_private_cluster_public_fqdn=False, disable_run_command=True)
    if not cluster.authorized_ip_ranges:
        msg = (f"cluster.authorized_ip_ranges: empty on a public API server ({settings.tier} tier) would open it "
               "to the internet; list your office/CI CIDRs or set cluster.private_api_server: true")
        raise ValueError(msg)
    return containerservice.ManagedClusterAPIServerAccessProfileArgs(
        authorized_ip_ranges=[*cluster.authorized_ip_ranges, *deployer_egress_cidrs], disable_run_command=True)


def gateway_controller_type(settings: EnvironmentSettings) -> str:
    """``Internal`` (an internal load balancer, no public IP) where the tier is private, else ``External``."""
    return "Internal" if settings.cluster.private_api_server else "External"


def validate_args(args: InferenceClusterArgs, plans: Mapping[str, WorkloadPlan]) -> None:
    """Fail before any resource is declared, naming every missing input and the fix."""
    settings = args.settings
    if not settings.uses_azure:
        needs_key = sorted(n for n, p in plans.items() if p.spec.secret_env)
        if args.engine_api_key is None and needs_key:
            msg = (f"engine_api_key: required on the local tier for {', '.join(needs_key)} (there is no Key "
                   "Vault to hold it)")
            raise ValueError(msg)
        return
    required = {
        "resource_group_name": args.resource_group_name, "subscription_id": args.subscription_id,
        "tenant_id": args.tenant_id, "aks_subnet_id": args.aks_subnet_id,
        "control_plane_identity_id": args.control_plane_identity_id, "kubelet_identity": args.kubelet_identity,
        "log_analytics_workspace_id": args.log_analytics_workspace_id, "key_vault_name": args.key_vault_name,
        "engine_api_key_secret_name": args.engine_api_key_secret_name,
    }
    missing = [k for k, v in required.items() if v is None]
    if missing:
        msg = f"InferenceClusterArgs: {', '.join(missing)} required on the {settings.tier} tier"
        raise ValueError(msg)
    filled = sorted(n for n, p in plans.items() if any(s.image == FILL_IMAGE_FROM_REGISTRY for s in p.spec.init_steps))
    if filled and args.model_fill_image is None:
        msg = (f"model_fill_image: required for {', '.join(filled)} (weights come from the registry); pass "
               "ModelRegistry.model_fill_image")
        raise ValueError(msg)
    absent = sorted(set(settings.aks_deployments()) - set(args.workload_identities))
    if absent:
        msg = (f"workload_identities: no identity for deployment(s) {', '.join(absent)}; create a "
               "user-assigned identity 'wi-<deployment>' for each and pass it keyed by deployment name")
        raise ValueError(msg)
    for pool_name, pool in sorted(settings.cluster.pools.items()):
        if settings.tier == "dev" and pool.is_gpu and pool.min_count != 0:
            msg = (f"cluster.pools.{pool_name}.min_count: {pool.min_count} keeps GPU nodes running in dev; "
                   "set 0 (the pool scales up when a pod needs it)")
            raise ValueError(msg)
    api_server_access(settings)


def gpu_operator_values() -> dict[str, Any]:
    """Typed, pinned values for the NVIDIA GPU Operator chart (driver + toolkit + DCGM exporter)."""
    tolerations = [
        {"key": "sku", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"},
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
        {"key": SPOT_TAINT_KEY, "operator": "Equal", "value": "spot", "effect": "NoSchedule"},
    ]
    return {
        "driver": {"enabled": True},
        "toolkit": {"enabled": True},
        "devicePlugin": {"enabled": True},
        "dcgmExporter": {"enabled": True, "serviceMonitor": {"enabled": False}},
        "migManager": {"enabled": False},
        "daemonsets": {"tolerations": tolerations},
        "node-feature-discovery": {"worker": {"tolerations": tolerations}},
    }


def _quantity_gib(gib: float) -> str:
    return f"{int(gib * 1024)}Mi"


# --------------------------------------------------------------------------- the component


class InferenceCluster(pulumi.ComponentResource):
    """AKS (or a local cluster) serving small language models.

    Creates on Azure tiers: one ``ManagedCluster`` (system pool inline, tainted
    ``CriticalAddonsOnly``; managed Entra ID + Azure RBAC, local accounts off; Azure CNI overlay with
    Cilium; OIDC issuer and workload identity; Key Vault CSI with rotation, Azure Policy, Container
    Insights, KEDA, app routing; private or IP-restricted API server; encryption at host; Defender in
    prod), one ``AgentPool`` per ``settings.cluster.pools`` entry (GPU pools tainted
    ``sku=gpu:NoSchedule``, autoscaled, no public IPs), one federated credential per workload, the
    audit diagnostic setting, role assignments and lock, and the NVIDIA GPU Operator release when
    ``gpu_driver`` is ``gpu-operator``. Then per AKS deployment: a restricted Namespace, a
    ServiceAccount, the API-key Secret source (``SecretProviderClass`` on Azure, a Secret on local),
    a Deployment, a ClusterIP Service, a PodDisruptionBudget, a KEDA ``ScaledObject``,
    NetworkPolicies and an Ingress exposing only the OpenAI routes.
    """

    cluster_name: pulumi.Output[str]
    cluster_id: pulumi.Output[str] | None
    oidc_issuer_url: pulumi.Output[str] | None
    kube_provider: k8s.Provider
    workloads: Mapping[str, ServingWorkload]

    def __init__(self, name: str, args: InferenceClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("slm:compute:InferenceCluster", name, None, opts)
        settings = args.settings
        onnx_image = (args.onnx_server_image if isinstance(args.onnx_server_image, str)
                      else ONNX_IMAGE_FROM_REGISTRY if args.onnx_server_image is not None else None)
        plans = {dep_name: workload_plan(settings, dep_name, dep, onnx_image=onnx_image)
                 for dep_name, dep in sorted(settings.aks_deployments().items())}
        validate_args(args, plans)
        self._name = name
        self._args = args
        self._rollouts = rollouts(settings, plans)
        self.pools: dict[str, containerservice.AgentPool] = {}
        self._certificate_grants: list[pulumi.Resource] = []
        # Annotated here, not on the class: the SDK evaluates a component class's annotations when it
        # registers, which loaded the AKS SDK module on local, where there is no AKS.
        self.cluster: containerservice.ManagedCluster | None = None
        """Escape hatch: the AKS resource (``None`` on local)."""
        if settings.uses_azure:
            self._azure(name, args)
        else:
            self.cluster = None
            self.cluster_id = None
            self.oidc_issuer_url = None
            self.cluster_name = pulumi.Output.from_input(settings.cluster.kube_context or "local")
            self.kube_provider = k8s.Provider(f"{name}-k8s", context=settings.cluster.kube_context,
                                              opts=pulumi.ResourceOptions(parent=self))
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=self.kube_provider)
        has_gpu_pool = any(p.is_gpu for p in settings.cluster.pools.values())
        if settings.uses_azure and has_gpu_pool:
            if settings.cluster.gpu_driver == "gpu-operator":
                self._gpu_operator(name, k8s_opts)
            else:
                # AKS installs the driver on GPU nodes but not the device plugin that advertises
                # nvidia.com/gpu to the scheduler; without it no GPU pod is ever scheduled.
                self._device_plugin(name, k8s_opts)
        workloads: dict[str, ServingWorkload] = {}
        if not settings.uses_azure:
            # ScaledObjects need KEDA's CRDs and the Ingresses the nginx class: there first.
            k8s_opts = pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(
                depends_on=self._local_addons(name, k8s_opts)))
        for dep_name, plan in plans.items():
            workloads[dep_name] = self._workload(name, plan, k8s_opts)
        self.workloads = workloads
        outputs: dict[str, Any] = {"cluster_name": self.cluster_name}
        if self.cluster_id is not None:
            outputs["cluster_id"] = self.cluster_id
        if self.oidc_issuer_url is not None:
            outputs["oidc_issuer_url"] = self.oidc_issuer_url
        self.register_outputs(outputs)

    # -- Azure ---------------------------------------------------------------------------

    def _azure(self, name: str, args: InferenceClusterArgs) -> None:
        settings = args.settings
        cluster_settings = settings.cluster
        child = pulumi.ResourceOptions(parent=self)
        tags = {**settings.azure_tags(), **dict(args.tags)}
        assert args.kubelet_identity is not None  # noqa: S101 (validate_args)
        assert args.log_analytics_workspace_id is not None  # noqa: S101 (validate_args)
        assert args.control_plane_identity_id is not None  # noqa: S101 (validate_args)
        workspace_id: pulumi.Input[str] = args.log_analytics_workspace_id
        prod = settings.tier == "prod"
        system = cluster_settings.system_pool
        addons: dict[str, containerservice.ManagedClusterAddonProfileArgs] = {
            "azureKeyvaultSecretsProvider": containerservice.ManagedClusterAddonProfileArgs(
                enabled=True, config={"enableSecretRotation": "true", "rotationPollInterval": "2m"}),
            "azurepolicy": containerservice.ManagedClusterAddonProfileArgs(enabled=True),
            "omsagent": containerservice.ManagedClusterAddonProfileArgs(
                enabled=True, config={"logAnalyticsWorkspaceResourceID": workspace_id,
                                      "useAADAuth": "true"}),
        }
        security = containerservice.ManagedClusterSecurityProfileArgs(
            workload_identity=containerservice.ManagedClusterSecurityProfileWorkloadIdentityArgs(enabled=True),
            image_cleaner=containerservice.ManagedClusterSecurityProfileImageCleanerArgs(
                enabled=True, interval_hours=48),
            defender=containerservice.ManagedClusterSecurityProfileDefenderArgs(
                log_analytics_workspace_resource_id=args.log_analytics_workspace_id,
                security_monitoring=containerservice.ManagedClusterSecurityProfileDefenderSecurityMonitoringArgs(
                    enabled=True)) if prod else None,
        )
        self.cluster = containerservice.ManagedCluster(
            f"{name}-aks",
            resource_name_=f"{settings.name_prefix}-aks",
            resource_group_name=args.resource_group_name,
            location=args.location,
            dns_prefix=f"{settings.name_prefix}-aks",
            kubernetes_version=cluster_settings.kubernetes_version,
            sku=containerservice.ManagedClusterSKUArgs(name="Base", tier=cluster_settings.sku_tier),
            identity=containerservice.ManagedClusterIdentityArgs(
                type=containerservice.ResourceIdentityType.USER_ASSIGNED,
                user_assigned_identities=[args.control_plane_identity_id]),
            identity_profile={"kubeletidentity": containerservice.UserAssignedIdentityArgs(
                resource_id=args.kubelet_identity.resource_id, client_id=args.kubelet_identity.client_id,
                object_id=args.kubelet_identity.object_id)},
            enable_rbac=True,
            disable_local_accounts=True,
            aad_profile=containerservice.ManagedClusterAADProfileArgs(
                managed=True, enable_azure_rbac=True, tenant_id=args.tenant_id,
                admin_group_object_ids=list(cluster_settings.admin_group_object_ids)),
            api_server_access_profile=api_server_access(settings, args.deployer_egress_cidrs),
            network_profile=containerservice.ContainerServiceNetworkProfileArgs(
                network_plugin="azure", network_plugin_mode="overlay", network_dataplane="cilium",
                network_policy="cilium", load_balancer_sku="standard", outbound_type="loadBalancer"),
            oidc_issuer_profile=containerservice.ManagedClusterOIDCIssuerProfileArgs(enabled=True),
            security_profile=security,
            addon_profiles=addons,
            workload_auto_scaler_profile=containerservice.ManagedClusterWorkloadAutoScalerProfileArgs(
                keda=containerservice.ManagedClusterWorkloadAutoScalerProfileKedaArgs(enabled=True)),
            # Private tiers: the add-on's default NGINX controller gets an internal load balancer.
            ingress_profile=containerservice.ManagedClusterIngressProfileArgs(
                web_app_routing=containerservice.ManagedClusterIngressProfileWebAppRoutingArgs(
                    enabled=True, nginx=containerservice.ManagedClusterIngressProfileNginxArgs(
                        default_ingress_controller_type=gateway_controller_type(settings)))),
            azure_monitor_profile=containerservice.ManagedClusterAzureMonitorProfileArgs(
                metrics=containerservice.ManagedClusterAzureMonitorProfileMetricsArgs(enabled=True))
            if settings.monitoring.mode == "azure-managed" else None,
            auto_upgrade_profile=containerservice.ManagedClusterAutoUpgradeProfileArgs(
                upgrade_channel=cluster_settings.upgrade_channel,
                node_os_upgrade_channel=cluster_settings.node_os_upgrade_channel),
            node_resource_group=f"{settings.name_prefix}-aks-nodes",
            agent_pool_profiles=[containerservice.ManagedClusterAgentPoolProfileArgs(
                name="system",
                mode="System",
                vm_size=system.vm_size,
                count=system.count,
                availability_zones=list(system.zones) or None,
                node_taints=[SYSTEM_TAINT],
                os_type="Linux",
                os_sku="AzureLinux",
                type="VirtualMachineScaleSets",
                vnet_subnet_id=args.aks_subnet_id,
                enable_node_public_ip=False,
                enable_encryption_at_host=True,
                orchestrator_version=cluster_settings.kubernetes_version,
                upgrade_settings=containerservice.AgentPoolUpgradeSettingsArgs(max_surge="33%"),
            )],
            tags=tags,
            # The inline system pool is create-only; later pools are AgentPools. Editing the inline
            # profile puts every pool into Scaling (pulumi-azure-native#4264, #2719).
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["agentPoolProfiles"],
                                        depends_on=list(args.prerequisites)),
        )
        cluster = self.cluster
        self.cluster_name = cluster.name
        self.cluster_id = cluster.id
        self.oidc_issuer_url = cluster.oidc_issuer_profile.apply(
            lambda p: p.issuer_url if p is not None and p.issuer_url else "")
        for pool_name, pool in sorted(cluster_settings.pools.items()):
            self.pools[pool_name] = self._pool(name, pool_name, pool, args, tags)
        for dep_name, wi in sorted(args.workload_identities.items()):
            if dep_name not in settings.aks_deployments():
                continue
            managedidentity.FederatedIdentityCredential(
                f"{name}-fic-{dep_name}",
                resource_name_=wi.name,
                resource_group_name=wi.resource_group_name,
                federated_identity_credential_resource_name=f"{settings.name_prefix}-aks-{dep_name}",
                issuer=self.oidc_issuer_url,
                subject=f"system:serviceaccount:slm-{dep_name}:{dep_name}",
                audiences=[TOKEN_AUDIENCE],
                opts=child,
            )
        if args.keda_identity is not None:
            managedidentity.FederatedIdentityCredential(
                f"{name}-fic-keda",
                resource_name_=args.keda_identity.name,
                resource_group_name=args.keda_identity.resource_group_name,
                federated_identity_credential_resource_name=f"{settings.name_prefix}-aks-keda-operator",
                issuer=self.oidc_issuer_url,
                subject="system:serviceaccount:kube-system:keda-operator",
                audiences=[TOKEN_AUDIENCE],
                opts=child,
            )
        diagnostics: dict[str, DiagnosticSetting] = {
            "audit": DiagnosticSetting(workspace_resource_id=args.log_analytics_workspace_id or "",
                                       log_categories=("kube-audit-admin", "guard"), metrics_enabled=False),
            **dict(args.diagnostic_settings),
        }
        apply_diagnostic_settings(self, name, resource_id=cluster.id, settings=diagnostics)
        grants = apply_role_assignments(self, name, scope_id=cluster.id, subscription_id=args.subscription_id or "",
                                        assignments=args.role_assignments)
        apply_lock(self, name, scope_id=cluster.id, lock=args.lock, depends_on=list(self.pools.values()))
        if args.gateway_tls_certificate_uri is not None and args.key_vault_id is not None:
            # The add-on reads the gateway certificate with its own identity (what `az aks approuting update
            # --attach-kv` grants); without it NGINX serves its fake certificate.
            routing_identity = cluster.ingress_profile.apply(
                lambda p: p.web_app_routing.identity.object_id if p and p.web_app_routing
                and p.web_app_routing.identity and p.web_app_routing.identity.object_id else "")
            self._certificate_grants = list(apply_role_assignments(
                self, f"{name}-gateway-cert", scope_id=args.key_vault_id,
                subscription_id=args.subscription_id or "",
                assignments={"app-routing": RoleAssignment(role="Key Vault Certificate User",
                                                           principal_id=routing_identity)}))
        credentials = containerservice.list_managed_cluster_user_credentials_output(
            resource_group_name=args.resource_group_name, resource_name=cluster.name, format="exec",
            opts=pulumi.InvokeOutputOptions(parent=self))
        # Azure answers an exec kubeconfig that runs `kubelogin get-token --login devicecode` (interactive: it
        # would wait for a browser in CI). Convert it as `kubelogin convert-kubeconfig -l azurecli` does: the
        # token then comes from the deployer's Azure CLI session (azure/login with OIDC in the workflows).
        # kubelogin must be on PATH (Entra ID auth; local accounts are off).
        kubeconfig = pulumi.Output.secret(credentials.kubeconfigs.apply(
            lambda kcs: non_interactive(base64.b64decode(kcs[0].value).decode()) if kcs else ""))
        # Every Kubernetes write waits for the cluster-scoped grants (the deployer's RBAC Cluster Admin).
        self.kube_provider = k8s.Provider(f"{name}-k8s", kubeconfig=kubeconfig,
                                          opts=pulumi.ResourceOptions(parent=self, depends_on=[cluster, *grants]))

    def _pool(self, name: str, pool_name: str, pool: NodePool, args: InferenceClusterArgs,
              tags: Mapping[str, str]) -> containerservice.AgentPool:
        settings = args.settings
        assert self.cluster is not None  # noqa: S101
        sku = VM_SKUS[pool.vm_size]
        labels = {"slm.io/pool": pool_name}
        taints: list[str] = []
        gpu_profile = None
        if sku.is_gpu:
            labels |= {"sku": "gpu", "accelerator": "nvidia", "slm.io/gpu-model": str(sku.gpu_model)}
            taints.append(GPU_TAINT)
            gpu_profile = containerservice.GPUProfileArgs(
                driver="None" if settings.cluster.gpu_driver == "gpu-operator" else "Install")
        return containerservice.AgentPool(
            f"{name}-{pool_name}",
            agent_pool_name=pool_name,
            resource_name_=self.cluster.name,
            resource_group_name=args.resource_group_name,
            mode="User",
            vm_size=pool.vm_size,
            os_type="Linux",
            # Ubuntu for GPU pools: both AKS-managed drivers and the GPU Operator support it.
            os_sku="Ubuntu" if sku.is_gpu else "AzureLinux",
            type="VirtualMachineScaleSets",
            enable_auto_scaling=True,
            count=pool.min_count,
            min_count=pool.min_count,
            max_count=pool.max_count,
            availability_zones=list(pool.zones) or None,
            node_labels=labels,
            node_taints=taints or None,
            gpu_profile=gpu_profile,
            vnet_subnet_id=args.aks_subnet_id,
            enable_node_public_ip=False,
            enable_encryption_at_host=True,
            orchestrator_version=settings.cluster.kubernetes_version,
            # AKS does not support surge upgrades on Spot pools.
            upgrade_settings=None if pool.spot else containerservice.AgentPoolUpgradeSettingsArgs(max_surge="1"),
            scale_set_priority="Spot" if pool.spot else "Regular",
            scale_set_eviction_policy="Delete" if pool.spot else None,
            spot_max_price=-1 if pool.spot else None,
            tags=dict(tags),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _gpu_operator(self, name: str, k8s_opts: pulumi.ResourceOptions) -> None:
        ns = k8s.core.v1.Namespace(
            f"{name}-gpu-operator-ns",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="gpu-operator", labels=namespace_labels(
                "privileged", extra={"app.kubernetes.io/part-of": PART_OF})),
            opts=k8s_opts)
        k8s.helm.v3.Release(
            f"{name}-gpu-operator",
            name="gpu-operator",
            chart="gpu-operator",
            version=GPU_OPERATOR_CHART_VERSION,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=GPU_OPERATOR_REPO),
            namespace="gpu-operator",
            values=gpu_operator_values(),
            atomic=True,
            timeout=900,
            opts=pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(
                depends_on=[ns, *self.pools.values()])),
        )

    def _local_addons(self, name: str, k8s_opts: pulumi.ResourceOptions) -> list[pulumi.Resource]:
        """``local``: KEDA and ingress-nginx, installed (pinned Helm releases) or read to prove they exist."""
        if self._args.settings.cluster.local_addons == "check":
            return [
                k8s.apiextensions.v1.CustomResourceDefinition.get(f"{name}-keda-crd", "scaledobjects.keda.sh",
                                                                  opts=k8s_opts),
                k8s.networking.v1.IngressClass.get(f"{name}-nginx-class", "nginx", opts=k8s_opts),
            ]
        keda = k8s.helm.v3.Release(
            f"{name}-keda", name="keda", chart="keda", version=KEDA_CHART_VERSION,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=KEDA_REPO),
            namespace="keda", create_namespace=True, atomic=True, opts=k8s_opts)
        nginx = k8s.helm.v3.Release(
            f"{name}-ingress-nginx", name="ingress-nginx", chart="ingress-nginx",
            version=INGRESS_NGINX_CHART_VERSION,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=INGRESS_NGINX_REPO),
            # The gateway namespace the serving NetworkPolicies admit (kubernetes.io/metadata.name).
            namespace="ingress-nginx", create_namespace=True, atomic=True,
            values={"controller": {
                # Reached with `kubectl port-forward` (docs/getting-started.md): nothing is opened on
                # the laptop's network, and it works the same on kind, k3d and minikube.
                "service": {"type": "ClusterIP"},
                "ingressClassResource": {"name": "nginx", "default": False},
                "allowSnippetAnnotations": False,
            }},
            opts=k8s_opts)
        return [keda, nginx]

    def _device_plugin(self, name: str, k8s_opts: pulumi.ResourceOptions) -> None:
        k8s.helm.v3.Release(
            f"{name}-nvidia-device-plugin",
            name="nvidia-device-plugin",
            chart="nvidia-device-plugin",
            version=DEVICE_PLUGIN_CHART_VERSION,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=DEVICE_PLUGIN_REPO),
            # kube-system: the plugin needs the kubelet's device-plugins hostPath, which a
            # restricted namespace refuses; it is a node agent like AKS's own.
            namespace="kube-system",
            values={
                # AKS labels its GPU nodes accelerator=nvidia; the chart's default affinity expects
                # NFD/GFD labels that AKS-managed drivers do not add.
                "nodeSelector": {"accelerator": "nvidia"},
                "affinity": None,
                "tolerations": [dict(t) for t in GPU_NODE_AGENT_TOLERATIONS],
                "priorityClassName": "system-node-critical",
            },
            atomic=True,
            opts=pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(
                depends_on=list(self.pools.values()))),
        )

    # -- workloads -------------------------------------------------------------------------

    def _workload(self, name: str, plan: WorkloadPlan, k8s_opts: pulumi.ResourceOptions) -> ServingWorkload:
        args = self._args
        settings = args.settings
        azure = settings.uses_azure
        spec = plan.spec
        ns_name = plan.namespace
        prefix = f"{name}-{plan.name}"
        labels = dict(plan.pod_labels)
        common = {k: v for k, v in labels.items() if k != "azure.workload.identity/use"}

        def meta(obj_name: str, *, annotations: Mapping[str, pulumi.Input[str]] | None = None,
                 extra_labels: Mapping[str, str] | None = None) -> k8s.meta.v1.ObjectMetaArgs:
            return k8s.meta.v1.ObjectMetaArgs(name=obj_name, namespace=ns_name,
                                              labels={**common, **(extra_labels or {})},
                                              annotations=dict(annotations) if annotations else None)

        namespace = k8s.core.v1.Namespace(
            f"{prefix}-ns",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=ns_name, labels=namespace_labels(
                "restricted", extra={"app.kubernetes.io/part-of": PART_OF, "slm.io/engine": spec.engine})),
            opts=k8s_opts)
        in_ns = pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(depends_on=[namespace]))

        sa_annotations: dict[str, pulumi.Input[str]] = {}
        if azure:
            sa_annotations["azure.workload.identity/client-id"] = args.workload_identities[plan.name].client_id
        k8s.core.v1.ServiceAccount(
            f"{prefix}-sa", metadata=meta(plan.service_account, annotations=sa_annotations),
            automount_service_account_token=False, opts=in_ns)

        volumes: list[k8s.core.v1.VolumeArgs] = []
        mounts: dict[str, k8s.core.v1.VolumeMountArgs] = {}
        for vol in spec.scratch_volumes:
            volumes.append(k8s.core.v1.VolumeArgs(name=vol.name, empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(
                medium="Memory" if vol.in_memory else None, size_limit=_quantity_gib(vol.size_limit_gib))))
            mounts[vol.name] = k8s.core.v1.VolumeMountArgs(name=vol.name, mount_path=vol.mount_path)
        claim_deps: list[pulumi.Resource] = []
        for claim in spec.claim_volumes:
            if claim.shared:
                # One claim per deployment that outlives its pods: a restart re-verifies, copies nothing.
                pvc = k8s.core.v1.PersistentVolumeClaim(
                    f"{prefix}-{claim.name}-pvc", metadata=meta(f"{plan.name}-{claim.name}"),
                    spec=k8s.core.v1.PersistentVolumeClaimSpecArgs(
                        access_modes=["ReadWriteMany"], storage_class_name=claim.storage_class,
                        resources=k8s.core.v1.VolumeResourceRequirementsArgs(
                            requests={"storage": f"{claim.size_gib}Gi"})),
                    opts=in_ns)
                claim_deps.append(pvc)
                volumes.append(k8s.core.v1.VolumeArgs(
                    name=claim.name, persistent_volume_claim=k8s.core.v1.PersistentVolumeClaimVolumeSourceArgs(
                        claim_name=f"{plan.name}-{claim.name}")))
                mounts[claim.name] = k8s.core.v1.VolumeMountArgs(name=claim.name, mount_path=claim.mount_path)
                continue
            volumes.append(k8s.core.v1.VolumeArgs(name=claim.name, ephemeral=k8s.core.v1.EphemeralVolumeSourceArgs(
                volume_claim_template=k8s.core.v1.PersistentVolumeClaimTemplateArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=common),
                    spec=k8s.core.v1.PersistentVolumeClaimSpecArgs(
                        access_modes=["ReadWriteOnce"], storage_class_name=claim.storage_class,
                        resources=k8s.core.v1.VolumeResourceRequirementsArgs(
                            requests={"storage": f"{claim.size_gib}Gi"}))))))
            mounts[claim.name] = k8s.core.v1.VolumeMountArgs(name=claim.name, mount_path=claim.mount_path)
        server_mounts = list(mounts.values())

        if spec.secret_env:
            if azure:
                spc = self._secret_provider_class(prefix, plan, meta, in_ns)
                volumes.append(k8s.core.v1.VolumeArgs(name="secrets-store", csi=k8s.core.v1.CSIVolumeSourceArgs(
                    driver="secrets-store.csi.k8s.io", read_only=True,
                    volume_attributes={"secretProviderClass": API_KEY_SECRET})))
                server_mounts.append(k8s.core.v1.VolumeMountArgs(
                    name="secrets-store", mount_path=CSI_MOUNT_PATH, read_only=True))
                secret_deps: list[pulumi.Resource] = [spc]
            else:
                string_data: dict[str, pulumi.Input[str]] = {
                    API_KEY_SECRET_KEY: pulumi.Output.secret(args.engine_api_key or "")}
                if self._gated(plan) and args.hugging_face_token is not None:
                    string_data[HF_TOKEN_SECRET_KEY] = pulumi.Output.secret(args.hugging_face_token)
                secret = k8s.core.v1.Secret(
                    f"{prefix}-api-key", metadata=meta(API_KEY_SECRET), type="Opaque",
                    string_data=string_data, opts=in_ns)
                secret_deps = [secret]
        else:
            secret_deps = []

        image: pulumi.Input[str] = spec.image
        if spec.image == ONNX_IMAGE_FROM_REGISTRY and args.onnx_server_image is not None:
            image = args.onnx_server_image

        def probe(p: Any) -> k8s.core.v1.ProbeArgs:
            return k8s.core.v1.ProbeArgs(
                http_get=k8s.core.v1.HTTPGetActionArgs(path=p.path, port=spec.port_name),
                period_seconds=p.period_seconds, timeout_seconds=p.timeout_seconds,
                failure_threshold=p.failure_threshold, success_threshold=p.success_threshold,
                initial_delay_seconds=p.initial_delay_seconds or None)

        quantities = spec.resources.as_quantities()
        resources = k8s.core.v1.ResourceRequirementsArgs(requests=quantities, limits=quantities)
        init_resources = {k: v for k, v in quantities.items() if k != "nvidia.com/gpu"}
        env = [k8s.core.v1.EnvVarArgs(name=k, value=v) for k, v in sorted(spec.env.items())]
        env += [k8s.core.v1.EnvVarArgs(name=s.name, value_from=k8s.core.v1.EnvVarSourceArgs(
            secret_key_ref=k8s.core.v1.SecretKeySelectorArgs(name=s.secret_name, key=s.key)))
            for s in spec.secret_env]
        init_containers = [k8s.core.v1.ContainerArgs(
            name=step.name,
            image=self._init_image(step.image, image),
            image_pull_policy="Always",
            command=list(step.command), args=list(step.args) or None,
            env=[k8s.core.v1.EnvVarArgs(name=k, value=v) for k, v in sorted(step.env.items())],
            volume_mounts=[mounts[m] for m in step.mounts],
            resources=k8s.core.v1.ResourceRequirementsArgs(requests=init_resources, limits=init_resources),
            security_context=container_security(spec.run_as_user),
        ) for step in spec.init_steps]
        container = k8s.core.v1.ContainerArgs(
            name=spec.engine,
            image=image,
            image_pull_policy="Always",
            command=list(spec.command) or None,
            args=list(spec.args),
            ports=[k8s.core.v1.ContainerPortArgs(name=spec.port_name, container_port=spec.port, protocol="TCP")],
            env=env,
            volume_mounts=server_mounts,
            resources=resources,
            startup_probe=probe(spec.startup_probe),
            readiness_probe=probe(spec.readiness_probe),
            liveness_probe=probe(spec.liveness_probe),
            security_context=container_security(spec.run_as_user),
        )
        tolerations: list[k8s.core.v1.TolerationArgs] = []
        node_selector: dict[str, str] | None = None
        if plan.pool is not None:
            node_selector = {POOL_LABEL: plan.pool}
            if plan.sku is not None and plan.sku.is_gpu:
                tolerations.append(k8s.core.v1.TolerationArgs(key="sku", operator="Equal", value="gpu",
                                                              effect="NoSchedule"))
                tolerations.append(k8s.core.v1.TolerationArgs(key="nvidia.com/gpu", operator="Exists",
                                                              effect="NoSchedule"))
            if plan.spot:
                tolerations.append(k8s.core.v1.TolerationArgs(key=SPOT_TAINT_KEY, operator="Equal",
                                                              value="spot", effect="NoSchedule"))
        spread = [k8s.core.v1.TopologySpreadConstraintArgs(
            max_skew=1, topology_key=key, when_unsatisfiable="ScheduleAnyway",
            label_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dict(plan.selector)))
            for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")]
        annotations = {f"checkov.io/skip{i}": skip for i, skip in enumerate(plan.checkov_skips, start=1)}
        model = settings.models[settings.deployments[plan.name].model]
        if spec.engine == "vllm" and plan.sku is not None and plan.sku.is_gpu and model.artifacts.safetensors:
            # The policy pack re-runs the settings' memory-fit estimate from these (slm-serving-memory-fit).
            annotations |= shape_annotations(model.shape(model.artifacts.safetensors.quantization),
                                             gpu_memory_gib=plan.sku.gpu_memory_gib)
        k8s.apps.v1.Deployment(
            f"{prefix}-deploy",
            metadata=meta(plan.name, annotations=annotations or None),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                replicas=plan.scale.min_replicas,
                revision_history_limit=3,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dict(plan.selector)),
                strategy=k8s.apps.v1.DeploymentStrategyArgs(
                    type="RollingUpdate", rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(
                        max_surge=self._rollouts[plan.name].max_surge,
                        max_unavailable=self._rollouts[plan.name].max_unavailable)),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels),
                    spec=k8s.core.v1.PodSpecArgs(
                        service_account_name=plan.service_account,
                        automount_service_account_token=False,
                        enable_service_links=False,
                        security_context=pod_security(spec.run_as_user),
                        init_containers=init_containers or None,
                        containers=[container],
                        volumes=volumes,
                        node_selector=node_selector,
                        tolerations=tolerations or None,
                        topology_spread_constraints=spread,
                        termination_grace_period_seconds=60,
                    ),
                ),
            ),
            # KEDA owns the replica count once the ScaledObject exists; model start can be slow.
            opts=pulumi.ResourceOptions.merge(in_ns, pulumi.ResourceOptions(
                ignore_changes=["spec.replicas"], depends_on=[*secret_deps, *claim_deps, *self.pools.values()],
                custom_timeouts=pulumi.CustomTimeouts(create="40m", update="40m"))),
        )
        k8s.core.v1.Service(
            f"{prefix}-svc", metadata=meta(plan.name),
            spec=k8s.core.v1.ServiceSpecArgs(type="ClusterIP", selector=dict(plan.selector), ports=[
                k8s.core.v1.ServicePortArgs(name=spec.port_name, port=spec.port, target_port=spec.port_name,
                                            protocol="TCP")]),
            opts=in_ns)
        k8s.policy.v1.PodDisruptionBudget(
            f"{prefix}-pdb", metadata=meta(plan.name),
            spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                max_unavailable=1, selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dict(plan.selector))),
            opts=in_ns)
        self._scaled_object(prefix, plan, meta, in_ns)
        self._network_policies(prefix, plan, meta, in_ns)
        self._ingress(prefix, plan, meta, in_ns)
        return ServingWorkload(
            deployment=plan.name, engine=spec.engine, namespace=ns_name, service_name=plan.name, port=spec.port,
            metrics_path=spec.metrics_path, served_model_name=spec.served_model_name,
            pod_labels=dict(labels), gpu=spec.gpu)

    def _init_image(self, step_image: str, server_image: pulumi.Input[str]) -> pulumi.Input[str]:
        """An init step's image: the registry-built ones substituted by their pushed digests."""
        if step_image == ONNX_IMAGE_FROM_REGISTRY:
            return server_image
        if step_image == FILL_IMAGE_FROM_REGISTRY and self._args.model_fill_image is not None:
            return self._args.model_fill_image
        return step_image

    def _gated(self, plan: WorkloadPlan) -> bool:
        """Whether the pod downloads a gated model from the Hub itself (and so needs the token)."""
        settings = self._args.settings
        return settings.models[settings.deployments[plan.name].model].gated and not settings.weights_from_registry

    def _secret_provider_class(self, prefix: str, plan: WorkloadPlan, meta: Any,
                               opts: pulumi.ResourceOptions) -> k8s.apiextensions.CustomResource:
        args = self._args
        wi = args.workload_identities[plan.name]
        names = [args.engine_api_key_secret_name or ""]
        data = [{"objectName": args.engine_api_key_secret_name, "key": API_KEY_SECRET_KEY}]
        if self._gated(plan) and args.hugging_face_token_secret_name:
            names.append(args.hugging_face_token_secret_name)
            data.append({"objectName": args.hugging_face_token_secret_name, "key": HF_TOKEN_SECRET_KEY})
        objects = "array:\n" + "".join(f"  - |\n    objectName: {n}\n    objectType: secret\n" for n in names)
        return k8s.apiextensions.CustomResource(
            f"{prefix}-spc",
            api_version="secrets-store.csi.x-k8s.io/v1",
            kind="SecretProviderClass",
            metadata=meta(API_KEY_SECRET),
            spec={
                "provider": "azure",
                "parameters": {
                    "usePodIdentity": "false",
                    "clientID": wi.client_id,
                    "keyvaultName": args.key_vault_name,
                    "tenantId": args.tenant_id,
                    "objects": objects,
                },
                "secretObjects": [{
                    "secretName": API_KEY_SECRET,
                    "type": "Opaque",
                    "data": data,
                }],
            },
            opts=opts,
        )

    def _scaled_object(self, prefix: str, plan: WorkloadPlan, meta: Any, opts: pulumi.ResourceOptions) -> None:
        args = self._args
        address = args.prometheus_server_address or \
            f"http://prometheus-operated.{args.monitoring_namespace}.svc:9090"
        auth_ref: dict[str, str] | None = None
        if args.prometheus_identity_client_id is not None and any(
                t.type == "prometheus" for t in plan.scale.triggers):
            k8s.apiextensions.CustomResource(
                f"{prefix}-keda-auth", api_version="keda.sh/v1alpha1", kind="TriggerAuthentication",
                metadata=meta("prometheus"),
                spec={"podIdentity": {"provider": "azure-workload",
                                      "identityId": args.prometheus_identity_client_id}},
                opts=opts)
            auth_ref = {"name": "prometheus"}
        triggers: list[dict[str, Any]] = []
        for trigger in plan.scale.triggers:
            entry: dict[str, Any] = {"type": trigger.type, "metadata": dict(trigger.metadata)}
            if trigger.type == "prometheus":
                entry["metadata"]["serverAddress"] = address
                if auth_ref is not None:
                    entry["authenticationRef"] = auth_ref
            if trigger.metric_type is not None:
                entry["metricType"] = trigger.metric_type
            triggers.append(entry)
        k8s.apiextensions.CustomResource(
            f"{prefix}-scaler", api_version="keda.sh/v1alpha1", kind="ScaledObject",
            metadata=meta(plan.name),
            spec={
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": plan.name},
                "minReplicaCount": plan.scale.min_replicas,
                "maxReplicaCount": plan.scale.max_replicas,
                "pollingInterval": 15,
                "cooldownPeriod": 300,
                "triggers": triggers,
            },
            opts=opts)

    def _network_policies(self, prefix: str, plan: WorkloadPlan, meta: Any,
                          opts: pulumi.ResourceOptions) -> None:
        spec = plan.spec
        np = k8s.networking.v1
        pods = k8s.meta.v1.LabelSelectorArgs(match_labels=dict(plan.selector))

        def ns_selector(ns: str) -> k8s.meta.v1.LabelSelectorArgs:
            return k8s.meta.v1.LabelSelectorArgs(match_labels={"kubernetes.io/metadata.name": ns})

        port = [np.NetworkPolicyPortArgs(port=spec.port, protocol="TCP")]
        np.NetworkPolicy(f"{prefix}-np-deny", metadata=meta("default-deny"), spec=np.NetworkPolicySpecArgs(
            pod_selector=k8s.meta.v1.LabelSelectorArgs(), policy_types=["Ingress", "Egress"]), opts=opts)
        np.NetworkPolicy(f"{prefix}-np-gateway", metadata=meta("allow-gateway"), spec=np.NetworkPolicySpecArgs(
            pod_selector=pods, policy_types=["Ingress"],
            ingress=[np.NetworkPolicyIngressRuleArgs(
                from_=[np.NetworkPolicyPeerArgs(namespace_selector=ns_selector(self._gateway_namespace()))],
                ports=port)]), opts=opts)
        if spec.metrics_path is not None:
            np.NetworkPolicy(f"{prefix}-np-metrics", metadata=meta("allow-monitoring"),
                             spec=np.NetworkPolicySpecArgs(
                                 pod_selector=pods, policy_types=["Ingress"],
                                 ingress=[np.NetworkPolicyIngressRuleArgs(
                                     from_=[np.NetworkPolicyPeerArgs(
                                         namespace_selector=ns_selector(self._scraper_namespace()))],
                                     ports=port)]), opts=opts)
        egress = [np.NetworkPolicyEgressRuleArgs(
            to=[np.NetworkPolicyPeerArgs(namespace_selector=ns_selector("kube-system"))],
            ports=[np.NetworkPolicyPortArgs(port=53, protocol="UDP"),
                   np.NetworkPolicyPortArgs(port=53, protocol="TCP")])]
        https = [np.NetworkPolicyPortArgs(port=443, protocol="TCP")]
        registry = any(s.needs_registry_egress for s in spec.init_steps)
        private = self._args.settings.tier in {"staging", "prod"}
        if registry and private:
            # The weights storage's private endpoint, and Entra ID for the workload identity token
            # exchange (it has no private endpoint). Nothing else: no internet egress.
            egress.append(np.NetworkPolicyEgressRuleArgs(to=[
                np.NetworkPolicyPeerArgs(ip_block=np.IPBlockArgs(cidr=cidr)) for cidr in
                (self._args.settings.network.private_endpoint_subnet_cidr, *ENTRA_ID_LOGIN_CIDRS)], ports=https))
        elif registry or spec.needs_https_egress or any(s.needs_https_egress for s in spec.init_steps):
            # Model download (Hugging Face / Ollama library), or the registry's public endpoint on dev.
            # IMDS and the host's wire server stay unreachable.
            egress.append(np.NetworkPolicyEgressRuleArgs(
                to=[np.NetworkPolicyPeerArgs(ip_block=np.IPBlockArgs(
                    cidr="0.0.0.0/0", except_=["169.254.169.254/32", "168.63.129.16/32"]))],
                ports=https))
        np.NetworkPolicy(f"{prefix}-np-egress", metadata=meta("allow-egress"), spec=np.NetworkPolicySpecArgs(
            pod_selector=pods, policy_types=["Egress"], egress=egress), opts=opts)

    def _scraper_namespace(self) -> str:
        """Where the metrics scraper runs: ama-metrics in kube-system (managed), else in-cluster Prometheus."""
        args = self._args
        return "kube-system" if args.settings.monitoring.mode == "azure-managed" else args.monitoring_namespace

    def _gateway_namespace(self) -> str:
        args = self._args
        if args.gateway_namespace is not None:
            return args.gateway_namespace
        return APP_ROUTING_NAMESPACE if args.settings.uses_azure else "ingress-nginx"

    def _ingress(self, prefix: str, plan: WorkloadPlan, meta: Any, opts: pulumi.ResourceOptions) -> None:
        args = self._args
        settings = args.settings
        ingress_class = args.gateway_ingress_class or (APP_ROUTING_CLASS if settings.uses_azure else "nginx")
        annotations: dict[str, pulumi.Input[str]] = {
            # Regex paths: /<deployment>/v1/<allowed route>, rewritten to the engine's own path.
            "nginx.ingress.kubernetes.io/use-regex": "true",
            "nginx.ingress.kubernetes.io/rewrite-target": "$1",
            "nginx.ingress.kubernetes.io/ssl-redirect": "true",
            "nginx.ingress.kubernetes.io/proxy-read-timeout": "600",
            "nginx.ingress.kubernetes.io/proxy-body-size": "4m",
        }
        secret_name = args.gateway_tls_secret_name
        if args.gateway_tls_certificate_uri is not None:
            annotations["kubernetes.azure.com/tls-cert-keyvault-uri"] = args.gateway_tls_certificate_uri
            secret_name = f"keyvault-{plan.name}"  # the Secret the add-on writes for Ingress <plan.name>
            opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(
                depends_on=self._certificate_grants))
        host = settings.cluster.gateway_hostname
        backend = k8s.networking.v1.IngressBackendArgs(service=k8s.networking.v1.IngressServiceBackendArgs(
            name=plan.name, port=k8s.networking.v1.ServiceBackendPortArgs(name=plan.spec.port_name)))
        k8s.networking.v1.Ingress(
            f"{prefix}-ingress", metadata=meta(plan.name, annotations=annotations),
            spec=k8s.networking.v1.IngressSpecArgs(
                ingress_class_name=ingress_class,
                tls=[k8s.networking.v1.IngressTLSArgs(hosts=[host], secret_name=secret_name)],
                rules=[k8s.networking.v1.IngressRuleArgs(host=host, http=k8s.networking.v1.HTTPIngressRuleValueArgs(
                    paths=[k8s.networking.v1.HTTPIngressPathArgs(
                        path=gateway_path(plan.name, route), path_type="ImplementationSpecific", backend=backend)
                        for route in ALLOWED_GATEWAY_PATHS]))]),
            opts=opts)


def gateway_path(deployment: str, route: str) -> str:
    """The ingress regex for one allowed route of one model: ``/<deployment>(/v1/...)$``."""
    if route not in ALLOWED_GATEWAY_PATHS:
        msg = f"route {route!r} is not exposed by the gateway; allowed: {', '.join(ALLOWED_GATEWAY_PATHS)}"
        raise ValueError(msg)
    return f"/{deployment}({route})$"


__all__: Sequence[str] = (
    "InferenceCluster",
    "InferenceClusterArgs",
    "KubeletIdentity",
    "Rollout",
    "ServingWorkload",
    "WorkloadIdentity",
    "gateway_path",
    "rollouts",
    "workload_plan",
)
