"""The whole typed shape of an environment, validated before any resource is declared.

A stack file (``stacks/Pulumi.<env>.yaml``) holds one object under ``slm-platform:settings``.
``tier`` selects defaults (``TIER_DEFAULTS``) so each file states only what differs. Every
cross-field rule lives here and fails with the YAML path, the value, and the fix. Nothing in
this module is a ``pulumi.Output``: these are plain, fully known values (STYLE P2).
"""

from __future__ import annotations

import datetime
import ipaddress
import re
from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal, Self

from pydantic import Field, field_validator, model_validator

from components.domain import (
    CONFIG_NAMESPACE,
    EDGE_DELIVERY_OS,
    EDGE_ENGINE_ARTIFACT,
    IOT_TAG_KEY_PATTERN,
    VM_SKUS,
    AksDeployment,
    Deployment,
    DeploymentName,
    DeviceClass,
    Fleet,
    FoundryDeployment,
    ModelId,
    ModelSpec,
    NodePool,
    OllamaDeployment,
    PoolName,
    Receiver,
    Replicas,
    SecretConfigKey,
    SystemPool,
    VllmDeployment,
    VmSize,
    secret_config_key,
)
from components.domain import FrozenModel as _Model
from components.domain.alerting import AlertSeverity, EmailAddress, EmailReceiver, WebhookReceiver
from components.domain.engines import CPU_CLUSTER_ENGINES, DEPLOYMENT_ARTIFACT, EDGE_ENGINES, ENGINES
from components.domain.fit import serving_fit_problem, vllm_fit_problem
from policies.rules.cidr import admits_internet, describe

SETTINGS_KEY: Final = f"{CONFIG_NAMESPACE}:settings"
EDGE_REGISTRY_TOKEN_PASSWORD_KEY: Final = f"{CONFIG_NAMESPACE}:edgeRegistryTokenPassword"
"""Secret config: the password of the ACR token edge devices pull with (``EdgePullToken``)."""

