"""ServingWorkloads: the hardened, autoscaled model-serving workloads, on any Kubernetes cluster.

Per deployment: a restricted Namespace, a ServiceAccount, the API-key Secret source (a
``SecretProviderClass`` over Key Vault, or a plain Secret), a Deployment, a ClusterIP Service, a
PodDisruptionBudget, a KEDA ``ScaledObject``, NetworkPolicies and an Ingress exposing only the OpenAI
routes. The cluster is whatever ``kube_provider`` points at (``InferenceCluster``'s AKS cluster), or a
kubeconfig context (a laptop's). Engine specifics come from the pure adapters in ``components.engines``;
this module only turns them into typed Kubernetes objects (never YAML or Helm for our own workloads,
so tests and the policy pack see them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Final

import pulumi
import pulumi_kubernetes as k8s

from components._security import container_security, namespace_labels, pod_security
from components.domain import AksDeployment, ModelSpec, NodePool, Replicas
from components.domain.catalogue import VM_SKUS, VmSku
from components.domain.fit import shape_annotations
from components.engines import container_for
from components.engines import vllm as vllm_engine
from components.engines.scaling import ScalePlan, scale_plan
from components.engines.spec import (
    ALLOWED_GATEWAY_PATHS,
    FILL_IMAGE_FROM_REGISTRY,
    AuthProxy,
    ContainerSpec,
    Engine,
    RegistryFill,
    image_is_digest_pinned,
)
from policies.rules.egress import ENTRA_ID_LOGIN_CIDRS
from policies.rules.plan_graph import DEFAULT_MAX_PODS, node_allocatable

TYPE_TOKEN: Final = "slm:compute:ServingWorkloads"  # noqa: S105 (a Pulumi type token)
GPU_TAINT: Final = "sku=gpu:NoSchedule"
SPOT_TAINT_KEY: Final = "kubernetes.azure.com/scalesetpriority"
POOL_LABEL: Final = "kubernetes.azure.com/agentpool"
API_KEY_SECRET: Final = "engine-api-key"  # noqa: S105 (the Secret's name, not its value)
API_KEY_SECRET_KEY: Final = "api-key"  # noqa: S105 (a key name inside the Secret)
HF_TOKEN_SECRET_KEY: Final = vllm_engine.HF_TOKEN_SECRET_KEY
CSI_MOUNT_PATH: Final = "/mnt/secrets-store"
KEDA_REPO: Final = "https://kedacore.github.io/charts"
KEDA_CHART_VERSION: Final = "2.20.2"
"""KEDA chart (kedacore/charts) installed with ``addons: install``: the ScaledObject CRD and operator.
AKS uses its managed KEDA add-on instead."""
INGRESS_NGINX_REPO: Final = "https://kubernetes.github.io/ingress-nginx"
INGRESS_NGINX_CHART_VERSION: Final = "4.13.3"
"""ingress-nginx chart (controller 1.13.x) installed with ``addons: install`` for the ``nginx`` gateway
class. AKS uses the app-routing add-on instead."""
ONNX_IMAGE_FROM_REGISTRY: Final = "registry-built/onnx-server"
"""Placeholder handed to the pure ONNX adapter when the image is a ``pulumi.Output`` (ModelRegistry
builds it); the component substitutes the Output when it declares the container."""
PART_OF: Final = "slm-platform"


def service_account_subject(deployment: str) -> str:
    """The OIDC subject of deployment ``deployment``'s pods: namespace ``slm-<name>``, account ``<name>``."""
    return f"system:serviceaccount:slm-{deployment}:{deployment}"


# --------------------------------------------------------------------------- args and outputs


class ClusterAddons(StrEnum):
    """Who provides KEDA (the ScaledObject CRD) and the gateway's ingress controller."""

    PROVIDED = "provided"
    """The cluster already runs them (AKS: the KEDA and app-routing add-ons)."""
    INSTALL = "install"
    """Install KEDA and ingress-nginx as pinned Helm releases before the workloads."""
    CHECK = "check"
    """Read the ``scaledobjects.keda.sh`` CRD and the ``nginx`` IngressClass, failing if one is missing."""


@dataclass(frozen=True, kw_only=True)
class KeyVaultSecrets:
    """Where the pods' secrets come from when a Key Vault holds them (synced by the Secrets Store CSI driver)."""

    vault_name: pulumi.Input[str]
    tenant_id: pulumi.Input[str]
    engine_api_key_secret_name: str
    hugging_face_token_secret_name: str | None = None
    """Default: none. The secret holding the Hugging Face token gated models download with."""


