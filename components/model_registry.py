"""ModelRegistry: the model catalogue made real on Azure, secure by default.

Azure AI Foundry (account, project, one model deployment per Foundry target), a container
registry for engine images and OCI model artifacts, a storage account for weights, a Key Vault
for the platform's secrets, and the RBAC that lets the cluster and the serving workloads use
them. Everything stateful is private when a private-endpoint subnet is given, locked and
``protect``-ed in prod. Read ``docs/components/model-registry.md`` for the full contract.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Final, Literal

import pulumi
import pulumi_random as random
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.settings import get_monitor
from pulumi_azure_native import cognitiveservices, containerregistry, keyvault, storage

from components._naming import azure_name
from components._standard import (
    DiagnosticSetting,
    PrivateEndpointConfig,
    RoleAssignment,
    StandardInterfaces,
    apply_diagnostic_settings,
    apply_lock,
    apply_private_endpoint,
    apply_role_assignments,
)
from components.acr_auth import ACR_TOKEN_USERNAME, acr_refresh_token
from components.registry.catalogue import registry_login_server

TYPE_TOKEN: Final = "slm:registry:ModelRegistry"  # noqa: S105 (a Pulumi type token)

ZONE_COGNITIVE_SERVICES: Final = "privatelink.cognitiveservices.azure.com"
ZONE_OPENAI: Final = "privatelink.openai.azure.com"
ZONE_AI_SERVICES: Final = "privatelink.services.ai.azure.com"
ZONE_REGISTRY: Final = "privatelink.azurecr.io"
ZONE_BLOB: Final = "privatelink.blob.core.windows.net"
ZONE_VAULT: Final = "privatelink.vaultcore.azure.net"
FOUNDRY_ZONES: Final = (ZONE_AI_SERVICES, ZONE_OPENAI, ZONE_COGNITIVE_SERVICES)
KNOWN_ZONES: Final = frozenset({*FOUNDRY_ZONES, ZONE_REGISTRY, ZONE_BLOB, ZONE_VAULT})

ENGINE_API_KEY_SECRET_NAME: Final = "engine-api-key"  # noqa: S105 (a name, not a value)
GRAFANA_PASSWORD_SECRET_NAME: Final = "grafana-admin-password"  # noqa: S105 (a name)
HUGGING_FACE_TOKEN_SECRET_NAME: Final = "hugging-face-token"  # noqa: S105 (a name)
SECRET_LIFETIME_DAYS: Final = 365

ONNX_SERVER_CONTEXT: Final = "components/engines/onnx_server"
"""Build context of the ONNX Runtime GenAI server image, relative to the Pulumi project directory
(relative, so the recorded plan is the same on every machine)."""
ONNX_SERVER_REPOSITORY: Final = "slm/onnx-genai-server"
ONNX_SERVER_VERSION: Final = "0.1.0"
MODEL_FILL_CONTEXT: Final = "components/registry"
"""Build context of the registry fill image (its Dockerfile is ``fill/Dockerfile``; it copies
``supply.py``), relative to the Pulumi project directory."""
MODEL_FILL_REPOSITORY: Final = "slm/model-fill"
MODEL_FILL_VERSION: Final = "0.1.0"
PLACEHOLDER_REGISTRY_TOKEN: Final = "offline-plan-placeholder"  # noqa: S105 (not a credential)
"""What the registry password is when no real exchange may run (preview, mock monitor)."""

REGISTRY_LOG_CATEGORIES: Final = ("ContainerRegistryRepositoryEvents", "ContainerRegistryLoginEvents")
BLOB_LOG_CATEGORIES: Final = ("StorageRead", "StorageWrite", "StorageDelete")
VAULT_LOG_CATEGORIES: Final = ("AuditEvent",)
FOUNDRY_LOG_CATEGORIES: Final = ("Audit", "RequestResponse")

RegistryTokenProvider = Callable[[str, str], str]
"""``(login_server, tenant_id) -> ACR refresh token``; see ``components.acr_auth``."""

Target = Literal["registry", "storage", "key_vault", "foundry"]


# --------------------------------------------------------------------------- args


@dataclass(frozen=True, kw_only=True)
class FoundryModelDeployment:
    """One model deployment on the Foundry account: a catalogue model, pinned, and its capacity."""

    model_format: str
    """The catalogue's publisher format, e.g. ``Microsoft`` or ``OpenAI``."""
    model_name: str
    """e.g. ``Phi-4-mini-instruct``."""
    model_version: str
    sku_name: str = "GlobalStandard"
    """Default: ``GlobalStandard`` (pay per token, processed in any Azure geography)."""
    capacity: int = 1
    """Default: 1 unit (1,000 tokens per minute on the Standard SKUs)."""
    rai_policy_name: str = "Microsoft.DefaultV2"
    """Default: Microsoft's default content filter."""