Tier = Literal["local", "dev", "staging", "prod"]
Uuid = Annotated[
    str, Field(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
]
LockKind = Literal["CanNotDelete", "ReadOnly"]


class ClusterSettings(_Model):
    """AKS (or, on ``local``, the laptop cluster from the current kubeconfig)."""

    kubernetes_version: Annotated[str, Field(pattern=r"^1\.\d{2}(\.\d+)?$")] = "1.33"
    sku_tier: Literal["Free", "Standard", "Premium"] = "Standard"
    system_pool: SystemPool = Field(default_factory=SystemPool)
    pools: dict[PoolName, NodePool] = Field(default_factory=dict)
    private_api_server: bool = False
    authorized_ip_ranges: tuple[str, ...] = Field(default=(), strict=False)
    """Default: none. Public API servers must list the CIDRs allowed to reach them."""
    admin_group_object_ids: tuple[Uuid, ...] = Field(default=(), strict=False)
    """Entra groups that administer the cluster (managed Entra ID with Azure RBAC)."""
    gpu_driver: Literal["aks-managed", "gpu-operator"] = "aks-managed"
    upgrade_channel: Literal["patch", "stable", "rapid", "node-image"] = "stable"
    node_os_upgrade_channel: Literal["NodeImage", "SecurityPatch"] = "NodeImage"
    kube_context: str | None = None
    """``local`` only: the kubeconfig context to deploy to. Default: the current context."""
    local_addons: Literal["install", "check"] = "install"
    """``local`` only. ``install`` (default): Helm-install KEDA (the ScaledObjects' CRDs and
    operator) and ingress-nginx (the gateway's ``nginx`` class) into the laptop cluster, pinned.
    ``check``: they are already there; ``pulumi up`` reads the ``scaledobjects.keda.sh`` CRD and the
    ``nginx`` IngressClass and fails naming the one that is missing."""
    gateway_hostname: str = "inference.example.internal"
    """Host name the TLS gateway serves the OpenAI routes on."""
    gateway_certificate_name: Annotated[str, Field(pattern=r"^[0-9A-Za-z-]{1,127}$")] = "gateway-tls"
    """Azure tiers: the Key Vault certificate (in the platform vault) the gateway serves for ``gateway_hostname``.
    Key Vault certificates have no ARM resource, so create or import it before the first ``pulumi up``
    (docs/components/inference-cluster.md#gateway-certificate); the app-routing add-on syncs it."""

    @field_validator("authorized_ip_ranges")
    @classmethod
    def _no_open_cidr(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for cidr in value:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                msg = f"{cidr!r} is not a CIDR; write it like 203.0.113.0/24"
                raise ValueError(msg) from None
        if admits_internet(value):  # by arithmetic: 0.0.0.0/1 + 128.0.0.0/1 is the internet too
            shown = value[0] if len(value) == 1 else ", ".join(value)
            msg = f"{shown!r} opens the API server to the internet; list your office/CI ranges"
            raise ValueError(msg)
        return value


class NetworkSettings(_Model):
    """The virtual network the platform lives in."""

    vnet_cidr: str = "10.40.0.0/16"
    aks_subnet_cidr: str = "10.40.0.0/20"
    private_endpoint_subnet_cidr: str = "10.40.16.0/24"

    @model_validator(mode="after")
    def _subnets_inside(self) -> Self:
        vnet = ipaddress.ip_network(self.vnet_cidr)
        for field_name in ("aks_subnet_cidr", "private_endpoint_subnet_cidr"):
            sub = ipaddress.ip_network(getattr(self, field_name))
            if not sub.subnet_of(vnet):  # type: ignore[arg-type]
                msg = f"{field_name}={sub} is not inside vnet_cidr={vnet}"
                raise ValueError(msg)
        a = ipaddress.ip_network(self.aks_subnet_cidr)
        b = ipaddress.ip_network(self.private_endpoint_subnet_cidr)
        if a.overlaps(b):
            msg = f"aks_subnet_cidr={a} overlaps private_endpoint_subnet_cidr={b}"
            raise ValueError(msg)
        return self


DeployerLocation = Literal["github-hosted", "in-vnet-runner", "workstation"]
DEPLOY_RUNNER_SUBNET_PREFIX: Final = 27
"""The deploy runner's subnet: a /27 (27 usable addresses after Azure's five) holds the scale set."""


class DeployRunnerSettings(_Model):
    """The self-hosted GitHub Actions runner the platform provisions inside its own VNet.

    A VM scale set (one instance, no public IP, outbound through a NAT gateway) registers an ephemeral
    runner with a GitHub App: the App's private key comes from the secret stack config
    ``slm-platform:deployRunnerAppKey`` and reaches the VM only in the extension's protected settings.
    """

    github_repository: Annotated[str, Field(pattern=r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")]
    """``owner/repo`` the runner registers with (its workflows run the deploy jobs on it)."""
    github_app_id: int = Field(ge=1)
    github_app_installation_id: int = Field(ge=1)
    label: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{2,62}$")] | None = None
    """The ``runs-on`` label the workflows use for this stack. Default: ``slm-deploy-<stack>``, so two stacks on
    one tier (a ``qa`` stack on the staging tier) never share a runner, its VNet or its identity."""
    subnet_cidr: str | None = None
    """Default: the /27 right after ``network.private_endpoint_subnet_cidr``."""
    vm_size: VmSize = "Standard_D2ds_v5"
    admin_ssh_public_key: Annotated[str, Field(pattern=r"^ssh-(ed25519|rsa) [A-Za-z0-9+/=]{40,}( \S+)?$")]
    """Azure requires one for a Linux VM; inbound SSH is closed anyway (no public IP, the subnet's NSG denies
    inbound). Give the public half of a break-glass key reachable through Bastion, or one whose private half
    nobody holds."""


class DeployerSettings(_Model):
    """Where ``pulumi up`` runs and as whom: decides which data planes it can reach (policy slm-reach-deployer)."""

    location: DeployerLocation = "github-hosted"
    """``github-hosted``: a GitHub-hosted runner (random public egress IPs, outside every VNet).
    ``in-vnet-runner``: the platform's own runner (``runner``) inside the VNet, egress through its NAT IP.
    ``workstation``: a person's machine; give its egress in ``egress_cidrs``."""
    principal_type: Literal["ServicePrincipal", "User"] = "ServicePrincipal"
    """Default: a service principal (the GitHub OIDC identity of the deploy workflow). Set ``User`` for a
    person deploying with ``az login``: the deployer is granted AcrPush (ONNX image) and IoT Hub Data
    Contributor (edge deployments)."""
    egress_cidrs: tuple[str, ...] = Field(default=(), strict=False)
    """Public IPv4 ranges the deployer's traffic leaves from when it is fixed (a workstation's office range, a
    static-IP larger runner). Default: none (a github-hosted runner's IPs are not fixed)."""
    runner: DeployRunnerSettings | None = None
    """Required for ``in-vnet-runner``; the platform creates it."""

    @field_validator("egress_cidrs")
    @classmethod
    def _egress(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _firewall_cidrs("deployer.egress_cidrs", value)

    @model_validator(mode="after")
    def _runner_matches_location(self) -> Self:
        if self.location == "in-vnet-runner" and self.runner is None:
            msg = ("deployer.runner: required when deployer.location is 'in-vnet-runner' (the platform creates "
                   "that runner); set github_repository, github_app_id, github_app_installation_id and "
                   "admin_ssh_public_key")
            raise ValueError(msg)
        if self.location != "in-vnet-runner" and self.runner is not None:
            msg = (f"deployer.runner: set, but deployer.location is {self.location!r}; remove it or set "
                   "location: in-vnet-runner")
            raise ValueError(msg)
        return self


class FoundrySettings(_Model):
    """The Azure AI Foundry account."""

    public_network_access_enabled: bool = False
    """Default: disabled, reached through a private endpoint. Dev may open it to ``allowed_ip_ranges``."""
    allowed_ip_ranges: tuple[str, ...] = Field(default=(), strict=False)
    """Default: none. Public CIDRs let through the account's firewall when public access is enabled."""
    application_principal_ids: dict[str, Uuid] = Field(default_factory=dict)
    """Entra object ids of applications that call the models (granted *Cognitive Services User*)."""

    @field_validator("allowed_ip_ranges")
    @classmethod
    def _foundry_cidrs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _firewall_cidrs("foundry.allowed_ip_ranges", value)


class RegistrySettings(_Model):
    """Container registry and weights storage."""

    sku: Literal["Basic", "Standard", "Premium"] = "Premium"
    retention_days: int = Field(default=30, ge=0, le=365)
    allowed_ip_ranges: tuple[str, ...] = Field(default=(), strict=False)
    """Default: none. Public CIDRs let through the firewalls of the weights storage, the Key Vault and
    a Premium registry when they have no private endpoint (dev). With private endpoints they are
    still applied, for deployers outside the VNet."""
    secrets_rotated_on: datetime.date | None = Field(default=None, strict=False)
    """The day the Key Vault secrets (engine API key, Grafana password) were last rotated; they expire
    (``exp``) one year later, so plans stay deterministic. Default: no expiry date; prod requires it."""
    weights_source: Literal["registry", "huggingface"] | None = None
    """Where serving pods get their weights. ``registry``: only from the weights storage, filled by
    ``slmctl models sync`` and verified against its manifest at every pod start, with no internet
    egress. ``huggingface``: vLLM/ONNX download the pinned revision from the Hub at start (needs HTTPS
    egress; gated models need the token in the pods). Default: ``registry`` on staging and prod (the
    only value allowed there), ``huggingface`` on dev and local."""

    @field_validator("allowed_ip_ranges")
    @classmethod
    def _registry_cidrs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _firewall_cidrs("registry.allowed_ip_ranges", value)


_RFC1918: Final = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))


def _firewall_cidrs(path: str, value: tuple[str, ...]) -> tuple[str, ...]:
    """Reject what is not a public IPv4 CIDR, or opens a firewall to the whole internet."""
    for cidr in value:
        try:
            net = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            msg = f"{path}: {cidr!r} is not a CIDR; write it like 203.0.113.0/24"
            raise ValueError(msg) from None
        if net.version != 4 or net.prefixlen == 0 or net.is_loopback or any(
            net.subnet_of(private) for private in _RFC1918  # type: ignore[arg-type]
        ):
            msg = (f"{path}: {cidr!r} must be a public IPv4 range other than 0.0.0.0/0 (Azure service "
                   "firewalls take public IPv4 only); reach private addresses through private endpoints")
            raise ValueError(msg)
    if admits_internet(value):
        msg = (f"{path}: {', '.join(value)!r} together admit {describe(value)}, which is the internet; list your "
               "office/CI ranges (at most a /8 in total)")
        raise ValueError(msg)
    return value




class SmtpSettings(_Model):
    """The mail relay the in-cluster Alertmanager sends e-mail through (Azure sends its own)."""

    smarthost: Annotated[str, Field(pattern=r"^[A-Za-z0-9.-]+:\d{2,5}$")]
    """``host:port``, e.g. ``smtp.office365.com:587`` (STARTTLS required)."""
    sender: EmailAddress
    username: str | None = None
    password_secret: SecretConfigKey | None = None
    """Default: no SMTP authentication (a relay that trusts the cluster)."""


class MonitoringSettings(_Model):
    """Where metrics, dashboards and logs go, and who is told when an alert fires."""

    mode: Literal["in-cluster", "azure-managed"] = "in-cluster"
    retention_days: int = Field(default=30, ge=30, le=730)
    scrape_interval_seconds: int = Field(default=30, ge=5, le=300)
    grafana_enabled: bool = True
    grafana_admin_group_object_ids: tuple[Uuid, ...] | None = None
    """azure-managed only: Entra groups granted *Grafana Admin* on Managed Grafana (the only way to sign
    in: Managed Grafana has no local users). Default: ``cluster.admin_group_object_ids``."""
    grafana_viewer_group_object_ids: tuple[Uuid, ...] = ()
    """azure-managed only: Entra groups granted *Grafana Viewer* (dashboards and alerts, read-only)."""
    runbook_base_url: Annotated[str, Field(pattern=r"^https://\S+$")] | None = None
    """Absolute base of every alert's ``runbook_url`` (``<base>/<alert>.md``), e.g.
    ``https://github.com/<org>/<repo>/blob/main/docs/runbooks``: a notification's link must open.
    Default: none, and the rules keep repository-relative links, which the stack invariant
    ``slm-ops-alert-routing`` reports (mandatory in staging and prod)."""
    receivers: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,30}$")], Receiver] = Field(
        default_factory=dict)
    """Who can be told: by name, an e-mail list, a webhook or a PagerDuty-style routing key."""
    routes: dict[AlertSeverity, Annotated[tuple[str, ...], Field(strict=False)]] = Field(default_factory=dict)
    """Severity -> the receivers it notifies (Azure action groups / Alertmanager routes). Every
    severity an alert uses must list at least one (invariant ``slm-ops-alert-routing``)."""
    smtp: SmtpSettings | None = None
    """Required for e-mail receivers on the in-cluster path."""

    def secret_keys(self) -> list[str]:
        """Every secret config key the receivers and SMTP read (``namespace:key``)."""
        keys = [r.url_secret if isinstance(r, WebhookReceiver) else r.routing_key_secret
                for r in self.receivers.values() if not isinstance(r, EmailReceiver)]
        if self.smtp is not None and self.smtp.password_secret is not None:
            keys.append(self.smtp.password_secret)
        return sorted({secret_config_key(k) for k in keys})


class EdgeSettings(_Model):
    """Edge device classes and the fleets that run on them."""

    device_classes: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,30}$")], DeviceClass] = (
        Field(default_factory=dict)
    )
    fleets: dict[DeploymentName, Fleet] = Field(default_factory=dict)