@dataclass(frozen=True, kw_only=True)
class ServingWorkloadsArgs:
    """Inputs of ``ServingWorkloads``: the models it serves, where, and the secrets and ids it connects to."""

    deployments: Mapping[str, AksDeployment]
    """The workloads, keyed by deployment name (namespace ``slm-<name>``); each names a model of ``models``."""
    models: Mapping[str, ModelSpec]
    gateway_hostname: str
    """The host every model is served under: ``https://<host>/<deployment>/v1/...``."""
    kube_provider: k8s.Provider | None = None
    """Default: a Kubernetes provider of its own (``<name>-k8s``) for ``kube_context``. Given: the cluster every
    object is applied to, e.g. ``InferenceCluster.kube_provider``."""
    kube_context: str | None = None
    """Default: the kubeconfig's current context. Only without ``kube_provider``."""
    pools: Mapping[str, NodePool] = field(default_factory=dict[str, NodePool])
    """Default: none; pods get no node selector and no tolerations (a laptop cluster). Given: a deployment
    with a ``pool`` is pinned to it, tolerates its GPU and Spot taints, and its rollout is sized to it."""
    default_replicas: Replicas = field(default_factory=Replicas)
    """Default: ``Replicas()``'s bounds for every deployment without its own ``replicas``."""
    digest_pinning_required: bool = False
    """Default: tag-pinned images are allowed (and carry a Checkov skip saying why). ``True``: every image
    must be pinned by digest, else an error names the deployment."""
    registry_fills: Mapping[str, RegistryFill] = field(default_factory=dict[str, RegistryFill])
    """Default: none; each engine downloads its pinned weights itself. Given (by deployment name): the pod's
    ``fill-model`` init step copies them from the weights storage instead, and needs ``model_fill_image``."""
    model_fill_image: pulumi.Input[str] | None = None
    """Default: none. The registry fill step's image (``ModelRegistry.model_fill_image``)."""
    onnx_server_image: pulumi.Input[str] | None = None
    """Default: none; required for ``onnx-genai`` deployments without their own ``image``."""
    workload_identity_client_ids: Mapping[str, pulumi.Input[str]] = field(
        default_factory=dict[str, pulumi.Input[str]])
    """Default: none; no workload identity. Given (by deployment name): the service account federates to it
    (``azure.workload.identity/use``) and reads the Key Vault secrets with it."""
    key_vault: KeyVaultSecrets | None = None
    """Default: none; the API key (and Hugging Face token) is a plain Kubernetes Secret from
    ``engine_api_key``. Given: a ``SecretProviderClass`` syncs them from the vault (needs the identities)."""
    engine_api_key: pulumi.Input[str] | None = None
    """Default: none. Secret; required without ``key_vault`` for engines that check an API key."""
    hugging_face_token: pulumi.Input[str] | None = None
    """Default: none. Secret; without ``key_vault``, the token gated models download with."""
    private_endpoint_cidr: str | None = None
    """Default: none; a registry fill step reaches the weights storage's public endpoint (HTTPS anywhere but
    IMDS and the wire server). Given: it may reach only this range (the private endpoints) and Entra ID."""
    monitoring_namespace: str = "monitoring"
    """Default: ``monitoring``, where in-cluster Prometheus runs: KEDA queries it there."""
    metrics_scraper_namespace: str | None = None
    """Default: ``monitoring_namespace``. The namespace whose pods may reach the metrics ports (Azure
    Managed Prometheus: ``kube-system``, where ``ama-metrics`` runs; policy ``slm-reach-metrics-scraper``)."""
    metrics_scraper_pod_labels: dict[str, str] | None = None
    """Default: none (every pod of the scraper namespace may reach the metrics ports). Given: only pods with
    these labels may (Azure Managed Prometheus shares ``kube-system`` with every add-on: ``rsName: ama-metrics``,
    ``policies.rules.reachability.AMA_METRICS_POD_LABELS``)."""
    prometheus_server_address: pulumi.Input[str] | None = None
    """Default: ``http://prometheus-operated.<monitoring_namespace>.svc:9090`` (the Service the
    Prometheus operator creates). KEDA queries it for the queue-depth triggers."""
    prometheus_identity_client_id: pulumi.Input[str] | None = None
    """Default: none (unauthenticated in-cluster Prometheus). With Azure Managed Prometheus, the client id
    of the identity KEDA's operator federates to; a ``TriggerAuthentication`` is created per namespace."""
    gateway_ingress_class: str = "nginx"
    """Default: ``nginx``. On AKS: ``InferenceCluster.gateway_ingress_class`` (the app-routing add-on)."""
    gateway_namespace: str = "ingress-nginx"
    """Default: ``ingress-nginx``, the namespace whose pods may reach the serving ports."""
    gateway_tls_secret_name: str = "gateway-tls"  # noqa: S105 (a Secret name)
    """Default: ``gateway-tls``, a TLS Secret you create in each serving namespace (e.g. with cert-manager
    or ``kubectl create secret tls``). Unused with ``gateway_tls_certificate_uri``."""
    gateway_tls_certificate_uri: pulumi.Input[str] | None = None
    """Default: none. The unversioned Key Vault certificate URI the app-routing add-on syncs into the Secret
    ``keyvault-<ingress name>`` it serves (the add-on's naming)."""
    addons: ClusterAddons = ClusterAddons.PROVIDED
    """Default: the cluster already runs KEDA and the gateway's ingress controller (AKS add-ons)."""
    node_pools: Sequence[pulumi.Resource] = ()
    """Default: none. The cluster's node pools: every Deployment waits for them."""
    gateway_certificate_grants: Sequence[pulumi.Resource] = ()
    """Default: none. What the Ingresses wait for with ``gateway_tls_certificate_uri`` (the add-on's read
    grant on the vault, ``InferenceCluster.certificate_grants``), else NGINX serves its fake certificate."""


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