@dataclass(frozen=True, kw_only=True)
class ModelRegistryArgs(StandardInterfaces):
    """Inputs of ``ModelRegistry``.

    The standard interfaces behave as follows here. ``tags`` go on every taggable child. ``lock``
    (default none) covers the registry, the weights storage and the Key Vault, which are then also
    ``protect``-ed. Each ``role_assignments`` entry is scoped to the resource its role is about
    (AcrPull/AcrPush: registry; Storage Blob ...: storage; Key Vault ...: vault; Cognitive Services
    ...: Foundry account). ``diagnostic_settings`` are added, on every primary resource, to the
    workspace settings this component always creates.
    """

    name_prefix: str
    """Physical names: ``<prefix>acr``, ``<prefix>weights``, ``<prefix>-kv``, ``<prefix>-foundry``,
    ``<prefix>-models``; an invalid one is an error, never truncated."""
    resource_group_name: pulumi.Input[str]
    location: str
    subscription_id: pulumi.Input[str]
    """For role definition ids."""
    tenant_id: pulumi.Input[str]
    """The Key Vault's tenant, and the tenant sent in the registry token exchange."""
    log_analytics_workspace_id: pulumi.Input[str]
    """Audit and request logs of every primary resource go here (the component never creates it)."""
    engine_api_key: pulumi.Input[str]
    """Stored as Key Vault secret ``engine-api-key``; always handled as a Pulumi secret."""
    grafana_admin_password: pulumi.Input[str]
    """Stored as Key Vault secret ``grafana-admin-password``; always handled as a Pulumi secret."""
    hugging_face_token: pulumi.Input[str] | None = None
    """Default: none. Required when a catalogue model is gated on Hugging Face (Gemma): stored as
    Key Vault secret ``hugging-face-token`` for the serving pods (never an env literal, D10)."""
    recreatable: bool = False
    """Default: stable names, and purge protection on the vault (irreversible). ``True`` (a disposable
    environment): a random suffix on the vault and Foundry account names, which a deleted resource keeps
    blocking, and no purge protection, so the environment can be re-created right after a destroy."""
    registry_sku: str = "Premium"
    """Default: ``Premium``, the only SKU with a firewall, private endpoints and retention of untagged
    manifests. ``Basic``/``Standard`` get none of those (and cannot take a private endpoint)."""
    untagged_manifest_retention_days: int = 30
    """Default: untagged manifests are deleted after 30 days (Premium only)."""
    allowed_ip_ranges: Sequence[str] = ()
    """Default: none. Public IPv4 ranges admitted through the default-Deny firewalls of the registry
    (Premium), the weights storage and the vault, when there are no private endpoints."""
    zone_redundant_storage: bool = False
    """Default: the weights storage is locally redundant (``Standard_LRS``). ``True``: ``Standard_ZRS``."""
    blob_delete_retention_days: int = 7
    """Default: deleted blobs and containers stay recoverable for 7 days."""
    vault_soft_delete_retention_days: int = 7
    """Default: a deleted vault stays recoverable for 7 days (Azure's minimum)."""
    secrets_expire_at_unix_time: int | None = None
    """Default: the Key Vault secrets never expire. Given: every secret's ``exp`` (seconds since 1970 UTC)."""
    model_families: Sequence[str] = ()
    """Default: no weight containers. One private blob container per family (``phi4-mini``, ``qwen3``)."""
    foundry_deployments: Mapping[str, FoundryModelDeployment] = field(
        default_factory=dict[str, FoundryModelDeployment])
    """Default: no Foundry account. Given: an ``AIServices`` account, a project, and one deployment per entry,
    keyed by deployment name, created one after another in name order."""
    foundry_public_network_access_enabled: bool = False
    """Default: the Foundry account has no public access (reach it through its private endpoint)."""
    foundry_allowed_ip_ranges: Sequence[str] = ()
    """Default: none. With public access on, the only ranges the account's firewall admits."""
    foundry_application_principal_ids: Mapping[str, pulumi.Input[str]] = field(
        default_factory=dict[str, pulumi.Input[str]])
    """Default: none. Each principal (keyed by a stable name) gets Cognitive Services User on the account."""
    auto_upgrade_model_versions: bool = True
    """Default: a Foundry deployment moves to the model's new default version when its version expires
    (``OnceCurrentVersionExpired``). ``False``: ``NoAutoUpgrade``, the version stays pinned."""
    onnx_server_image_enabled: bool = False
    """Default: no image. ``True``: builds and pushes the ONNX Runtime GenAI server image
    (``onnx_server_image``) for the workloads and edge fleets that run the ``onnx-genai`` engine."""
    model_fill_image_enabled: bool = False
    """Default: no image. ``True``: builds and pushes the registry fill step (``model_fill_image``) that
    serving pods run to load their weights from the weights storage."""
    private_endpoint_subnet_id: pulumi.Input[str] | None = None
    """Default: no private endpoints. The registry (Premium), storage and vault keep public network
    access on behind a default-Deny firewall (``allowed_ip_ranges`` + trusted Azure services). Given:
    each gets a private endpoint here and public network access Disabled."""
    private_dns_zone_ids: Mapping[str, pulumi.Input[str]] = field(default_factory=dict[str, pulumi.Input[str]])
    """Default: none; the private endpoints get no DNS zone group and DNS is the caller's (e.g. a
    DeployIfNotExists policy). Private DNS zone ids keyed by zone name (``privatelink.azurecr.io``, ...)."""
    allowed_subnet_ids: Sequence[pulumi.Input[str]] = ()
    """Default: none. Subnets admitted through the firewalls of the weights storage and the Key Vault
    (virtual-network rules): the AKS subnet when there are no private endpoints (dev), so the CSI driver
    and the pods reach them. Each subnet needs the Microsoft.Storage and Microsoft.KeyVault service
    endpoints (``Foundation`` adds them); IP rules cannot admit the cluster, whose outbound IP Azure assigns."""
    kubelet_principal_id: pulumi.Input[str] | None = None
    """Default: nobody pulls. Given: the AKS kubelet identity gets AcrPull on the registry."""
    workload_principal_ids: Mapping[str, pulumi.Input[str]] = field(default_factory=dict[str, pulumi.Input[str]])
    """Default: none. Serving workload identities by deployment name. Each gets Storage Blob Data
    Reader on the weights storage and Key Vault Secrets User on the vault. Their federated
    credentials belong to ``InferenceCluster`` (it owns the OIDC issuer and service accounts)."""
    foundry_allowed_fqdns: Sequence[str] = ()
    """Default: the Foundry account may reach only the weights storage's blob endpoint (outbound is
    restricted). Add the FQDNs of anything else it must call."""
    registry_token_provider: RegistryTokenProvider | None = None
    """Default: ``components.acr_auth.acr_refresh_token`` with ``DefaultAzureCredential`` at deploy
    time (never during preview; under the mock monitor a placeholder is used instead). Pass a fake
    in tests. The deploying identity needs AcrPush on the registry."""
    onnx_server_image_tag: str = ONNX_SERVER_VERSION
    """Default: the server version this release of the framework ships. Consumers use the pushed
    digest (``onnx_server_image``), so the tag is only for humans."""
    onnx_server_context: str = ONNX_SERVER_CONTEXT
    """Default: ``components/engines/onnx_server`` (with its ``Dockerfile``), relative to the project."""