class Tags(_Model):
    """Required tags for cost allocation and ownership (every taggable Azure resource)."""

    owner: Annotated[str, Field(min_length=1)]
    cost_center: Annotated[str, Field(pattern=r"^cc-\d{4}$")]
    workload: str = "slm-platform"
    extra: dict[str, str] = Field(default_factory=dict)


# --------------------------------------------------------------------------- the environment

TIER_DEFAULTS: Final[Mapping[str, Mapping[str, Any]]] = {
    "local": {
        "lock": None,
        "budget_usd_per_month": 0,
        "replicas": {"min": 1, "max": 1},
        "monitoring": {"mode": "in-cluster", "retention_days": 30},
        "cluster": {"sku_tier": "Free"},
    },
    "dev": {
        "lock": None,
        "budget_usd_per_month": 1500,
        "replicas": {"min": 0, "max": 1},
        "foundry": {"public_network_access_enabled": False},
        "registry": {"sku": "Standard", "retention_days": 7},
        "monitoring": {"mode": "in-cluster", "retention_days": 30},
        "cluster": {"sku_tier": "Free", "system_pool": {"count": 1, "vm_size": "Standard_D4ds_v5"}},
    },
    "staging": {
        "lock": None,
        "budget_usd_per_month": 6000,
        "replicas": {"min": 1, "max": 2},
        "registry": {"sku": "Premium", "retention_days": 14},
        "monitoring": {"mode": "azure-managed", "retention_days": 90},
        "cluster": {"sku_tier": "Standard", "system_pool": {"count": 2, "zones": ["1", "2", "3"]}},
    },
    "prod": {
        "lock": "CanNotDelete",
        "budget_usd_per_month": 40000,
        "replicas": {"min": 2, "max": 4},
        "registry": {"sku": "Premium", "retention_days": 30},
        "monitoring": {"mode": "azure-managed", "retention_days": 365},
        "cluster": {
            "sku_tier": "Standard",
            "private_api_server": True,
            "system_pool": {"count": 3, "zones": ["1", "2", "3"]},
        },
    },
}