def workload_plan(args: ServingWorkloadsArgs, name: str, dep: AksDeployment, *,
                  onnx_image: str | None) -> WorkloadPlan:
    """Decide the container, labels, pool and scaling of deployment ``name`` (no resources)."""
    model = args.models[dep.model]
    pool = args.pools.get(dep.pool) if dep.pool is not None else None
    sku = VM_SKUS[pool.vm_size] if pool is not None else None
    spec = container_for(name, dep, model, sku, api_key_secret=API_KEY_SECRET, onnx_server_image=onnx_image,
                         digest_pinned_default=args.digest_pinning_required, registry=args.registry_fills.get(name))
    images = [spec.image, *(s.image for s in spec.init_steps),
              *([spec.auth_proxy.image] if spec.auth_proxy is not None else [])]
    built = {ONNX_IMAGE_FROM_REGISTRY, FILL_IMAGE_FROM_REGISTRY}
    unpinned = sorted({i for i in images if i not in built and not image_is_digest_pinned(i)})
    if args.digest_pinning_required and unpinned:
        field = "auth_proxy_image" if spec.auth_proxy is not None and spec.auth_proxy.image in unpinned else "image"
        msg = (f"deployments.{name}.{field}: {', '.join(unpinned)} is not pinned by digest; prod images must be "
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
    if name in args.workload_identity_client_ids:
        labels["azure.workload.identity/use"] = "true"
    replicas = dep.replicas or args.default_replicas
    skips: list[str] = []
    if unpinned:
        skips.append("CKV_K8S_43=tag-pinned image where digests are not required (component check and policy K8S-08)")
    if spec.secret_env or spec.auth_proxy is not None:
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


def rollouts(pools: Mapping[str, NodePool], plans: Mapping[str, WorkloadPlan]) -> dict[str, Rollout]:
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
        pool = pools[pool_name]
        demand = sum(p.scale.max_replicas for p in members)
        slots = pool.max_count * min(pods_per_node(p.spec, p.sku) for p in members if p.sku is not None)
        if demand + len(members) > slots:
            out |= {p.name: REPLACE_ROLLOUT for p in members}
    return out


def _quantity_gib(gib: float) -> str:
    return f"{int(gib * 1024)}Mi"



def validation_errors(args: ServingWorkloadsArgs, plans: Mapping[str, WorkloadPlan]) -> list[str]:
    """Every missing input, naming the field and the fix (before any resource is declared)."""
    errors: list[str] = []
    for name, dep in sorted(args.deployments.items()):
        if dep.model not in args.models:
            errors.append(f"deployments.{name}.model: {dep.model!r} is not in models")
        if args.pools and dep.pool is not None and dep.pool not in args.pools:
            errors.append(f"deployments.{name}.pool: {dep.pool!r} is not in pools ({', '.join(sorted(args.pools))})")
    needs_key = sorted(n for n, p in plans.items() if p.spec.secret_env or p.spec.auth_proxy is not None)
    if args.key_vault is None and args.engine_api_key is None and needs_key:
        errors.append(f"engine_api_key: required for {', '.join(needs_key)} without key_vault (nothing else "
                      "holds it)")
    if args.key_vault is not None:
        absent = sorted(set(needs_key) - set(args.workload_identity_client_ids))
        if absent:
            errors.append(f"workload_identity_client_ids: no identity for deployment(s) {', '.join(absent)}; "
                          "the Key Vault secrets are read with it (pass it keyed by deployment name)")
    filled = sorted(n for n, p in plans.items() if any(s.image == FILL_IMAGE_FROM_REGISTRY for s in p.spec.init_steps))
    if filled and args.model_fill_image is None:
        errors.append(f"model_fill_image: required for {', '.join(filled)} (weights come from the registry); "
                      "pass ModelRegistry.model_fill_image")
    return errors


# --------------------------------------------------------------------------- the component


@dataclass
class _PodParts:
    """What a workload's pod template collects while its volumes and secrets are declared."""

    volumes: list[k8s.core.v1.VolumeArgs] = field(default_factory=list[k8s.core.v1.VolumeArgs])
    mounts: dict[str, k8s.core.v1.VolumeMountArgs] = field(default_factory=dict[str, k8s.core.v1.VolumeMountArgs])
    server_mounts: list[k8s.core.v1.VolumeMountArgs] = field(default_factory=list[k8s.core.v1.VolumeMountArgs])
    gate_mounts: list[k8s.core.v1.VolumeMountArgs] = field(default_factory=list[k8s.core.v1.VolumeMountArgs])
    """The API-key gate's mounts (its template, its in-memory run dir, the CSI volume), when it has one."""
    waits_for: list[pulumi.Resource] = field(default_factory=list[pulumi.Resource])
    """The Secret (or SecretProviderClass) and shared claims the Deployment waits for."""


class ServingWorkloads(pulumi.ComponentResource):
    """Hardened, autoscaled serving workloads for small language models, on any cluster.

    Creates, per entry of ``deployments``: a restricted Namespace ``slm-<name>``, a ServiceAccount, the
    API-key Secret source (a ``SecretProviderClass`` with ``key_vault``, else a Secret), a Deployment (pinned
    to its pool, GPU and Spot taints tolerated, rolling update sized to the pool), a ClusterIP Service, a
    PodDisruptionBudget, a KEDA ``ScaledObject`` (queue depth from Prometheus), NetworkPolicies (default deny;
    the gateway and the scraper in; DNS and only the egress the engine needs out) and an Ingress exposing only
    the OpenAI routes. With ``addons: install``: KEDA and ingress-nginx first.
    """

    workloads: Mapping[str, ServingWorkload]
    """What ``MonitoringStack`` scrapes, by deployment name."""
    kube_provider: k8s.Provider
    """The provider the objects were applied with (``kube_provider``, or the component's own)."""
    _type_token: ClassVar[str] = TYPE_TOKEN
    """The package constructs it as ``slm:index:ServingWorkloads`` (``components.package``)."""

    def __init__(self, name: str, args: ServingWorkloadsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        onnx_image = (args.onnx_server_image if isinstance(args.onnx_server_image, str)
                      else ONNX_IMAGE_FROM_REGISTRY if args.onnx_server_image is not None else None)
        missing = sorted(n for n, d in args.deployments.items() if d.model not in args.models)
        if missing:
            msg = f"ServingWorkloads {name!r}: deployments {', '.join(missing)} name models not in models"
            raise ValueError(msg)
        plans = {dep_name: workload_plan(args, dep_name, dep, onnx_image=onnx_image)
                 for dep_name, dep in sorted(args.deployments.items())}
        errors = validation_errors(args, plans)
        if errors:
            msg = f"ServingWorkloads {name!r}:\n" + "\n".join(f"- {e}" for e in errors)
            raise ValueError(msg)
        super().__init__(self._type_token, name, None, opts)
        self._args = args
        self._rollouts = rollouts(args.pools, plans)
        self.kube_provider = args.kube_provider or k8s.Provider(
            f"{name}-k8s", context=args.kube_context, opts=pulumi.ResourceOptions(parent=self))
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=self.kube_provider)
        if args.addons != ClusterAddons.PROVIDED:
            # ScaledObjects need KEDA's CRDs and the Ingresses the nginx class: there first.
            k8s_opts = pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(
                depends_on=self._local_addons(name, k8s_opts)))
        self.workloads = {dep_name: self._workload(name, plan, k8s_opts) for dep_name, plan in plans.items()}
        self.register_outputs({"deployments": sorted(self.workloads)})

    def _local_addons(self, name: str, k8s_opts: pulumi.ResourceOptions) -> list[pulumi.Resource]:
        """KEDA and ingress-nginx, installed (pinned Helm releases) or read to prove they exist."""
        if self._args.addons == ClusterAddons.CHECK:
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

    def _workload(self, name: str, plan: WorkloadPlan, k8s_opts: pulumi.ResourceOptions) -> ServingWorkload:
        spec = plan.spec
        prefix = f"{name}-{plan.name}"
        labels = dict(plan.pod_labels)
        common = {k: v for k, v in labels.items() if k != "azure.workload.identity/use"}

        def meta(obj_name: str, *, annotations: Mapping[str, pulumi.Input[str]] | None = None,
                 extra_labels: Mapping[str, str] | None = None) -> k8s.meta.v1.ObjectMetaArgs:
            return k8s.meta.v1.ObjectMetaArgs(name=obj_name, namespace=plan.namespace,
                                              labels={**common, **(extra_labels or {})},
                                              annotations=dict(annotations) if annotations else None)

        namespace = k8s.core.v1.Namespace(
            f"{prefix}-ns",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=plan.namespace, labels=namespace_labels(
                "restricted", extra={"app.kubernetes.io/part-of": PART_OF, "slm.io/engine": spec.engine})),
            opts=k8s_opts)
        in_ns = pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(depends_on=[namespace]))
        client_id = self._args.workload_identity_client_ids.get(plan.name)
        sa_annotations: dict[str, pulumi.Input[str]] = {}
        if client_id is not None:
            sa_annotations["azure.workload.identity/client-id"] = client_id
        k8s.core.v1.ServiceAccount(
            f"{prefix}-sa", metadata=meta(plan.service_account, annotations=sa_annotations),
            automount_service_account_token=False, opts=in_ns)
        pod = self._volumes(prefix, plan, meta, common, in_ns)
        if spec.auth_proxy is not None:
            self._auth_proxy_volumes(prefix, plan, spec.auth_proxy, meta, pod=pod, opts=in_ns)
        self._secret_source(prefix, plan, meta, in_ns, pod)
        self._deployment(prefix, plan, meta, in_ns, pod)
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
            deployment=plan.name, engine=spec.engine, namespace=plan.namespace, service_name=plan.name,
            port=spec.port, metrics_path=spec.metrics_path, served_model_name=spec.served_model_name,
            pod_labels=dict(labels), gpu=spec.gpu)

    def _volumes(self, prefix: str, plan: WorkloadPlan, meta: Any, common: Mapping[str, str],
                 opts: pulumi.ResourceOptions) -> _PodParts:
        """Scratch volumes, and model volumes: a shared claim per deployment or an ephemeral one per pod."""
        pod = _PodParts()
        for vol in plan.spec.scratch_volumes:
            pod.volumes.append(k8s.core.v1.VolumeArgs(name=vol.name, empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(
                medium="Memory" if vol.in_memory else None, size_limit=_quantity_gib(vol.size_limit_gib))))
            pod.mounts[vol.name] = k8s.core.v1.VolumeMountArgs(name=vol.name, mount_path=vol.mount_path)
        for claim in plan.spec.claim_volumes:
            requests = k8s.core.v1.VolumeResourceRequirementsArgs(requests={"storage": f"{claim.size_gib}Gi"})
            if claim.shared:
                # One claim per deployment that outlives its pods: a restart re-verifies, copies nothing.
                pvc = k8s.core.v1.PersistentVolumeClaim(
                    f"{prefix}-{claim.name}-pvc", metadata=meta(f"{plan.name}-{claim.name}"),
                    spec=k8s.core.v1.PersistentVolumeClaimSpecArgs(
                        access_modes=["ReadWriteMany"], storage_class_name=claim.storage_class, resources=requests),
                    opts=opts)
                pod.waits_for.append(pvc)
                pod.volumes.append(k8s.core.v1.VolumeArgs(
                    name=claim.name, persistent_volume_claim=k8s.core.v1.PersistentVolumeClaimVolumeSourceArgs(
                        claim_name=f"{plan.name}-{claim.name}")))
            else:
                pod.volumes.append(k8s.core.v1.VolumeArgs(
                    name=claim.name, ephemeral=k8s.core.v1.EphemeralVolumeSourceArgs(
                        volume_claim_template=k8s.core.v1.PersistentVolumeClaimTemplateArgs(
                            metadata=k8s.meta.v1.ObjectMetaArgs(labels=dict(common)),
                            spec=k8s.core.v1.PersistentVolumeClaimSpecArgs(
                                access_modes=["ReadWriteOnce"], storage_class_name=claim.storage_class,
                                resources=requests)))))
            pod.mounts[claim.name] = k8s.core.v1.VolumeMountArgs(name=claim.name, mount_path=claim.mount_path)
        pod.server_mounts = list(pod.mounts.values())
        return pod

    def _secret_source(self, prefix: str, plan: WorkloadPlan, meta: Any, opts: pulumi.ResourceOptions,
                       pod: _PodParts) -> None:
        """The Secret ``engine-api-key`` the engine reads: synced from Key Vault by the CSI driver, or plain."""
        args = self._args
        gated = plan.spec.auth_proxy is not None
        if not plan.spec.secret_env and not gated:
            return
        if args.key_vault is not None:
            pod.waits_for.insert(0, self._secret_provider_class(prefix, plan, args.key_vault, meta, opts))
            pod.volumes.append(k8s.core.v1.VolumeArgs(name="secrets-store", csi=k8s.core.v1.CSIVolumeSourceArgs(
                driver="secrets-store.csi.k8s.io", read_only=True,
                volume_attributes={"secretProviderClass": API_KEY_SECRET})))
            # Whoever reads the key mounts the CSI volume (the synced Secret exists only while one does).
            (pod.gate_mounts if gated else pod.server_mounts).append(k8s.core.v1.VolumeMountArgs(
                name="secrets-store", mount_path=CSI_MOUNT_PATH, read_only=True))
            return
        string_data: dict[str, pulumi.Input[str]] = {
            API_KEY_SECRET_KEY: pulumi.Output.secret(args.engine_api_key or "")}
        if self._gated(plan) and args.hugging_face_token is not None:
            string_data[HF_TOKEN_SECRET_KEY] = pulumi.Output.secret(args.hugging_face_token)
        pod.waits_for.insert(0, k8s.core.v1.Secret(
            f"{prefix}-api-key", metadata=meta(API_KEY_SECRET), type="Opaque", string_data=string_data, opts=opts))

    def _auth_proxy_volumes(self, prefix: str, plan: WorkloadPlan, gate: AuthProxy, meta: Any, *,
                            pod: _PodParts, opts: pulumi.ResourceOptions) -> None:
        """The gate's config template (a ConfigMap, no secret in it) and in-memory run dir, and its mounts."""
        config_name = f"{plan.name}-auth-proxy"
        k8s.core.v1.ConfigMap(f"{prefix}-auth-proxy", metadata=meta(config_name),
                              data={gate.template_name: gate.config_template}, opts=opts)
        run = gate.run_volume
        pod.volumes.append(k8s.core.v1.VolumeArgs(
            name="proxy-config", config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=config_name)))
        pod.volumes.append(k8s.core.v1.VolumeArgs(name=run.name, empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(
            medium="Memory", size_limit=_quantity_gib(run.size_limit_gib))))
        pod.gate_mounts += [
            k8s.core.v1.VolumeMountArgs(name="proxy-config", mount_path=gate.template_dir, read_only=True),
            k8s.core.v1.VolumeMountArgs(name=run.name, mount_path=run.mount_path)]

    def _containers(self, plan: WorkloadPlan, pod: _PodParts) -> tuple[list[k8s.core.v1.ContainerArgs],
                                                                        list[k8s.core.v1.ContainerArgs]]:
        """The engine container (and its API-key gate) and its init steps (registry-built images substituted)."""
        spec = plan.spec
        gate = spec.auth_proxy
        image: pulumi.Input[str] = spec.image
        if spec.image == ONNX_IMAGE_FROM_REGISTRY and self._args.onnx_server_image is not None:
            image = self._args.onnx_server_image

        def probe(p: Any, port: str | int = spec.port_name) -> k8s.core.v1.ProbeArgs:
            return k8s.core.v1.ProbeArgs(
                http_get=k8s.core.v1.HTTPGetActionArgs(path=p.path, port=port),
                period_seconds=p.period_seconds, timeout_seconds=p.timeout_seconds,
                failure_threshold=p.failure_threshold, success_threshold=p.success_threshold,
                initial_delay_seconds=p.initial_delay_seconds or None)

        quantities = spec.resources.as_quantities()
        init_resources = {k: v for k, v in quantities.items() if k != "nvidia.com/gpu"}
        env = [k8s.core.v1.EnvVarArgs(name=k, value=v) for k, v in sorted(spec.env.items())]
        env += [k8s.core.v1.EnvVarArgs(name=s.name, value_from=k8s.core.v1.EnvVarSourceArgs(
            secret_key_ref=k8s.core.v1.SecretKeySelectorArgs(name=s.secret_name, key=s.key)))
            for s in spec.secret_env]
        init_containers = [k8s.core.v1.ContainerArgs(
            name=step.name, image=self._init_image(step.image, image), image_pull_policy="Always",
            command=list(step.command), args=list(step.args) or None,
            env=[k8s.core.v1.EnvVarArgs(name=k, value=v) for k, v in sorted(step.env.items())],
            volume_mounts=[pod.mounts[m] for m in step.mounts],
            resources=k8s.core.v1.ResourceRequirementsArgs(requests=init_resources, limits=init_resources),
            security_context=container_security(spec.run_as_user),
        ) for step in spec.init_steps]
        # Gated: the engine listens on loopback only, declares no port, and the kubelet probes it through the
        # gate's port (by number: a named port resolves among the probed container's own ports).
        engine_port: str | int = spec.port if gate is not None else spec.port_name
        container = k8s.core.v1.ContainerArgs(
            name=spec.engine, image=image, image_pull_policy="Always",
            command=list(spec.command) or None, args=list(spec.args),
            ports=None if gate is not None else [
                k8s.core.v1.ContainerPortArgs(name=spec.port_name, container_port=spec.port, protocol="TCP")],
            env=env, volume_mounts=pod.server_mounts,
            resources=k8s.core.v1.ResourceRequirementsArgs(requests=quantities, limits=quantities),
            startup_probe=probe(spec.startup_probe, engine_port), readiness_probe=probe(spec.readiness_probe, engine_port),
            liveness_probe=probe(spec.liveness_probe, engine_port),
            security_context=container_security(spec.run_as_user),
        )
        containers = [container]
        if gate is not None:
            gate_quantities = gate.resources.as_quantities()
            containers.append(k8s.core.v1.ContainerArgs(
                name="auth-proxy", image=gate.image, image_pull_policy="Always", command=list(gate.command),
                env=[k8s.core.v1.EnvVarArgs(name=gate.key.name, value_from=k8s.core.v1.EnvVarSourceArgs(
                    secret_key_ref=k8s.core.v1.SecretKeySelectorArgs(name=gate.key.secret_name, key=gate.key.key)))],
                ports=[k8s.core.v1.ContainerPortArgs(name=spec.port_name, container_port=gate.port, protocol="TCP")],
                volume_mounts=pod.gate_mounts,
                resources=k8s.core.v1.ResourceRequirementsArgs(requests=gate_quantities, limits=gate_quantities),
                startup_probe=probe(gate.probe), readiness_probe=probe(gate.probe),
                liveness_probe=probe(gate.liveness_probe), security_context=container_security(spec.run_as_user),
            ))
        return containers, init_containers

    @staticmethod
    def _placement(plan: WorkloadPlan) -> tuple[dict[str, str] | None, list[k8s.core.v1.TolerationArgs]]:
        """The pool's node selector, and the taints its pods must tolerate (GPU, Spot)."""
        tolerations: list[k8s.core.v1.TolerationArgs] = []
        if plan.pool is None:
            return None, tolerations
        if plan.sku is not None and plan.sku.is_gpu:
            tolerations.append(k8s.core.v1.TolerationArgs(key="sku", operator="Equal", value="gpu",
                                                          effect="NoSchedule"))
            tolerations.append(k8s.core.v1.TolerationArgs(key="nvidia.com/gpu", operator="Exists",
                                                          effect="NoSchedule"))
        if plan.spot:
            tolerations.append(k8s.core.v1.TolerationArgs(key=SPOT_TAINT_KEY, operator="Equal",
                                                          value="spot", effect="NoSchedule"))
        return {POOL_LABEL: plan.pool}, tolerations

    def _deployment(self, prefix: str, plan: WorkloadPlan, meta: Any, opts: pulumi.ResourceOptions,
                    pod: _PodParts) -> None:
        spec = plan.spec
        containers, init_containers = self._containers(plan, pod)
        node_selector, tolerations = self._placement(plan)
        spread = [k8s.core.v1.TopologySpreadConstraintArgs(
            max_skew=1, topology_key=key, when_unsatisfiable="ScheduleAnyway",
            label_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dict(plan.selector)))
            for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")]
        annotations = {f"checkov.io/skip{i}": skip for i, skip in enumerate(plan.checkov_skips, start=1)}
        model = self._args.models[self._args.deployments[plan.name].model]
        if spec.engine == "vllm" and plan.sku is not None and plan.sku.is_gpu and model.artifacts.safetensors:
            # The policy pack re-runs the settings' memory-fit estimate from these (slm-serving-memory-fit).
            annotations |= shape_annotations(model.shape(model.artifacts.safetensors.quantization),
                                             gpu_memory_gib=plan.sku.gpu_memory_gib)
        rollout = self._rollouts[plan.name]
        k8s.apps.v1.Deployment(
            f"{prefix}-deploy",
            metadata=meta(plan.name, annotations=annotations or None),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                replicas=plan.scale.min_replicas, revision_history_limit=3,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dict(plan.selector)),
                strategy=k8s.apps.v1.DeploymentStrategyArgs(
                    type="RollingUpdate", rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(
                        max_surge=rollout.max_surge, max_unavailable=rollout.max_unavailable)),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=dict(plan.pod_labels)),
                    spec=k8s.core.v1.PodSpecArgs(
                        service_account_name=plan.service_account, automount_service_account_token=False,
                        enable_service_links=False, security_context=pod_security(spec.run_as_user),
                        init_containers=init_containers or None, containers=containers, volumes=pod.volumes,
                        node_selector=node_selector, tolerations=tolerations or None,
                        topology_spread_constraints=spread, termination_grace_period_seconds=60,
                    ),
                ),
            ),
            # KEDA owns the replica count once the ScaledObject exists; model start can be slow.
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(
                ignore_changes=["spec.replicas"], depends_on=[*pod.waits_for, *self._args.node_pools],
                custom_timeouts=pulumi.CustomTimeouts(create="40m", update="40m"))),
        )

    def _init_image(self, step_image: str, server_image: pulumi.Input[str]) -> pulumi.Input[str]:
        """An init step's image: the registry-built ones substituted by their pushed digests."""
        if step_image == ONNX_IMAGE_FROM_REGISTRY:
            return server_image
        if step_image == FILL_IMAGE_FROM_REGISTRY and self._args.model_fill_image is not None:
            return self._args.model_fill_image
        return step_image

    def _gated(self, plan: WorkloadPlan) -> bool:
        """Whether the pod downloads a gated model from the Hub itself (and so needs the token)."""
        args = self._args
        return args.models[args.deployments[plan.name].model].gated and plan.name not in args.registry_fills

    def _secret_provider_class(self, prefix: str, plan: WorkloadPlan, vault: KeyVaultSecrets, meta: Any,
                               opts: pulumi.ResourceOptions) -> k8s.apiextensions.CustomResource:
        names = [vault.engine_api_key_secret_name]
        data = [{"objectName": vault.engine_api_key_secret_name, "key": API_KEY_SECRET_KEY}]
        if self._gated(plan) and vault.hugging_face_token_secret_name:
            names.append(vault.hugging_face_token_secret_name)
            data.append({"objectName": vault.hugging_face_token_secret_name, "key": HF_TOKEN_SECRET_KEY})
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
                    "clientID": self._args.workload_identity_client_ids[plan.name],
                    "keyvaultName": vault.vault_name,
                    "tenantId": vault.tenant_id,
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
                                         namespace_selector=ns_selector(self._scraper_namespace()),
                                         pod_selector=self._scraper_pods())],
                                     ports=port)]), opts=opts)
        egress = [np.NetworkPolicyEgressRuleArgs(
            to=[np.NetworkPolicyPeerArgs(namespace_selector=ns_selector("kube-system"))],
            ports=[np.NetworkPolicyPortArgs(port=53, protocol="UDP"),
                   np.NetworkPolicyPortArgs(port=53, protocol="TCP")])]
        https = [np.NetworkPolicyPortArgs(port=443, protocol="TCP")]
        registry = any(s.needs_registry_egress for s in spec.init_steps)
        private_cidr = self._args.private_endpoint_cidr
        if registry and private_cidr is not None:
            # The weights storage's private endpoint, and Entra ID for the workload identity token
            # exchange (it has no private endpoint). Nothing else: no internet egress.
            egress.append(np.NetworkPolicyEgressRuleArgs(to=[
                np.NetworkPolicyPeerArgs(ip_block=np.IPBlockArgs(cidr=cidr)) for cidr in
                (private_cidr, *ENTRA_ID_LOGIN_CIDRS)], ports=https))
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
        """Where the metrics scraper runs (``metrics_scraper_namespace``, else in-cluster Prometheus's)."""
        args = self._args
        return args.metrics_scraper_namespace or args.monitoring_namespace

    def _scraper_pods(self) -> k8s.meta.v1.LabelSelectorArgs | None:
        """The scraper's pods inside its namespace (``metrics_scraper_pod_labels``; none: the whole namespace)."""
        labels = self._args.metrics_scraper_pod_labels
        return k8s.meta.v1.LabelSelectorArgs(match_labels=dict(labels)) if labels else None

    def _gateway_namespace(self) -> str:
        return self._args.gateway_namespace

    def _ingress(self, prefix: str, plan: WorkloadPlan, meta: Any, opts: pulumi.ResourceOptions) -> None:
        args = self._args
        ingress_class = args.gateway_ingress_class
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
                depends_on=list(args.gateway_certificate_grants)))
        host = args.gateway_hostname
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
    "ClusterAddons",
    "KeyVaultSecrets",
    "Rollout",
    "ServingWorkload",
    "ServingWorkloads",
    "ServingWorkloadsArgs",
    "gateway_path",
    "rollouts",
    "service_account_subject",
    "workload_plan",
)