# --------------------------------------------------------------------------- pure logic


@dataclass(frozen=True, kw_only=True)
class PhysicalNames:
    """The Azure names of the component's resources (global names are DNS labels)."""

    registry: str
    storage_account: str
    key_vault: str
    foundry_account: str
    foundry_project: str


NAME_SUFFIX_LENGTH: Final = 5
"""``recreatable`` only: random characters (a-z, 0-9) appended to the names a deleted resource keeps blocking."""


def physical_names(prefix: str, suffix: str = "") -> PhysicalNames:
    """Derive every physical name from the name prefix (and the ``recreatable`` suffix); raise when one
    breaks Azure's rules."""
    extra = (suffix,) if suffix else ()
    return PhysicalNames(
        registry=azure_name("container_registry", prefix, "acr"),
        storage_account=azure_name("storage_account", prefix, "weights"),
        key_vault=azure_name("key_vault", prefix, "kv", *extra, separator="-"),
        foundry_account=azure_name("cognitive_services", prefix, "foundry", *extra, separator="-"),
        foundry_project=azure_name("cognitive_services", prefix, "models", separator="-"),
    )


def secret_expiry(rotated_on: datetime.date | None) -> int | None:
    """Unix time of the secrets' ``exp``: one year after the day they were rotated, at 00:00 UTC.

    Derived from that date, never from the clock, so two plans of the same commit are identical.
    """
    if rotated_on is None:
        return None
    expires = datetime.datetime.combine(
        rotated_on + datetime.timedelta(days=SECRET_LIFETIME_DAYS), datetime.time(), tzinfo=datetime.UTC
    )
    return int(expires.timestamp())


def storage_ip_rules(cidrs: Sequence[str]) -> list[str]:
    """Storage firewalls reject /31 and /32 prefixes: list those as single addresses."""
    rules: list[str] = []
    for cidr in cidrs:
        net = ipaddress.ip_network(cidr, strict=False)
        rules.extend([str(a) for a in net] if net.prefixlen >= 31 else [str(net)])
    return rules


def role_target(role: str) -> Target:
    """The resource a caller-supplied role assignment is scoped to, decided by its role."""
    if role in {"AcrPull", "AcrPush"}:
        return "registry"
    if role.startswith("Storage Blob Data"):
        return "storage"
    if role.startswith("Key Vault"):
        return "key_vault"
    if role.startswith("Cognitive Services"):
        return "foundry"
    msg = (f"role_assignments: role {role!r} is not about a ModelRegistry resource; use an Acr*, "
           "'Storage Blob Data ...', 'Key Vault ...' or 'Cognitive Services ...' role, or assign it "
           "where it belongs")
    raise ValueError(msg)


def validation_errors(args: ModelRegistryArgs) -> list[str]:
    """Every reason the component cannot be built as asked, each naming the field, value and fix."""
    errors: list[str] = []
    try:
        physical_names(args.name_prefix, "0" * NAME_SUFFIX_LENGTH if args.recreatable else "")
    except ValueError as err:
        errors.append(f"name_prefix: {err}")
    sku = args.registry_sku
    if sku not in {"Basic", "Standard", "Premium"}:
        errors.append(f"registry_sku: {sku!r} is not an ACR SKU; use Basic, Standard or Premium")
    elif args.private_endpoint_subnet_id is not None and sku != "Premium":
        errors.append(f"registry_sku: {sku!r} cannot have a private endpoint (Premium only); use "
                      "Premium, or pass no private_endpoint_subnet_id")
    unknown_zones = sorted(set(args.private_dns_zone_ids) - KNOWN_ZONES)
    if unknown_zones:
        errors.append(f"private_dns_zone_ids: unknown zone(s) {unknown_zones}; use: "
                      f"{', '.join(sorted(KNOWN_ZONES))}")
    for key, ra in sorted(args.role_assignments.items()):
        try:
            target = role_target(ra.role)
        except ValueError as err:
            errors.append(f"role_assignments.{key}: {err}")
            continue
        if target == "foundry" and not args.foundry_deployments:
            errors.append(f"role_assignments.{key}: role {ra.role!r} targets the Foundry account, "
                          "which exists only with foundry_deployments")
    return errors