def _deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(out[key], value)  # type: ignore[arg-type]
        else:
            out[key] = value
    return out


class EnvironmentSettings(_Model):
    """One environment (stack): everything ``stacks.platform.build`` needs."""

    tier: Tier
    name_prefix: Annotated[str, Field(pattern=r"^[a-z][a-z0-9]{1,9}$")]
    """Short prefix of every physical name, e.g. ``slmdev``."""
    location: str = "swedencentral"
    tags: Tags
    lock: LockKind | None = None
    """Default: ``CanNotDelete`` on stateful resources in prod, none elsewhere."""
    deployer: DeployerSettings = Field(default_factory=DeployerSettings)
    """Where ``pulumi up`` runs (``location``) and as whom (``principal_type``)."""
    budget_usd_per_month: float = Field(default=0, ge=0)
    """Ceiling on the estimated monthly cost; the policy gate fails a stack above it."""
    replicas: Replicas = Field(default_factory=Replicas)
    """The tier's default replica bounds for every AKS deployment."""
    network: NetworkSettings = Field(default_factory=NetworkSettings)
    models: dict[ModelId, ModelSpec]
    deployments: dict[DeploymentName, Deployment] = Field(default_factory=dict)
    cluster: ClusterSettings = Field(default_factory=ClusterSettings)
    foundry: FoundrySettings = Field(default_factory=FoundrySettings)
    registry: RegistrySettings = Field(default_factory=RegistrySettings)
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    edge: EdgeSettings = Field(default_factory=EdgeSettings)

    @model_validator(mode="before")
    @classmethod
    def _apply_tier_defaults(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and data.get("tier") in TIER_DEFAULTS:
            return _deep_merge(TIER_DEFAULTS[data["tier"]], data)  # type: ignore[arg-type]
        return data

    # -- derived views -------------------------------------------------------------------

    @property
    def uses_azure(self) -> bool:
        """False on ``local``: a laptop cluster and no Azure resources."""
        return self.tier != "local"

    @property
    def deployer_principal_type(self) -> Literal["ServicePrincipal", "User"]:
        """``deployer.principal_type``: the principal type of the deployer's role assignments."""
        return self.deployer.principal_type

    def deploy_runner_label(self, stack: str) -> str | None:
        """The ``runs-on`` label of stack ``stack``'s in-VNet runner (``deployer.runner.label``, else
        ``slm-deploy-<stack>``), or None without one. Keyed by the stack, not the tier: the settings do not know
        their stack's name, so the caller passes it."""
        runner = self.deployer.runner
        if runner is None:
            return None
        return runner.label or f"slm-deploy-{stack}"

    def deploy_runner_subnet_cidr(self) -> str | None:
        """The runner's subnet: ``deployer.runner.subnet_cidr``, else the /27 after the private-endpoint subnet."""
        runner = self.deployer.runner
        if runner is None:
            return None
        if runner.subnet_cidr is not None:
            return runner.subnet_cidr
        pe = ipaddress.ip_network(self.network.private_endpoint_subnet_cidr)
        return str(ipaddress.ip_network(f"{pe.broadcast_address + 1}/{DEPLOY_RUNNER_SUBNET_PREFIX}"))

    @property
    def needs_hugging_face_token(self) -> bool:
        """True when serving pods download a gated model from Hugging Face (its token must be configured).

        Never when the weights come from the registry: then only the mirror (``slmctl models sync``)
        needs the token, from its own environment (``HF_TOKEN``)."""
        return not self.weights_from_registry and any(
            m.gated and m.artifacts.safetensors is not None for m in self.models.values())

    @property
    def weights_from_registry(self) -> bool:
        """Whether the serving pods load weights only from the ModelRegistry (see ``registry.weights_source``)."""
        default = "registry" if self.tier in {"staging", "prod"} else "huggingface"
        return (self.registry.weights_source or default) == "registry"

    @property
    def environment(self) -> str:
        """The value of the ``environment`` tag."""
        return self.tier

    def aks_deployments(self) -> dict[str, AksDeployment]:
        """The deployments that run as workloads on the cluster, by name."""
        return {k: v for k, v in self.deployments.items() if not isinstance(v, FoundryDeployment)}

    def foundry_deployments(self) -> dict[str, FoundryDeployment]:
        """The managed Foundry deployments, by name (sorted: they are created one after another)."""
        return {k: v for k, v in sorted(self.deployments.items()) if isinstance(v, FoundryDeployment)}

    def grafana_admin_groups(self) -> tuple[str, ...]:
        """Entra groups granted Grafana Admin: ``monitoring.grafana_admin_group_object_ids``, else the cluster admins."""
        groups = self.monitoring.grafana_admin_group_object_ids
        return tuple(str(g) for g in (groups if groups is not None else self.cluster.admin_group_object_ids))

    def replicas_for(self, deployment: AksDeployment) -> Replicas:
        """A deployment's own bounds, else the tier's."""
        return deployment.replicas or self.replicas

    def azure_tags(self) -> dict[str, str]:
        """Tags for every taggable Azure resource."""
        return {
            "environment": self.environment,
            "owner": self.tags.owner,
            "costCenter": self.tags.cost_center,
            "workload": self.tags.workload,
            "managedBy": "pulumi",
            **self.tags.extra,
        }

    # -- cross-field rules ---------------------------------------------------------------

    @model_validator(mode="after")
    def _cross_checks(self) -> Self:
        errors: list[str] = []
        for name, dep in sorted(self.deployments.items()):
            errors.extend(self._deployment_errors(name, dep))
        for name, fleet in sorted(self.edge.fleets.items()):
            errors.extend(self._fleet_errors(name, fleet))
        if self.tier == "prod":
            errors.extend(self._prod_errors())
        errors.extend(self._alerting_errors())
        errors.extend(self._deployer_errors())
        if (self.uses_azure and self.aks_deployments() and not self.cluster.private_api_server
                and not self.cluster.authorized_ip_ranges):
            errors.append("cluster.authorized_ip_ranges: empty on a public API server would open it to the "
                          "internet; list your office/CI CIDRs or set cluster.private_api_server: true")
        errors.extend(self._weights_source_errors())
        if self.tier == "local" and self.foundry_deployments():
            errors.append("deployments: the local tier has no Azure; remove the 'foundry' targets "
                          f"({', '.join(self.foundry_deployments())}) or use the dev tier")
        if errors:
            raise ValueError("\n".join(errors))
        return self

    def _weights_source_errors(self) -> list[str]:
        source = self.registry.weights_source
        if self.tier in {"staging", "prod"} and source == "huggingface":
            return [f"registry.weights_source: 'huggingface' is not allowed on {self.tier}, where serving pods "
                    "have no internet egress; remove it (the registry is the default) and run `slmctl models "
                    "sync` before deploying"]
        if self.tier == "local" and source == "registry":
            return ["registry.weights_source: 'registry' needs Azure; the local tier has no ModelRegistry, "
                    "remove it"]
        if not self.weights_from_registry:
            return []
        errors: list[str] = []
        for name, dep in sorted(self.aks_deployments().items()):
            gguf = self.models[dep.model].artifacts.gguf if dep.model in self.models else None
            if isinstance(dep, OllamaDeployment) and gguf is not None and gguf.sha256 is None:
                errors.append(f"models.{dep.model}.artifacts.gguf.sha256: required for deployment {name!r}, whose "
                              "weights come from the registry: the blob digest is the artifact's registry revision "
                              "and what the mirror checks the Ollama tag against; set it (ollama show --modelfile "
                              f"{gguf.ollama_tag} prints it on the FROM line)")
        for name, fleet in sorted(self.edge.fleets.items()):
            gguf = self.models[fleet.model].artifacts.gguf if fleet.model in self.models else None
            if (fleet.engine in ("ollama", "llamacpp") and fleet.delivery != "foundry-local" and gguf is not None
                    and gguf.sha256 is None):
                errors.append(f"models.{fleet.model}.artifacts.gguf.sha256: required for edge fleet {name!r}, whose "
                              "devices pull the model from the registry: the blob digest is the artifact's registry "
                              f"revision; set it (ollama show --modelfile {gguf.ollama_tag} prints it on the FROM line)")
        return errors

    def _alerting_errors(self) -> list[str]:
        """Routes name existing receivers; e-mail in-cluster has a relay. (That every alert reaches a
        receiver is the stack invariant ``slm-ops-alert-routing``, which sees the deployed rules.)"""
        mon = self.monitoring
        errors = [f"monitoring.routes.{sev}: receiver {r!r} is not in monitoring.receivers; add it or use one "
                  f"of: {', '.join(sorted(mon.receivers)) or '(none defined)'}"
                  for sev, names in sorted(mon.routes.items()) for r in names if r not in mon.receivers]
        if mon.mode == "in-cluster" and mon.smtp is None and any(
                isinstance(r, EmailReceiver) for r in mon.receivers.values()):
            errors.append("monitoring.smtp: e-mail receivers on the in-cluster path need a mail relay; set "
                          "monitoring.smtp.smarthost and sender (or use a webhook receiver)")
        return errors

    def _deployment_errors(self, name: str, dep: Deployment) -> list[str]:
        path = f"deployments.{name}"
        if dep.model not in self.models:
            return [f"{path}.model: {dep.model!r} is not in the catalogue; "
                    f"use one of: {', '.join(sorted(self.models))}"]
        model = self.models[dep.model]
        errors: list[str] = []
        artifact = DEPLOYMENT_ARTIFACT.get(dep.target)
        if artifact is None:  # a deployment kind in the union without its registration (docs/adding-an-engine.md)
            return [f"{path}.target: {dep.target!r} is not registered in components/domain/engines.py ENGINES; "
                    "register it there (docs/adding-an-engine.md)"]
        if getattr(model.artifacts, artifact) is None:
            errors.append(f"{path}.target: {dep.target!r} needs models.{dep.model}.artifacts."
                          f"{artifact}, which is not set; add it or choose a target the model has "
                          "artifacts for")
        if isinstance(dep, FoundryDeployment):
            if dep.sku.endswith("ProvisionedManaged") and self.tier != "prod":
                errors.append(f"{path}.sku: {dep.sku!r} is reserved capacity billed around the "
                              f"clock; use GlobalStandard or DataZoneStandard on {self.tier}")
            return errors
        if self.tier == "local":
            return errors
        if dep.pool is None:
            errors.append(f"{path}.pool: required on the {self.tier} tier; "
                          f"use one of: {', '.join(sorted(self.cluster.pools)) or '(no pools defined)'}")
            return errors
        if dep.pool not in self.cluster.pools:
            errors.append(f"{path}.pool: {dep.pool!r} is not a pool of cluster.pools; "
                          f"use one of: {', '.join(sorted(self.cluster.pools)) or '(none defined)'}")
            return errors
        pool = self.cluster.pools[dep.pool]
        sku = VM_SKUS[pool.vm_size]
        engine = ENGINES[dep.target]
        if engine.gpu_only and not sku.is_gpu:
            cpu = " or ".join(repr(n) for n in CPU_CLUSTER_ENGINES)
            errors.append(f"{path}.pool: {dep.pool!r} is a CPU pool ({pool.vm_size}) and the "
                          f"{engine.title} image is CUDA-only (seed defect D3); use a GPU pool, or target "
                          f"{cpu} for CPU serving")
        elif isinstance(dep, VllmDeployment):
            if errors == []:
                errors.extend(filter(None, [vllm_fit_problem(path, dep, model, pool.vm_size)]))
        else:
            # the quantization of the registered artifact it serves (int4 where an artifact names none)
            quant = str(getattr(getattr(model.artifacts, artifact), "quantization", "int4"))
            errors.extend(filter(None, [serving_fit_problem(path, dep.model, model, quantization=quant,
                                                            context_tokens=dep.context_tokens, vm_size=pool.vm_size)]))
        return errors

    def _fleet_errors(self, name: str, fleet: Fleet) -> list[str]:
        path = f"edge.fleets.{name}"
        errors: list[str] = []
        if fleet.device_class not in self.edge.device_classes:
            errors.append(f"{path}.device_class: {fleet.device_class!r} is not defined; use one of: "
                          f"{', '.join(sorted(self.edge.device_classes)) or '(none defined)'}")
        if fleet.model not in self.models:
            errors.append(f"{path}.model: {fleet.model!r} is not in the catalogue; use one of: "
                          f"{', '.join(sorted(self.models))}")
        if fleet.delivery == "foundry-local":
            if fleet.engine is not None:
                errors.append(f"{path}.engine: foundry-local runs its own runtime; remove engine "
                              f"{fleet.engine!r}")
        elif fleet.engine is None:
            errors.append(f"{path}.engine: required for delivery {fleet.delivery!r}; "
                          f"use one of: {', '.join(EDGE_ENGINES)}")
        if not fleet.devices and not fleet.device_selector:
            errors.append(f"{path}: name its devices or give a device_selector")
        if len(set(fleet.devices)) != len(fleet.devices):
            dupes = sorted({d for d in fleet.devices if fleet.devices.count(d) > 1})
            errors.append(f"{path}.devices: duplicate device names {dupes}; list each device once")
        errors.extend(self._edge_fleet_errors(name, fleet))
        return errors

    def _edge_fleet_errors(self, name: str, fleet: Fleet) -> list[str]:
        """Delivery/OS, artifacts, pinning, tag syntax and memory fit of one fleet."""
        path = f"edge.fleets.{name}"
        if fleet.device_class not in self.edge.device_classes or fleet.model not in self.models:
            return []  # reported above; the rest needs both
        device, model = self.edge.device_classes[fleet.device_class], self.models[fleet.model]
        errors: list[str] = []
        allowed_os = EDGE_DELIVERY_OS[fleet.delivery]
        if device.os not in allowed_os:
            errors.append(f"{path}.delivery: {fleet.delivery!r} does not run on {device.os} devices "
                          f"(device class {fleet.device_class!r}); it needs {' or '.join(allowed_os)}"
                          + ("; Foundry Local is a Windows/macOS desktop runtime, never a container (D8)"
                             if fleet.delivery == "foundry-local" else ""))
        if fleet.engine is not None:
            artifact = EDGE_ENGINE_ARTIFACT[fleet.engine]
            if getattr(model.artifacts, artifact) is None:
                errors.append(f"{path}.engine: {fleet.engine!r} needs models.{fleet.model}.artifacts."
                              f"{artifact}, which is not set; add it or choose an engine the model has "
                              "artifacts for")
            elif fleet.engine == "onnx-genai" and model.artifacts.onnx is not None and not (
                    model.artifacts.onnx.cpu_variant
                    or (device.accelerator == "nvidia-jetson" and model.artifacts.onnx.cuda_variant)):
                errors.append(f"{path}.engine: models.{fleet.model}.artifacts.onnx has no cpu_variant "
                              f"for device class {fleet.device_class!r}; add one (e.g. "
                              "cpu_and_mobile/cpu-int4-rtn-block-32-acc-level-4)")
            _, sha = fleet.artifact_pin(fleet.model, model)
            if fleet.engine == "llamacpp" and model.artifacts.gguf is not None and sha is None:
                errors.append(f"{path}: llamacpp loads the GGUF blob by its sha256; set models."
                              f"{fleet.model}.artifacts.gguf.sha256 or artifact_sha256")
            elif self.tier == "prod" and sha is None and artifact == "gguf":
                # An Ollama tag can be re-pushed; an ONNX revision is a git commit (already immutable).
                errors.append(f"{path}.artifact_sha256: prod fleets load only verified weights and an "
                              f"Ollama tag can move; set models.{fleet.model}.artifacts.gguf.sha256 (or this)")
        if self.tier == "prod" and fleet.image is not None and "@sha256:" not in fleet.image:
            errors.append(f"{path}.image: {fleet.image!r} is not pinned by digest; prod images must be "
                          "'repo:tag@sha256:<digest>'")
        if self.tier == "prod" and fleet.auth_proxy_image is not None and "@sha256:" not in fleet.auth_proxy_image:
            errors.append(f"{path}.auth_proxy_image: {fleet.auth_proxy_image!r} is not pinned by digest; prod images "
                          "must be 'repo:tag@sha256:<digest>'")
        elif fleet.auth_proxy_image is not None and fleet.engine != "ollama":
            errors.append(f"{path}.auth_proxy_image: set for engine {fleet.engine!r}, which checks the API key "
                          "itself; remove it (only ollama runs the gate)")
        if (self.tier == "prod" and fleet.delivery == "foundry-local"
                and (fleet.foundry_model is None or ":" not in fleet.foundry_model)):
            errors.append(f"{path}.foundry_model: prod pins a versioned Foundry Local model id, e.g. "
                          "'Phi-4-mini-instruct-generic-cpu:1', not an alias that may move")
        if fleet.context_tokens > model.max_context_tokens:
            errors.append(f"{path}.context_tokens: {fleet.context_tokens} exceeds the model's "
                          f"{model.max_context_tokens}-token context; lower it")
        for key, value in sorted(fleet.device_selector.items()):
            if not re.fullmatch(IOT_TAG_KEY_PATTERN, key) or key == "slmFleet":
                errors.append(f"{path}.device_selector: key {key!r} must match {IOT_TAG_KEY_PATTERN} "
                              "and not be 'slmFleet' (set by the platform)")
            if "'" in value or "\\" in value or not value:
                errors.append(f"{path}.device_selector.{key}: {value!r} must be non-empty without quotes "
                              "or backslashes (it becomes a twin-tag condition)")
        fit = fleet.fit_error(path, model, fleet.device_class, self.edge.device_classes)
        if fit is not None:
            errors.append(fit)
        return errors

    def _deployer_errors(self) -> list[str]:
        runner_cidr = self.deploy_runner_subnet_cidr()
        if self.tier == "local" and self.deployer.location == "in-vnet-runner":
            return ["deployer.location: 'in-vnet-runner' needs a VNet; the local tier has none (use workstation)"]
        if runner_cidr is None:
            return []
        try:
            subnet = ipaddress.ip_network(runner_cidr)
        except ValueError:
            return [f"deployer.runner.subnet_cidr: {runner_cidr!r} is not a CIDR; write it like 10.40.17.0/27"]
        vnet = ipaddress.ip_network(self.network.vnet_cidr)
        if not subnet.subnet_of(vnet):  # type: ignore[arg-type]
            return [f"deployer.runner.subnet_cidr: {subnet} is not inside network.vnet_cidr={vnet}; set a /27 "
                    "inside it"]
        for name in ("aks_subnet_cidr", "private_endpoint_subnet_cidr"):
            other = ipaddress.ip_network(getattr(self.network, name))
            if subnet.overlaps(other):
                return [f"deployer.runner.subnet_cidr: {subnet} overlaps network.{name}={other}; pick a free range"]
        return []

    def _prod_errors(self) -> list[str]:
        errors: list[str] = []
        if self.foundry.public_network_access_enabled:
            errors.append("foundry.public_network_access_enabled: true is not allowed in prod; "
                          "the account is reached through its private endpoint")
        if not self.cluster.private_api_server:
            errors.append("cluster.private_api_server: false is not allowed in prod")
        for name, dep in sorted(self.aks_deployments().items()):
            if dep.image is not None and "@sha256:" not in dep.image:
                errors.append(f"deployments.{name}.image: {dep.image!r} is not pinned by digest; "
                              "prod images must be 'repo:tag@sha256:<digest>'")
            proxy = dep.auth_proxy_image if isinstance(dep, OllamaDeployment) else None
            if proxy is not None and "@sha256:" not in proxy:
                errors.append(f"deployments.{name}.auth_proxy_image: {proxy!r} is not pinned by digest; "
                              "prod images must be 'repo:tag@sha256:<digest>'")
        return errors