# --------------------------------------------------------------------------- the component


class ModelRegistry(pulumi.ComponentResource):
    """Where models and engine images live, and who may read them.

    Creates, always: a container registry (admin user and anonymous pull off; Premium: default-Deny
    firewall, retention of untagged manifests, export disabled when private), a StorageV2 account for
    weights (HTTPS/TLS 1.2 only, no shared keys, no public blobs, default-Deny firewall, versioning and
    soft delete) with one private blob container per model family, a Key Vault (RBAC, purge
    protection, default-Deny firewall) holding the ``engine-api-key`` and ``grafana-admin-password``
    secrets, diagnostic settings to the workspace for each, and the role assignments: AcrPull for the
    kubelet, Storage Blob Data Reader and Key Vault Secrets User per workload identity.

    With ``foundry_deployments``: an ``AIServices`` account (custom subdomain, local auth
    off, managed identity, default-Deny network ACLs, restricted outbound), a Foundry project, and one
    model deployment per Foundry target, created one after another; Cognitive Services User for each
    ``foundry_application_principal_ids``.

    With a private-endpoint subnet: a private endpoint (and DNS zone group) per resource and public
    network access Disabled. With an ``onnx-genai`` engine anywhere: the ONNX server image, built and
    pushed with an ACR refresh token (no registry password). In prod (or with a lock): a CanNotDelete
    lock and ``protect`` on the registry, storage account and vault.

    Federated credentials for the serving workloads are created by ``InferenceCluster``, which owns
    the OIDC issuer and the service accounts (creating them here would make a dependency cycle).
    """

    _type_token: ClassVar[str] = TYPE_TOKEN
    """Our stacks' token; the component package constructs it as ``slm:index:ModelRegistry``."""
    registry: containerregistry.Registry
    """Escape hatch: the container registry."""
    storage_account: storage.StorageAccount
    """Escape hatch: the weights storage account."""
    key_vault: keyvault.Vault
    """Escape hatch: the Key Vault."""
    foundry_account: cognitiveservices.Account | None
    """Escape hatch: the Foundry account; None without Foundry deployments."""

    registry_login_server: pulumi.Output[str]
    """e.g. ``slmprodacr.azurecr.io``: what image references need."""
    registry_id: pulumi.Output[str]
    registry_name: pulumi.Output[str]
    storage_account_id: pulumi.Output[str]
    storage_account_name: pulumi.Output[str]
    key_vault_id: pulumi.Output[str]
    key_vault_name: pulumi.Output[str]
    key_vault_uri: pulumi.Output[str]
    """e.g. ``https://slmprod-kv.vault.azure.net/``: what the Key Vault CSI driver needs."""
    foundry_account_id: pulumi.Output[str] | None
    foundry_account_name: pulumi.Output[str] | None
    foundry_endpoint: pulumi.Output[str] | None
    """The account's endpoint (Entra ID auth only: local auth is disabled)."""
    engine_api_key_secret_name: str
    """``engine-api-key``: the Key Vault secret holding the engines' API key."""
    grafana_password_secret_name: str
    """``grafana-admin-password``: the Key Vault secret holding Grafana's admin password."""
    hugging_face_token_secret_name: str | None
    """``hugging-face-token`` when ``hugging_face_token`` was given, else None."""
    onnx_server_image: pulumi.Output[str] | None
    """``<login_server>/slm/onnx-genai-server@sha256:...``; None when no onnx-genai engine is used."""
    model_fill_image: pulumi.Output[str] | None
    """``<login_server>/slm/model-fill@sha256:...``: the serving pods' registry fill step; None when no
    workload loads its weights from the registry."""

    def __init__(self, name: str, args: ModelRegistryArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        private = args.private_endpoint_subnet_id is not None
        errors = validation_errors(args)
        if errors:
            msg = "ModelRegistry " + repr(name) + ":\n" + "\n".join(f"- {e}" for e in errors)
            raise ValueError(msg)
        super().__init__(self._type_token, name, None, opts)

        self._prefix = name
        self._args = args
        self._private = private
        self._physical_names(name, args)
        self._tags = dict(args.tags)
        self._stateful_lock = args.lock
        self._stateful_protect = self._stateful_lock is not None
        self._foundry = dict(sorted(args.foundry_deployments.items()))
        caller = {t: {k: ra for k, ra in args.role_assignments.items() if role_target(ra.role) == t}
                  for t in ("registry", "storage", "key_vault", "foundry")}

        if self._foundry and not private and not args.foundry_public_network_access_enabled:
            pulumi.log.warn(
                "ModelRegistry: the Foundry account has public network access disabled and no private "
                "endpoint, so no client can reach its models; pass private_endpoint_subnet_id, or set "
                "foundry_public_network_access_enabled with foundry_allowed_ip_ranges", resource=self)

        self.engine_api_key_secret_name = ENGINE_API_KEY_SECRET_NAME
        self.hugging_face_token_secret_name = (
            HUGGING_FACE_TOKEN_SECRET_NAME if args.hugging_face_token is not None else None)
        self.grafana_password_secret_name = GRAFANA_PASSWORD_SECRET_NAME

        registry_children = self._registry(caller["registry"])
        storage_children = self._storage(caller["storage"])
        vault_children = self._key_vault(caller["key_vault"])
        self._foundry_account(caller["foundry"])
        self.onnx_server_image = self._built_image(
            "onnx-server", ONNX_SERVER_REPOSITORY, args.onnx_server_image_tag, args.onnx_server_context,
            "Dockerfile", depends_on=registry_children) if args.onnx_server_image_enabled else None
        self.model_fill_image = self._built_image(
            "model-fill", MODEL_FILL_REPOSITORY, MODEL_FILL_VERSION, MODEL_FILL_CONTEXT, "fill/Dockerfile",
            depends_on=registry_children) if args.model_fill_image_enabled else None

        # Locks last, after every child of their scope: a ReadOnly lock would block those writes.
        apply_lock(self, f"{name}-acr", scope_id=self.registry.id, lock=self._stateful_lock,
                   depends_on=[self.registry, *registry_children])
        apply_lock(self, f"{name}-weights", scope_id=self.storage_account.id, lock=self._stateful_lock,
                   depends_on=[self.storage_account, *storage_children])
        apply_lock(self, f"{name}-kv", scope_id=self.key_vault.id, lock=self._stateful_lock,
                   depends_on=[self.key_vault, *vault_children])

        self.register_outputs(self._outputs())

    def _physical_names(self, name: str, args: ModelRegistryArgs) -> None:
        self._names = physical_names(args.name_prefix)
        self._vault_name: pulumi.Input[str] = self._names.key_vault
        self._foundry_name: pulumi.Input[str] = self._names.foundry_account
        if args.recreatable:
            # A new suffix after every destroy (the RandomString goes with the stack), the same one in
            # every update in between (it lives in the state).
            suffix = random.RandomString(f"{name}-name-suffix", length=NAME_SUFFIX_LENGTH, upper=False,
                                         special=False, opts=pulumi.ResourceOptions(parent=self))
            self._vault_name = suffix.result.apply(lambda s: physical_names(args.name_prefix, s).key_vault)
            self._foundry_name = suffix.result.apply(lambda s: physical_names(args.name_prefix, s).foundry_account)

    def _outputs(self) -> dict[str, pulumi.Input[str]]:
        outputs: dict[str, pulumi.Input[str]] = {
            "registry_login_server": self.registry_login_server,
            "registry_id": self.registry_id,
            "registry_name": self.registry_name,
            "storage_account_id": self.storage_account_id,
            "storage_account_name": self.storage_account_name,
            "key_vault_id": self.key_vault_id,
            "key_vault_name": self.key_vault_name,
            "key_vault_uri": self.key_vault_uri,
            "engine_api_key_secret_name": self.engine_api_key_secret_name,
            "grafana_password_secret_name": self.grafana_password_secret_name,
        }
        optional = {"foundry_account_id": self.foundry_account_id,
                    "foundry_account_name": self.foundry_account_name,
                    "foundry_endpoint": self.foundry_endpoint,
                    "onnx_server_image": self.onnx_server_image,
                    "model_fill_image": self.model_fill_image}
        outputs.update({k: v for k, v in optional.items() if v is not None})
        return outputs

    # -- children ----------------------------------------------------------------------------

    def _child(self, *, protect: bool = False,
               depends_on: Sequence[pulumi.Resource] = ()) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, protect=protect, depends_on=list(depends_on))

    def _endpoint(self, prefix: str, *, resource_id: pulumi.Input[str], group_id: str,
                  zones: Sequence[str]) -> list[pulumi.Resource]:
        if self._args.private_endpoint_subnet_id is None:
            return []
        zone_ids = [self._args.private_dns_zone_ids[z] for z in zones if z in self._args.private_dns_zone_ids]
        return [apply_private_endpoint(
            self, prefix, resource_id=resource_id, group_id=group_id,
            config=PrivateEndpointConfig(subnet_id=self._args.private_endpoint_subnet_id,
                                         private_dns_zone_ids=zone_ids),
            resource_group_name=self._args.resource_group_name, location=self._args.location,
            tags=self._tags,
        )]

    def _diagnostics(self, prefix: str, resource_id: pulumi.Input[str],
                     categories: tuple[str, ...]) -> list[pulumi.Resource]:
        settings: dict[str, DiagnosticSetting] = {
            "workspace": DiagnosticSetting(workspace_resource_id=self._args.log_analytics_workspace_id,
                                           log_categories=categories),
        }
        for key, extra in self._args.diagnostic_settings.items():
            if key in settings:
                msg = f"diagnostic_settings: key {key!r} is reserved by ModelRegistry; choose another key"
                raise ValueError(msg)
            settings[key] = extra
        return list(apply_diagnostic_settings(self, prefix, resource_id=resource_id, settings=settings))

    def _grants(self, prefix: str, scope_id: pulumi.Input[str], own: Mapping[str, RoleAssignment],
                caller: Mapping[str, RoleAssignment]) -> list[pulumi.Resource]:
        clash = sorted(set(own) & set(caller))
        if clash:
            msg = f"role_assignments: key(s) {clash} are reserved by ModelRegistry; choose other keys"
            raise ValueError(msg)
        return list(apply_role_assignments(self, prefix, scope_id=scope_id,
                                           subscription_id=self._args.subscription_id,
                                           assignments={**own, **caller}))

    def _registry(self, caller: Mapping[str, RoleAssignment]) -> list[pulumi.Resource]:
        args, name = self._args, self._prefix
        premium = args.registry_sku == "Premium"
        # Firewall, private link and content policies are Premium features; Basic/Standard
        # registries reject them, so they are only sent for Premium.
        self.registry = containerregistry.Registry(
            f"{name}-acr",
            registry_name=self._names.registry,
            resource_group_name=args.resource_group_name,
            location=args.location,
            sku=containerregistry.SkuArgs(name=args.registry_sku),
            admin_user_enabled=False,
            anonymous_pull_enabled=False,
            public_network_access="Disabled" if self._private else "Enabled",
            network_rule_bypass_options="AzureServices",
            network_rule_set=containerregistry.NetworkRuleSetArgs(
                default_action="Deny",
                ip_rules=[containerregistry.IPRuleArgs(i_p_address_or_range=c, action="Allow")
                          for c in args.allowed_ip_ranges],
            ) if premium else None,
            policies=containerregistry.PoliciesArgs(
                retention_policy=containerregistry.RetentionPolicyArgs(
                    status="enabled", days=args.untagged_manifest_retention_days),
                # Export can only be disabled once public network access is (Azure rejects it otherwise).
                export_policy=containerregistry.ExportPolicyArgs(
                    status="disabled" if self._private else "enabled"),
                # Quarantine would hold every pushed image until a scanner releases it, so the
                # deployment that pushed the ONNX server could not pull it in the same update.
                quarantine_policy=containerregistry.QuarantinePolicyArgs(status="disabled"),
                # Docker Content Trust is being retired in ACR in favour of Notary Project (Notation)
                # signatures, which need no registry setting; sign images in the build pipeline.
                trust_policy=containerregistry.TrustPolicyArgs(status="disabled", type="Notary"),
            ) if premium else None,
            tags=dict(self._tags),
            opts=self._child(protect=self._stateful_protect),
        )
        self.registry_login_server = self.registry.login_server
        self.registry_id = self.registry.id
        self.registry_name = self.registry.name
        own: dict[str, RoleAssignment] = {}
        if args.kubelet_principal_id is not None:
            own["kubelet-acrpull"] = RoleAssignment(role="AcrPull", principal_id=args.kubelet_principal_id)
        children = self._endpoint(f"{name}-acr", resource_id=self.registry.id, group_id="registry",
                                  zones=(ZONE_REGISTRY,))
        children += self._diagnostics(f"{name}-acr", self.registry.id, REGISTRY_LOG_CATEGORIES)
        children += self._grants(f"{name}-acr", self.registry.id, own, caller)
        return children

    def _storage(self, caller: Mapping[str, RoleAssignment]) -> list[pulumi.Resource]:
        args, name = self._args, self._prefix
        self.storage_account = storage.StorageAccount(
            f"{name}-weights",
            account_name=self._names.storage_account,
            resource_group_name=args.resource_group_name,
            location=args.location,
            kind="StorageV2",
            sku=storage.SkuArgs(name="Standard_ZRS" if args.zone_redundant_storage else "Standard_LRS"),
            access_tier=storage.AccessTier.HOT,
            enable_https_traffic_only=True,
            minimum_tls_version="TLS1_2",
            allow_blob_public_access=False,
            allow_shared_key_access=False,
            default_to_o_auth_authentication=True,
            allow_cross_tenant_replication=False,
            public_network_access="Disabled" if self._private else "Enabled",
            network_rule_set=storage.NetworkRuleSetArgs(
                default_action=storage.DefaultAction.DENY,
                bypass="AzureServices",
                ip_rules=[storage.IPRuleArgs(i_p_address_or_range=ip, action=storage.Action.ALLOW)
                          for ip in storage_ip_rules(args.allowed_ip_ranges)],
                virtual_network_rules=[storage.VirtualNetworkRuleArgs(
                    virtual_network_resource_id=subnet, action=storage.Action.ALLOW)
                    for subnet in args.allowed_subnet_ids] or None,
            ),
            tags=dict(self._tags),
            opts=self._child(protect=self._stateful_protect),
        )
        self.storage_account_id = self.storage_account.id
        self.storage_account_name = self.storage_account.name
        retention = args.blob_delete_retention_days
        blob_service = storage.BlobServiceProperties(
            f"{name}-weights-blob",
            account_name=self.storage_account.name,
            resource_group_name=args.resource_group_name,
            blob_services_name="default",
            is_versioning_enabled=True,
            delete_retention_policy=storage.DeleteRetentionPolicyArgs(enabled=True, days=retention),
            container_delete_retention_policy=storage.DeleteRetentionPolicyArgs(enabled=True, days=retention),
            opts=self._child(),
        )
        children: list[pulumi.Resource] = [blob_service]
        for family in sorted(set(args.model_families)):
            children.append(storage.BlobContainer(
                f"{name}-weights-{family}",
                account_name=self.storage_account.name,
                resource_group_name=args.resource_group_name,
                container_name=azure_name("blob_container", family),
                public_access=storage.PublicAccess.NONE,
                opts=self._child(depends_on=[blob_service]),
            ))
        own = {f"wi-{dep}-blobreader": RoleAssignment(role="Storage Blob Data Reader", principal_id=pid)
               for dep, pid in args.workload_principal_ids.items()}
        children += self._endpoint(f"{name}-weights", resource_id=self.storage_account.id, group_id="blob",
                                   zones=(ZONE_BLOB,))
        # Blob logs are emitted by the blob service, not the account (which only has metrics).
        blob_service_id = pulumi.Output.concat(self.storage_account.id, "/blobServices/default")
        children += self._diagnostics(f"{name}-weights-blob", blob_service_id, BLOB_LOG_CATEGORIES)
        children += self._grants(f"{name}-weights", self.storage_account.id, own, caller)
        return children

    def _key_vault(self, caller: Mapping[str, RoleAssignment]) -> list[pulumi.Resource]:
        args, name = self._args, self._prefix
        self.key_vault = keyvault.Vault(
            f"{name}-kv",
            vault_name=self._vault_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            properties=keyvault.VaultPropertiesArgs(
                tenant_id=args.tenant_id,
                sku=keyvault.SkuArgs(family=keyvault.SkuFamily.A, name=keyvault.SkuName.STANDARD),
                enable_rbac_authorization=True,
                enable_soft_delete=True,
                soft_delete_retention_in_days=args.vault_soft_delete_retention_days,
                # Irreversible once on; a recreatable environment leaves it unset (off) so a destroyed
                # vault can be purged.
                enable_purge_protection=None if args.recreatable else True,
                enabled_for_deployment=False,
                enabled_for_disk_encryption=False,
                enabled_for_template_deployment=False,
                public_network_access="Disabled" if self._private else "Enabled",
                network_acls=keyvault.NetworkRuleSetArgs(
                    default_action="Deny",
                    bypass="AzureServices",
                    ip_rules=[keyvault.IPRuleArgs(value=c) for c in args.allowed_ip_ranges],
                    virtual_network_rules=[keyvault.VirtualNetworkRuleArgs(id=subnet)
                                           for subnet in args.allowed_subnet_ids] or None,
                ),
            ),
            tags=dict(self._tags),
            opts=self._child(protect=self._stateful_protect),
        )
        self.key_vault_id = self.key_vault.id
        self.key_vault_name = self.key_vault.name
        self.key_vault_uri = self.key_vault.properties.apply(lambda p: p.vault_uri)
        children = self._secrets()
        own = {f"wi-{dep}-secretsuser": RoleAssignment(role="Key Vault Secrets User", principal_id=pid)
               for dep, pid in args.workload_principal_ids.items()}
        children += self._endpoint(f"{name}-kv", resource_id=self.key_vault.id, group_id="vault",
                                   zones=(ZONE_VAULT,))
        children += self._diagnostics(f"{name}-kv", self.key_vault.id, VAULT_LOG_CATEGORIES)
        children += self._grants(f"{name}-kv", self.key_vault.id, own, caller)
        return children

    def _secrets(self) -> list[pulumi.Resource]:
        """The engine API key, Grafana password and (if given) Hugging Face token, in the vault."""
        args, name = self._args, self._prefix
        expires = args.secrets_expire_at_unix_time
        children: list[pulumi.Resource] = []
        # Secrets are written through ARM (management plane), so the vault firewall and private
        # endpoint do not stand between the deployer and them.
        secrets: list[tuple[str, str, pulumi.Input[str]]] = [
            ("engine-api-key", ENGINE_API_KEY_SECRET_NAME, args.engine_api_key),
            ("grafana-admin-password", GRAFANA_PASSWORD_SECRET_NAME, args.grafana_admin_password),
        ]
        if args.hugging_face_token is not None:
            secrets.append(("hugging-face-token", HUGGING_FACE_TOKEN_SECRET_NAME, args.hugging_face_token))
        for key, secret_name, value in secrets:
            children.append(keyvault.Secret(
                f"{name}-kv-{key}",
                resource_group_name=args.resource_group_name,
                vault_name=self.key_vault.name,
                secret_name=secret_name,
                properties=keyvault.SecretPropertiesArgs(
                    value=pulumi.Output.secret(value),
                    content_type="text/plain",
                    attributes=keyvault.SecretAttributesArgs(enabled=True, expires=expires),
                ),
                tags=dict(self._tags),
                opts=self._child(),
            ))
        return children

    def _foundry_account(self, caller: Mapping[str, RoleAssignment]) -> None:
        args, name = self._args, self._prefix
        self.foundry_account = None
        self.foundry_account_id = None
        self.foundry_account_name = None
        self.foundry_endpoint = None
        if not self._foundry:
            return
        public = args.foundry_public_network_access_enabled
        account = cognitiveservices.Account(
            f"{name}-foundry",
            account_name=self._foundry_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            kind="AIServices",
            sku=cognitiveservices.SkuArgs(name="S0"),
            identity=cognitiveservices.IdentityArgs(type=cognitiveservices.ResourceIdentityType.SYSTEM_ASSIGNED),
            properties=cognitiveservices.AccountPropertiesArgs(
                custom_sub_domain_name=self._foundry_name,
                allow_project_management=True,
                disable_local_auth=True,
                public_network_access="Enabled" if public else "Disabled",
                network_acls=cognitiveservices.NetworkRuleSetArgs(
                    default_action="Deny",
                    bypass="AzureServices",
                    ip_rules=[cognitiveservices.IpRuleArgs(value=c)
                              for c in (args.foundry_allowed_ip_ranges if public else ())],
                ),
                # Serving catalogue models needs no egress; allow only our weights storage (and what the
                # caller adds), so a compromised project cannot exfiltrate to arbitrary hosts.
                restrict_outbound_network_access=True,
                allowed_fqdn_list=[f"{self._names.storage_account}.blob.core.windows.net",
                                   *args.foundry_allowed_fqdns],
            ),
            tags=dict(self._tags),
            opts=self._child(),
        )
        self.foundry_account = account
        self.foundry_account_id = account.id
        self.foundry_account_name = account.name
        self.foundry_endpoint = account.properties.apply(lambda p: p.endpoint)
        self._endpoint(f"{name}-foundry", resource_id=account.id, group_id="account", zones=FOUNDRY_ZONES)
        self._foundry_models(account)
        self._diagnostics(f"{name}-foundry", account.id, FOUNDRY_LOG_CATEGORIES)
        own = {f"app-{key}-csuser": RoleAssignment(role="Cognitive Services User", principal_id=pid)
               for key, pid in args.foundry_application_principal_ids.items()}
        self._grants(f"{name}-foundry", account.id, own, caller)

    def _foundry_models(self, account: cognitiveservices.Account) -> None:
        """The Foundry project, then one model deployment after another (each waits for the previous)."""
        args, name = self._args, self._prefix
        project = cognitiveservices.Project(
            f"{name}-project",
            account_name=account.name,
            project_name=self._names.foundry_project,
            resource_group_name=args.resource_group_name,
            location=args.location,
            identity=cognitiveservices.IdentityArgs(type=cognitiveservices.ResourceIdentityType.SYSTEM_ASSIGNED),
            properties=cognitiveservices.ProjectPropertiesArgs(
                display_name=f"{args.name_prefix} models",
                description="Small language model deployments managed by slm-platform.",
            ),
            tags=dict(self._tags),
            opts=self._child(),
        )
        # One at a time: concurrent writes to one account's deployments fail with RequestConflict.
        previous: pulumi.Resource = project
        for key, dep in self._foundry.items():
            previous = cognitiveservices.Deployment(
                f"{name}-deploy-{key}",
                account_name=account.name,
                deployment_name=key,
                resource_group_name=args.resource_group_name,
                sku=cognitiveservices.SkuArgs(name=dep.sku_name, capacity=dep.capacity),
                properties=cognitiveservices.DeploymentPropertiesArgs(
                    model=cognitiveservices.DeploymentModelArgs(
                        format=dep.model_format, name=dep.model_name, version=dep.model_version),
                    version_upgrade_option="OnceCurrentVersionExpired" if args.auto_upgrade_model_versions
                    else "NoAutoUpgrade",
                    rai_policy_name=dep.rai_policy_name,
                ),
                tags=dict(self._tags),
                opts=self._child(depends_on=[previous]),
            )

    def _built_image(self, key: str, repository: str, tag: str, context_dir: str, dockerfile: str, *,
                     depends_on: Sequence[pulumi.Resource]) -> pulumi.Output[str]:
        """Build one of the framework's images from the project, push it, return ``repo@sha256``."""
        import pulumi_docker as docker  # here, not at the top: only stacks that build images pay its import

        args = self._args
        provider = args.registry_token_provider
        offline = provider is None and isinstance(get_monitor(), MockMonitor)

        def token(values: list[str]) -> str:
            login_server, tenant_id = values
            # Preview must not touch the network (and has no use for a token: build_on_preview=False);
            # neither must an offline plan under the mock monitor.
            if pulumi.runtime.is_dry_run() or offline:
                return PLACEHOLDER_REGISTRY_TOKEN
            return (provider or acr_refresh_token)(login_server, tenant_id)

        password = pulumi.Output.secret(
            pulumi.Output.all(self.registry.login_server, args.tenant_id).apply(token))
        context = context_dir.rstrip("/")
        image = docker.Image(
            f"{self._prefix}-{key}",
            # The registry's login server as Azure assigns it (``registry_login_server``), not its output:
            # known at preview, so the registry step's own targeted preview can judge the image it pushes.
            image_name=f"{registry_login_server(self._names.registry)}/{repository}:{tag}",
            build=docker.DockerBuildArgs(context=context, dockerfile=f"{context}/{dockerfile}",
                                         platform="linux/amd64"),
            registry=docker.RegistryArgs(server=self.registry.login_server, username=ACR_TOKEN_USERNAME,
                                         password=password),
            build_on_preview=False,
            skip_push=False,
            # After the private endpoint/DNS and any caller AcrPush grant for the deployer exist.
            opts=self._child(depends_on=[self.registry, *depends_on]),
        )
        return image.repo_digest
