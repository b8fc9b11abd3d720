"""The slm-platform CrossGuard policies: metadata, adapters from wire properties to the pure rules.

``policies/__main__.py`` builds the ``PolicyPack`` from ``POLICIES`` and ``initial_config``; nothing
here starts a server, so tests and tools (``gen_compliance.py``) import this module freely.

Every policy ships **advisory** in code. Real levels per environment live in
``policies/config/<env>.json`` (the ``--policy-pack-config`` format), generated from ``SPECS`` by
``python -m policies.gen_compliance --write``. Every policy accepts ``exempt: [{pattern, reason}]``:
a resource whose logical name fully matches ``pattern`` is not reported; instead the policy is marked
not-applicable with ``exempt <name> (pattern '<p>'): <reason>``, which the gate lists.
"""

from __future__ import annotations

import functools
import json
import os
import re
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

from policies import conversion
from policies.environments import config_path_for_stack, environment_of_stack
from policies.rules import (
    aks,
    alerting,
    conflicts,
    coverage,
    data,
    deployer,
    edge,
    egress,
    existence,
    foundry,
    identity,
    monitoring,
    reachability,
    scheduling,
    serving,
    stack,
    tokens,
    workloads,
)
from policies.rules import cost as cost_rules
from policies.rules.stack import Finding, StackResource
from policies.rules.tokens import normalize_type
from policies.rules.wire import (
    UNKNOWN_SENTINELS,
    WORKLOAD_TYPES,
    KnownDict,
    Unknown,
    judged_types,
    tracking_reads,
)

PACK_NAME: Final = "slm-platform"
POLICY_DIR: Final = Path(__file__).resolve().parent
CONFIG_DIR: Final = POLICY_DIR / "config"
ENVIRONMENTS: Final = ("local", "dev", "staging", "prod")
SETTINGS_CONFIG_KEY: Final = "slm-platform:settings"
EXEMPT_REASON_MIN: Final = 10
EXEMPT_PREFIX: Final = "exempt "

ResourceRule = Callable[[str, Mapping[str, Any], Mapping[str, Any]], list[str]]
StackRule = Callable[[Sequence[StackResource], Mapping[str, Any]], list[Finding]]

EXEMPT_SCHEMA: Final[dict[str, Any]] = {
    "type": "array",
    "description": "Resources this policy does not report: logical-name regex (full match) and a written reason.",
    "items": {
        "type": "object",
        "properties": {"pattern": {"type": "string", "minLength": 1},
                       "reason": {"type": "string", "minLength": EXEMPT_REASON_MIN},
                       "type": {"type": "string", "minLength": 1},
                       "within": {"type": "string", "minLength": 1}},
        "required": ["pattern", "reason"],
        "additionalProperties": False,
    },
    "default": [],
}
_STR_LIST: Final[dict[str, Any]] = {"type": "array", "items": {"type": "string"}}


@dataclass(frozen=True)
class Spec:
    """One policy: its name, what it checks, where the rule comes from and its levels."""

    name: str
    description: str
    ids: tuple[str, ...]
    levels: str
    """Catalogue levels dev/staging/prod as ``A/M/M`` (A advisory, M mandatory, D disabled)."""
    anchors: str
    rule: ResourceRule | None = None
    stack_rule: StackRule | None = None
    config: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    severity: Severity = Severity.MEDIUM
    remediation: str = ""
    raw_type: bool = False
    """The rule reads the type token as sent (API version included) instead of the normalized one."""

    def level(self, env: str) -> str:
        """The enforcement level in ``env`` (local: advisory where dev is enabled)."""
        dev, staging, prod = self.levels.split("/")
        code = {"local": "A" if dev != "D" else "D", "dev": dev, "staging": staging, "prod": prod}[env]
        return {"A": "advisory", "M": "mandatory", "D": "disabled"}[code]


def _s(**props: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return dict(props)


C = Severity.CRITICAL
H = Severity.HIGH
L = Severity.LOW


def _pe(target_type: str, group_id: str, segment: str) -> StackRule:
    def rule(resources: Sequence[StackResource], cfg: Mapping[str, Any]) -> list[Finding]:
        return stack.private_endpoints(resources, cfg, target_type=target_type, group_id=group_id,
                                       id_segment=segment)
    return rule


def _stack_settings() -> dict[str, Any]:
    """The stack's own ``slm-platform:settings`` object (PULUMI_CONFIG), or ``{}`` when absent or unreadable."""
    try:
        config = json.loads(os.environ.get("PULUMI_CONFIG", "{}"))
        settings = json.loads(config.get(SETTINGS_CONFIG_KEY, "null")) or {}
    except (ValueError, AttributeError):
        return {}
    return settings if isinstance(settings, dict) else {}


def _stack_budget() -> float | None:
    """``budget_usd_per_month`` from the stack's own settings (PULUMI_CONFIG), when present."""
    value = _stack_settings().get("budget_usd_per_month")
    return float(value) if isinstance(value, int | float) else None


def _deployer_reach(resources: Sequence[StackResource], cfg: Mapping[str, Any]) -> list[Finding]:
    return deployer.deployer_reach(resources, cfg, deployer.Deployer.from_settings(_stack_settings()))


def _budget(resources: Sequence[StackResource], cfg: Mapping[str, Any]) -> list[Finding]:
    return stack.monthly_budget(resources, cfg, _stack_budget())


def _budget_headroom(resources: Sequence[StackResource], cfg: Mapping[str, Any]) -> list[Finding]:
    return stack.budget_headroom(resources, cfg, _stack_budget())


SPECS: Final[tuple[Spec, ...]] = (
    # ---- A. Azure AI Foundry
    Spec("slm-foundry-account-kind", "Foundry accounts are kind AIServices with a custom subdomain.",
         ("AIF-01",), "M/M/M", "Foundry resource model; MCSB IM-1", foundry.account_kind),
    Spec("slm-foundry-local-auth-disabled", "Foundry accounts and connections use Entra ID, not API keys.",
         ("AIF-02",), "A/M/M", "CKV_AZURE_236; MCSB IM-1; Azure Policy 71ef260a; PSRule Azure.AI.DisableLocalAuth",
         foundry.local_auth_disabled, severity=H),
    Spec("slm-foundry-public-network", "Foundry accounts are not reachable from the public internet.",
         ("AIF-03",), "A/A/M", "CKV_AZURE_134; MCSB NS-2; PSRule Azure.AI.PublicAccess", foundry.public_network,
         severity=H),
    Spec("slm-foundry-outbound-restricted", "Foundry accounts restrict outbound calls to an FQDN allow-list.",
         ("AIF-03",), "D/A/A", "CKV_AZURE_247; MCSB NS-2", foundry.outbound_restricted),
    Spec("slm-foundry-private-endpoint", "Every private Foundry account has a private endpoint (group 'account').",
         ("AIF-04",), "D/A/M", "PSRule Azure.AI.PrivateEndpoints; MCSB NS-2",
         stack_rule=_pe(tokens.FOUNDRY_ACCOUNT, "account", "accounts"), config=_s(requireForAll={"type": "boolean",
                                                                                          "default": False})),
    Spec("slm-foundry-managed-identity", "Foundry accounts and projects have a managed identity.",
         ("AIF-05",), "A/M/M", "CKV_AZURE_238; MCSB IM-3; PSRule Azure.AI.ManagedIdentity", foundry.managed_identity),
    Spec("slm-foundry-customer-managed-key", "Foundry accounts encrypt with a customer-managed key when required.",
         ("AIF-06",), "D/A/A", "CKV2_AZURE_22; MCSB DP-5", foundry.customer_managed_key,
         config=_s(requireCmk={"type": "boolean", "default": True})),
    Spec("slm-foundry-approved-models", "Foundry deployments use approved, version-pinned models.",
         ("AIF-07",), "A/M/M", "Azure Policy 'approved models' (deployments/model.name)", foundry.approved_models,
         config=_s(allowedModels={**_STR_LIST, "default": list(foundry.DEFAULT_ALLOWED_MODELS)},
                   forbidAutoUpgrade={"type": "boolean", "default": False})),
    Spec("slm-foundry-rai-policy", "Foundry deployments use an approved content-filter (RAI) policy.",
         ("AIF-08",), "A/M/M", "Azure AI content filtering guidance", foundry.rai_policy,
         config=_s(approvedRaiPolicies={**_STR_LIST, "default": list(foundry.DEFAULT_RAI_POLICIES)})),
    Spec("slm-foundry-no-preview-api", "Azure resources use stable (non-preview) API versions.",
         ("AIF-09", "EDGE-03"), "A/M/M", "compliance-policies disallowPreviewResource", foundry.no_preview_api,
         raw_type=True),
    # ---- B. AKS
    Spec("slm-aks-entra-rbac", "AKS uses managed Entra ID with admin groups and Kubernetes RBAC.",
         ("AKS-01",), "M/M/M", "CKV_AZURE_5; MCSB IM-1, PA-7; PSRule Azure.AKS.ManagedAAD / UseRBAC", aks.entra_rbac,
         severity=H),
    Spec("slm-aks-azure-rbac", "AKS authorizes Kubernetes access with Azure RBAC.", ("AKS-01",), "A/A/M",
         "PSRule Azure.AKS.AzureRBAC; MCSB PA-7", aks.azure_rbac),
    Spec("slm-aks-local-accounts", "AKS local admin accounts are disabled.", ("AKS-02",), "A/M/M",
         "CKV_AZURE_141; MCSB IM-1; PSRule Azure.AKS.LocalAccounts", aks.local_accounts, severity=H),
    Spec("slm-aks-api-server-access", "The AKS API server is private or limited to authorized ranges.",
         ("AKS-03",), "A/M/M", "CKV_AZURE_115, CKV_AZURE_6; MCSB NS-2", aks.api_server_access,
         config=_s(requirePrivateCluster={"type": "boolean", "default": False}), severity=H),
    Spec("slm-aks-node-public-ip", "AKS nodes have no public IPs.", ("AKS-03",), "A/M/M",
         "CKV_AZURE_143; MCSB NS-2", aks.node_public_ip),
    Spec("slm-aks-legacy-addons", "The Kubernetes dashboard and HTTP application routing add-ons are off.",
         ("AKS-03",), "A/M/M", "CKV_AZURE_8, CKV_AZURE_246", aks.legacy_addons),
    Spec("slm-aks-network-policy", "AKS enforces NetworkPolicies (azure, calico or cilium).", ("AKS-04",), "M/M/M",
         "CKV_AZURE_7, CKV2_AZURE_29; compliance-policies configureNetworkPolicy; MCSB NS-1", aks.network_policy,
         severity=H),
    Spec("slm-aks-workload-identity", "AKS uses a managed identity, the OIDC issuer and workload identity.",
         ("AKS-05",), "A/M/M", "MCSB IM-3; PSRule Azure.AKS.ManagedIdentity", aks.workload_identity),
    Spec("slm-aks-azure-policy-addon", "AKS runs the Azure Policy add-on.", ("AKS-06",), "A/M/M",
         "CKV_AZURE_116; MCSB PV-2; PSRule Azure.AKS.AzurePolicyAddOn", aks.azure_policy_addon),
    Spec("slm-aks-defender", "AKS runs Defender for Containers with a Log Analytics workspace.", ("AKS-07",),
         "D/A/M", "MCSB LT-1; PSRule Azure.AKS.DefenderProfile", aks.defender),
    Spec("slm-aks-secrets-store-csi", "AKS runs the Key Vault secrets provider with rotation.", ("AKS-08",), "A/A/M",
         "CKV_AZURE_172; MCSB IM-8; PSRule Azure.AKS.SecretStore", aks.secrets_store_csi),
    Spec("slm-aks-encryption-at-host", "AKS node pools encrypt at host (and use CMK when required).", ("AKS-09",),
         "A/A/M", "CKV_AZURE_227, CKV_AZURE_117; MCSB DP-4/DP-5", aks.encryption_at_host,
         config=_s(requireCmk={"type": "boolean", "default": False})),
    Spec("slm-aks-auto-upgrade", "AKS has cluster and node-OS auto-upgrade channels.", ("AKS-10",), "A/A/M",
         "CKV_AZURE_171; MCSB PV-6; PSRule Azure.AKS.AutoUpgrade", aks.auto_upgrade),
    Spec("slm-aks-production-sla", "AKS has the uptime SLA and a tainted, zonal System pool.", ("AKS-11",), "D/A/M",
         "CKV_AZURE_170, CKV_AZURE_232; PSRule Azure.AKS.UptimeSLA / AvailabilityZone", aks.production_sla),
    # ---- C. Registry, storage, Key Vault, network
    Spec("slm-registry-auth", "Container registries have no admin user and no anonymous pull.", ("ACR-01",),
         "M/M/M", "CKV_AZURE_137, CKV_AZURE_138; MCSB IM-1", data.registry_auth, severity=H),
    Spec("slm-registry-network", "Container registries are not open to the public internet.", ("ACR-02",), "D/A/M",
         "CKV_AZURE_139; MCSB NS-2; PSRule Azure.ACR.Firewall", data.registry_network),
    Spec("slm-registry-content-policies", "Container registries retain, quarantine, trust and do not export.",
         ("ACR-02",), "A/A/A", "CKV_AZURE_167, CKV_AZURE_166, CKV_AZURE_164; PSRule Azure.ACR.Retention",
         data.registry_content_policies, severity=L),
    Spec("slm-keyvault-rbac", "Key Vaults use Azure RBAC instead of access policies.", ("KV-01",), "A/M/M",
         "MCSB PA-7; PSRule Azure.KeyVault.RBAC", data.keyvault_rbac),
    Spec("slm-keyvault-recovery", "Key Vaults keep soft delete with enough retention and purge protection.",
         ("KV-02",), "A/M/M", "CKV_AZURE_42, CKV_AZURE_110, CKV_AZURE_111; MCSB DP-8", data.keyvault_recovery,
         config=_s(minSoftDeleteRetentionDays={"type": "number", "minimum": 7, "maximum": 90, "default": 7})),
    Spec("slm-keyvault-network", "Key Vaults are not open to the public internet.", ("KV-03",), "A/A/M",
         "CKV_AZURE_189, CKV_AZURE_109; MCSB NS-2", data.keyvault_network),
    Spec("slm-keyvault-private-endpoint", "Private Key Vaults have a private endpoint (group 'vault').",
         ("KV-03",), "D/A/M", "CKV2_AZURE_32; MCSB NS-2", stack_rule=_pe(tokens.VAULT, "vault", "vaults"),
         config=_s(requireForAll={"type": "boolean", "default": False})),
    Spec("slm-keyvault-secret-metadata", "Key Vault secrets have an expiry and a content type.", ("KV-04",), "A/A/M",
         "CKV_AZURE_41, CKV_AZURE_114; MCSB IM-8", data.keyvault_secret_metadata, severity=L),
    Spec("slm-storage-secure-transfer", "Storage accounts require HTTPS and TLS 1.2.", ("STG-01",), "M/M/M",
         "CKV_AZURE_3, CKV_AZURE_44; MCSB DP-3", data.storage_transport, severity=H),
    Spec("slm-storage-no-public-blob", "Storage accounts and containers allow no anonymous blob access.",
         ("STG-02",), "M/M/M", "CKV_AZURE_190, CKV_AZURE_34, CKV2_AZURE_47; MCSB IM-1", data.storage_public_blob,
         severity=C),
    Spec("slm-storage-no-shared-key", "Storage accounts disable shared-key authorization.", ("STG-02",), "A/A/M",
         "CKV2_AZURE_40; MCSB IM-1", data.storage_shared_key),
    Spec("slm-storage-network", "Storage accounts deny public networks; blob soft delete is on.", ("STG-03",),
         "A/A/M", "CKV_AZURE_35, CKV_AZURE_59, CKV_AZURE_36, CKV2_AZURE_38; MCSB NS-2", data.storage_network),
    Spec("slm-network-no-open-management-ports",
         "Network security groups do not open management or model-server ports to the internet.", ("NET-01",),
         "M/M/M", "CKV_AZURE_9, CKV_AZURE_10, CKV_AZURE_77, CKV_AZURE_160; MCSB NS-1", data.open_management_ports,
         config=_s(extraPorts={"type": "array", "items": {"type": "integer"}, "default": []}), severity=C),
    # ---- D. Kubernetes workloads
    Spec("slm-k8s-pss-baseline", "Pods meet the Pod Security Standards Baseline profile.", ("K8S-01",), "M/M/M",
         "PSS Baseline; CKV_K8S_16, 17, 18, 19, 26", workloads.pss_baseline, severity=C),
    Spec("slm-k8s-no-privilege-escalation", "Containers set allowPrivilegeEscalation to false.", ("K8S-02",),
         "A/M/M", "PSS Restricted; CKV_K8S_20", workloads.no_privilege_escalation, severity=H),
    Spec("slm-k8s-run-as-non-root", "Pods run as non-root.", ("K8S-03",), "A/M/M", "PSS Restricted; CKV_K8S_23",
         workloads.run_as_non_root, severity=H),
    Spec("slm-k8s-drop-capabilities", "Containers drop all capabilities.", ("K8S-04",), "A/M/M",
         "PSS Restricted; CKV_K8S_37, 25, 28, 39", workloads.drop_capabilities),
    Spec("slm-k8s-seccomp", "Pods use the RuntimeDefault (or Localhost) seccomp profile.", ("K8S-05",), "A/M/M",
         "PSS Restricted; CKV_K8S_31", workloads.seccomp),
    Spec("slm-k8s-volume-types", "Pods mount only PSS Restricted volume types (no hostPath).", ("K8S-06",), "M/M/M",
         "PSS Restricted; CKV_K8S_27; Polaris hostPathSet", workloads.volume_types, severity=H),
    Spec("slm-k8s-read-only-root", "Containers have a read-only root filesystem.", ("K8S-06",), "A/A/M",
         "CKV_K8S_22; compliance-policies enableReadOnlyRootFilesystem", workloads.read_only_root),
    Spec("slm-k8s-resources", "Containers request and limit cpu, memory and ephemeral storage.", ("K8S-07",),
         "A/M/M", "CKV_K8S_10-13; kube-score container-resources", workloads.resources,
         config=_s(resources={**_STR_LIST, "default": ["cpu", "memory", "ephemeral-storage"]})),
    Spec("slm-k8s-image-provenance", "Images come from allowed registries with a pinned, non-latest tag.",
         ("K8S-08",), "A/M/M", "CKV_K8S_14; KICS Invalid Image", workloads.image_provenance,
         config=_s(allowedRegistries={**_STR_LIST, "default": list(workloads.DEFAULT_REGISTRIES)})),
    Spec("slm-k8s-image-digest", "Images are pinned by sha256 digest.", ("K8S-08",), "A/A/M",
         "CKV_K8S_43; KICS Image Without Digest", workloads.image_digest),
    Spec("slm-k8s-probes", "Containers have distinct readiness and liveness probes; model servers a startup probe.",
         ("K8S-09",), "A/A/M", "CKV_K8S_8, 9; kube-score pod-probes", workloads.probes),
    Spec("slm-k8s-service-account", "Workloads use their own service account without an auto-mounted token.",
         ("K8S-10",), "A/M/M", "CKV_K8S_38, 41, 42", workloads.service_account),
    Spec("slm-k8s-rbac-least-privilege", "RBAC grants no wildcards, no pod exec and no cluster-admin to workloads.",
         ("K8S-10",), "A/M/M", "CKV_K8S_49, 155-158, CKV2_K8S_1-5", workloads.rbac_least_privilege, severity=H),
    Spec("slm-k8s-namespace", "Workloads run outside 'default'; namespaces enforce Pod Security.", ("K8S-11",),
         "A/M/M", "CKV_K8S_21; Pod Security Admission", workloads.namespaces,
         config=_s(baselineNamespaces={**_STR_LIST, "default": ["gpu-operator", "kube-system"]})),
    Spec("slm-reach-deployer",
         "The deployer reaches every data plane `pulumi up` writes: the AKS API server, the registry it pushes "
         "to, the IoT Hub it applies deployments through.", ("SYS-REACH",), "M/M/M",
         "issue 17 #7; AKS private clusters; ACR/IoT Hub private link; settings.deployer",
         stack_rule=_deployer_reach, severity=H,
         remediation="Run `pulumi up` where it can reach them: deployer.location: in-vnet-runner (the platform's "
                     "runner in the VNet, docs/delivery.md#the-deploy-runner), or a fixed egress listed in the "
                     "firewalls."),
    Spec("slm-k8s-network-policy-coverage",
         "Every workload is selected by a NetworkPolicy and each namespace denies ingress by default.", ("K8S-12",),
         "A/M/M", "CKV2_K8S_6; kube-score pod-networkpolicy", stack_rule=stack.network_policy_coverage,
         config=_s(requireDefaultDenyEgress={"type": "boolean", "default": False})),
    Spec("slm-serving-no-internet-egress",
         "Serving pods in private tiers reach only DNS, private endpoints and Entra ID, never the internet.",
         ("K8S-12",), "A/M/M", "MCSB NS-3 (egress control); issue 13 (weights only from the ModelRegistry)",
         egress.no_internet_egress, severity=H,
         config=_s(allowedEgressCidrs={**_STR_LIST, "default": list(egress.DEFAULT_ALLOWED_EGRESS)},
                   servingNamespacePrefix={"type": "string", "default": "slm-"}),
         remediation="Serve weights from the ModelRegistry (registry.weights_source: registry; run `slmctl models "
                     "sync`), so the namespace's egress needs only the private endpoint subnet and Entra ID."),
    Spec("slm-k8s-service-exposure", "Services are not NodePort or public LoadBalancer; Ingresses use TLS.",
         ("K8S-13",), "A/M/M", "compliance-policies disallowLoadBalancer; kube-score service-type",
         workloads.service_exposure, severity=H),
    Spec("slm-k8s-replicas-spread", "Replicated workloads run enough replicas spread over nodes and zones.",
         ("K8S-14",), "D/A/M", "compliance-policies configureMinimumReplicaCount", workloads.replicas_spread,
         config=_s(minReplicas={"type": "integer", "minimum": 0, "default": 2})),
    Spec("slm-k8s-disruption-budget", "Replicated workloads have a PodDisruptionBudget that allows disruption.",
         ("K8S-14",), "D/A/M", "compliance-policies disallowZeroVoluntaryDisruption; Polaris PDB",
         stack_rule=stack.disruption_budgets),
    Spec("slm-k8s-no-secrets-in-env", "No secrets in literal env values or ConfigMaps.", ("K8S-15",), "M/M/M",
         "CKV_K8S_35; Polaris sensitiveContainerEnvVar; MCSB IM-8; seed defect D10", workloads.no_secrets_in_env,
         severity=C),
    Spec("slm-k8s-stable-api", "No bare Pods and no alpha/beta versions of built-in Kubernetes APIs.", ("K8S-16",),
         "A/M/M", "compliance-policies disallowPod, disallowAlpha/BetaResource", workloads.stable_api),
    Spec("slm-pack-known-types", "Every resource is of a type some policy of the pack reads.", ("K8S-16", "OPS-01"),
         "A/A/M", "issue 12.4 (a PASS must not cover unread resources)", coverage.unknown_type,
         config=_s(reviewedTypes={**_STR_LIST, "default": []}), severity=H),
    Spec("slm-pack-opaque-components", "Provider-rendered components (Helm v4 Chart, yaml/v2) are flagged offline.",
         ("K8S-16",), "A/A/M", "issue 12.4; pulumi-kubernetes v4 components render in the provider",
         stack_rule=coverage.opaque_components, severity=H),
    Spec("slm-k8s-helm-release-opaque", "Helm Releases are flagged because their objects are not checked.",
         ("K8S-16",), "A/A/A", "pulumi/pulumi#10055", workloads.helm_release_opaque, severity=L),
    # ---- E. GPU and cost
    Spec("slm-gpu-vm-sizes", "GPU node pools use the environment's allowed GPU sizes and MIG profiles.",
         ("GPU-01",), "M/M/M", "cost guardrail", aks.gpu_vm_sizes,
         config=_s(allowedGpuVmSizes=_STR_LIST, allowedGpuInstanceProfiles={**_STR_LIST, "default": []},
                   gpuOperator={"type": "boolean", "default": False})),
    Spec("slm-gpu-pool-autoscaling", "GPU node pools autoscale, and scale to zero where the environment requires it.",
         ("GPU-02",), "M/M/A", "PSRule Azure.AKS.AutoScaling; cost", aks.gpu_pool_autoscaling,
         config=_s(requireScaleToZero={"type": "boolean", "default": False})),
    Spec("slm-gpu-pool-node-cap", "No GPU node pool or GPU scale set can grow past the environment's node cap.",
         ("GPU-02",), "M/M/M", "PSRule Azure.AKS.AutoScaling; cost (issue 12.10)", aks.gpu_node_cap,
         config=_s(maxGpuNodes={"type": "integer", "minimum": 0, "default": 4}), severity=H),
    Spec("slm-gpu-pool-priority", "GPU node pools use Spot outside production and Regular capacity in production.",
         ("GPU-02",), "A/M/M", "cost; availability (Azure evicts Spot nodes at any time)", aks.gpu_pool_priority,
         config=_s(priority={"type": "string", "enum": ["Spot", "Regular", "any"], "default": "any"})),
    Spec("slm-gpu-pool-isolation", "GPU node pools are tainted, labelled User pools; System pools have no GPU.",
         ("GPU-03",), "M/M/M", "CKV_AZURE_232; AKS GPU-pool guidance", aks.gpu_pool_isolation,
         config=_s(gpuTaint={"type": "string", "default": aks.DEFAULT_GPU_TAINT},
                   gpuNodeLabel={"type": "string", "default": "accelerator"})),
    Spec("slm-gpu-workload-scheduling", "GPU pods request whole GPUs, tolerate the GPU taint and select GPU nodes.",
         ("GPU-04",), "M/M/M", "Kubernetes extended resources; kube-score requests-equal-limits",
         workloads.gpu_scheduling, config=_s(gpuTaint={"type": "string", "default": aks.DEFAULT_GPU_TAINT},
                                             maxGpusPerPod={"type": "integer", "minimum": 1, "default": 1})),
    Spec("slm-gpu-non-gpu-tolerations", "Pods without GPUs do not tolerate the GPU taint.", ("GPU-04",), "A/A/M",
         "cost; scheduling hygiene", workloads.non_gpu_tolerations,
         config=_s(gpuTaint={"type": "string", "default": aks.DEFAULT_GPU_TAINT}), severity=L),
    Spec("slm-gpu-autoscaler-bounds", "Autoscalers target a workload of the stack and cap GPU replicas.",
         ("GPU-05",), "M/M/M", "kube-score horizontalpodautoscaler; KICS HPA Targets Invalid Object",
         stack_rule=stack.autoscaler_bounds, config=_s(minReplicas={"type": "integer", "minimum": 0, "default": 1},
                                                       maxGpuReplicas={"type": "integer", "minimum": 1, "default": 4})),
    Spec("slm-cost-foundry-deployment-sku", "Foundry deployment types and capacity fit the environment.",
         ("GPU-06",), "M/M/A", "Foundry deployment policies", foundry.deployment_sku,
         config=_s(allowedDeploymentTypes={**_STR_LIST, "default": ["GlobalStandard", "DataZoneStandard", "Standard"]},
                   maxCapacity={"type": "number", "minimum": 1, "default": 100})),
    Spec("slm-cost-required-tags", "Taggable Azure resources carry environment, owner, costCenter and workload tags.",
         ("GPU-07",), "A/M/M", "Azure Policy 'Require a tag on resources'", cost_rules.required_tags,
         config=_s(requiredTags={**_STR_LIST, "default": list(cost_rules.REQUIRED_TAGS)}), severity=L),
    Spec("slm-cost-monthly-budget", "The monthly cost upper bound stays within the environment's budget, and "
         "every compute resource is priced.", ("GPU-07",), "A/M/M",
         "clstokes/pulumi-policy-aws-cost pattern; Azure retail prices (policies/rules/catalog.py)", stack_rule=_budget,
         config=_s(monthlyBudgetUsd={"type": "number", "minimum": 0}), severity=H),
    Spec("slm-cost-budget-headroom", "Warns when the monthly cost upper bound reaches a share of the budget.",
         ("GPU-07",), "A/A/A", "clstokes/pulumi-policy-aws-cost pattern", stack_rule=_budget_headroom,
         config=_s(monthlyBudgetUsd={"type": "number", "minimum": 0},
                   warnAtPercent={"type": "number", "minimum": 1, "maximum": 100, "default": 80}), severity=L),
    # ---- F. Monitoring and operations
    Spec("slm-ops-diagnostic-settings", "Clusters, Foundry accounts and vaults send audit logs to a workspace.",
         ("OPS-01",), "A/M/M", "PSRule Azure.AKS.AuditLogs; MCSB LT-3", stack_rule=stack.diagnostic_settings),
    Spec("slm-ops-container-insights", "Clusters collect metrics and workspaces retain logs long enough.",
         ("OPS-02",), "A/M/M", "CKV_AZURE_4; PSRule Azure.AKS.ContainerInsights; MCSB LT-6",
         monitoring.container_insights, config=_s(minRetentionDays={"type": "integer", "minimum": 7, "default": 30})),
    Spec("slm-ops-inference-scraped", "Every inference workload is scraped; GPU clusters run a DCGM exporter.",
         ("OPS-03",), "D/A/M", "operational readiness", stack_rule=stack.inference_scraped,
         config=_s(requireDcgm={"type": "boolean", "default": True})),
    Spec("slm-ops-private-dashboards", "Grafana, Prometheus and Alertmanager are private with no literal passwords.",
         ("OPS-04",), "M/M/M", "compliance-policies disallowLoadBalancer; Polaris sensitiveContainerEnvVar; MCSB NS-2",
         monitoring.private_dashboards, config=_s(monitoringNamespace={"type": "string", "default": "monitoring"},
                                                  requirePrivateGrafana={"type": "boolean", "default": False},
                                                  forbidApiKeys={"type": "boolean", "default": False}), severity=H),
    # ---- G. Edge
    Spec("slm-edge-artifact-pinned", "Edge workloads pin images by digest, pull IfNotPresent and record the model digest.",
         ("EDGE-01",), "M/M/M", "CKV_K8S_43, CKV_K8S_14 (CKV_K8S_15 deviation)", edge.artifact_pinned,
         config=_s(edgeRegistries={**_STR_LIST, "default": []})),
    Spec("slm-edge-device-envelope", "Edge workloads fit their device class and use no host network or paths.",
         ("EDGE-02",), "M/M/M", "PSS Baseline; CKV_K8S_19, 27", edge.device_envelope,
         config=_s(deviceClasses={"type": "object", "default": {}},
                   allowedHostPaths={**_STR_LIST, "default": ["/dev/dri"]},
                   devicePluginNamespaces={**_STR_LIST, "default": []})),
    Spec("slm-edge-iot-hub", "IoT Hubs use Entra-only auth and TLS 1.2, private where required.", ("EDGE-03",),
         "A/M/M", "CKV_AZURE_108; MCSB IM-1 / NS-2", edge.iot_hub,
         config=_s(requirePrivate={"type": "boolean", "default": False})),
    Spec("slm-edge-models-from-registry", "Edge workloads and IoT Edge deployments load models from the registry "
         "(the verified fill step), never from a public hub.", ("EDGE-MODELS",), "A/M/M",
         "issue 13 (edge item); no upstream equivalent", edge.models_from_registry, severity=H),
    # ---- H. System invariants: relations between resources (issue 17)
    Spec("slm-reach-metrics-scraper", "The monitoring mode's scraper is admitted by every NetworkPolicy guarding a "
         "port it scrapes.", ("INV-REACH",), "M/M/M", "Kubernetes NetworkPolicy semantics; Azure Managed Prometheus "
         "runs ama-metrics in kube-system", stack_rule=reachability.metrics_scraper, severity=H),
    Spec("slm-reach-firewalled-data", "Pods and nodes reach the vaults, storage and registries they use through "
         "their firewalls or private endpoints.", ("INV-REACH",), "M/M/M",
         "Key Vault / Storage network security; AKS egress", stack_rule=reachability.firewalled_data, severity=H),
    Spec("slm-reach-private-dns", "Private resources have a private endpoint and a DNS zone linked to their "
         "clients' VNet.", ("INV-REACH",), "M/M/M", "Azure Private Endpoint DNS configuration",
         stack_rule=reachability.private_dns, severity=H),
    Spec("slm-identity-create-time-grants", "Grants AKS checks at creation (BYO kubelet identity, subnet) exist and "
         "are ordered before the cluster.", ("INV-IDENTITY",), "M/M/M",
         "AKS bring-your-own identity and subnet prerequisites", stack_rule=identity.create_time_grants, severity=H),
    Spec("slm-identity-kubelet-acr-pull", "Each cluster's kubelet identity may pull from the registries its pods "
         "use.", ("INV-IDENTITY",), "M/M/M", "AKS ACR integration (AcrPull for the kubelet identity)",
         stack_rule=identity.kubelet_acr_pull, severity=H),
    Spec("slm-identity-secrets-reader", "The identity each SecretProviderClass uses may read its Key Vault's "
         "secrets.", ("INV-IDENTITY",), "M/M/M", "Key Vault CSI provider with workload identity",
         stack_rule=identity.secrets_reader, severity=H),
    Spec("slm-identity-keda-metrics-reader", "KEDA queries Azure Monitor workspaces with a federated identity "
         "holding Monitoring Data Reader.", ("INV-IDENTITY",), "M/M/M", "KEDA azure-workload pod identity; Azure "
         "Monitor managed Prometheus query", stack_rule=identity.keda_metrics_reader, severity=H),
    Spec("slm-identity-deployer-grants", "The identity running pulumi up may write every data plane it writes, "
         "granted before it writes.", ("INV-IDENTITY",), "M/M/M",
         "AKS Azure RBAC (local accounts off); IoT Hub Entra auth; ACR push", stack_rule=identity.deployer_grants,
         severity=H),
    Spec("slm-identity-grafana-users", "Somebody holds Grafana Admin on each Managed Grafana.", ("INV-IDENTITY",),
         "M/M/M", "Azure Managed Grafana roles", stack_rule=identity.grafana_users),
    Spec("slm-conflict-diagnostic-sinks", "No two diagnostic settings send one category of a resource to the same "
         "destination.", ("INV-CONFLICT",), "M/M/M", "Azure Monitor diagnostic settings (one sink per category)",
         stack_rule=conflicts.diagnostic_sinks, severity=H),
    Spec("slm-conflict-unique-names", "Resource names are unique in their scope (globally for DNS names).",
         ("INV-CONFLICT",), "M/M/M", "Azure naming rules; Kubernetes object identity",
         stack_rule=conflicts.unique_names, severity=H),
    # ---- Serving lints (seed defects, SLM_FACTS.md)
    Spec("slm-serving-tool-call-parser", "vLLM auto tool choice has a known tool-call parser.", ("D1",), "M/M/M",
         "seed defect D1", serving.tool_call_parser, severity=H),
    Spec("slm-serving-quantization-flag", "vLLM --quantization matches the checkpoint.", ("D2",), "M/M/M",
         "seed defect D2", serving.quantization_flag, severity=H),
    Spec("slm-serving-cuda-image-on-cpu", "The CUDA vLLM image runs only with a GPU.", ("D3",), "M/M/M",
         "seed defect D3", serving.cuda_image_on_cpu, severity=H),
    Spec("slm-serving-ollama-metrics", "Nothing scrapes Ollama for /metrics, which it does not serve.", ("D4",),
         "A/M/M", "seed defect D4; ollama#3144", serving.ollama_metrics),
    Spec("slm-serving-ollama-probes", "Ollama probes use HTTP on / or /api/version.", ("D5",), "M/M/M",
         "seed defect D5", serving.ollama_probes),
    Spec("slm-serving-ollama-env", "Ollama containers set only real OLLAMA_* server variables.", ("D7",), "A/M/M",
         "seed defect D7", serving.ollama_env, config=_s(extraOllamaVars={**_STR_LIST, "default": []})),
    Spec("slm-serving-api-key", "Every model server checks an API key, or an API-key gate in its pod does (Ollama).",
         ("D10", "INV-REACH"), "M/M/M", "vLLM --api-key/VLLM_API_KEY; llama.cpp LLAMA_API_KEY; Ollama has none "
         "(components/engines/auth_proxy.py)", serving.api_key_gate, severity=H),
    Spec("slm-serving-no-foundry-local-container", "Foundry Local never runs as a Kubernetes workload.", ("D8",),
         "M/M/M", "seed defect D8", serving.no_foundry_local_container, severity=H),
    Spec("slm-serving-autoscaling-metric", "Inference autoscaling uses queue depth, not CPU/GPU utilization.",
         ("D11",), "A/M/M", "seed defect D11", serving.autoscaling_metric,
         config=_s(inferenceTargetPattern={"type": "string", "default": "vllm|ollama|onnx|llm|slm|inference"})),
    Spec("slm-serving-trust-remote-code", "--trust-remote-code is used only for allow-listed models.", ("D13",),
         "M/M/M", "seed defect D13", serving.trust_remote_code, config=_s(allowTrustRemoteCode={**_STR_LIST,
                                                                                              "default": []}),
         severity=H),
    Spec("slm-serving-dev-mode", "vLLM never runs with VLLM_SERVER_DEV_MODE.", ("D-vllm",), "M/M/M",
         "SLM_FACTS vLLM", serving.dev_mode, severity=H),
    Spec("slm-serving-log-stats", "vLLM keeps stats logging (no --disable-log-stats).", ("D-vllm",), "A/M/M",
         "SLM_FACTS vLLM", serving.log_stats),
    Spec("slm-serving-bounded-context", "vLLM always bounds --max-model-len.", ("D-vllm",), "A/M/M",
         "SLM_FACTS vLLM", serving.bounded_context),
    Spec("slm-serving-shared-memory", "vLLM mounts a memory-backed, size-limited /dev/shm.", ("D-vllm",), "A/A/M",
         "SLM_FACTS vLLM", serving.shared_memory, severity=L),
    # ---- Stack invariants (issue 17): relations between resources, each finding names both ends
    Spec("slm-k8s-pod-placement",
         "Every pod selects a node pool of its cluster and tolerates its taints, AKS's Spot taint included.",
         ("INV-SCHED",), "M/M/M", "Kubernetes taints and tolerations; AKS Spot pools (scalesetpriority taint)",
         stack_rule=scheduling.pod_placement, severity=H),
    Spec("slm-gpu-node-agents",
         "GPU node agents (device plugin, DCGM exporter, GPU Operator) select and tolerate every GPU pool.",
         ("INV-SCHED",), "M/M/M", "AKS GPU node pools; NVIDIA device plugin and DCGM exporter charts",
         stack_rule=scheduling.gpu_node_agents, severity=H),
    Spec("slm-gpu-pool-capacity",
         "Max replicas plus rollout surge of a pool's workloads fit its GPUs, CPU and memory at max_count.",
         ("INV-CAPACITY",), "M/M/M", "Kubernetes rolling updates (maxSurge); AKS node resource reservations",
         stack_rule=scheduling.pool_capacity, severity=H),
    Spec("slm-k8s-helm-chart-exists",
         "Every pinned Helm chart version is listed in its repository's index (committed copy).",
         ("INV-EXIST",), "M/M/M", "Helm repository index.yaml; policies/data/helm-index.json",
         stack_rule=existence.helm_chart_versions, severity=H),
    Spec("slm-foundry-model-offered",
         "Foundry deployments use a model version and SKU the model is offered with.",
         ("INV-EXIST",), "M/M/M", "Microsoft Learn Foundry Models availability; catalog.FOUNDRY_OFFERS",
         stack_rule=existence.foundry_model_offered, severity=H),
    Spec("slm-serving-container-args",
         "Containers running the ONNX server pass the arguments its own parser requires.",
         ("INV-COMPLETE",), "M/M/M", "components/engines/onnx_server/server.py build_parser()",
         stack_rule=existence.container_args, severity=H),
    Spec("slm-ops-alert-routing",
         "Every alert rule routes to a receiver (an action group or an Alertmanager route) with an https runbook.",
         ("INV-ALERT",), "A/M/M", "Azure Monitor action groups; Alertmanager routing tree (amtool-checked at render)",
         stack_rule=alerting.alert_routing, severity=H),
    Spec("slm-serving-memory-fit", "vLLM's --max-model-len fits the GPU after the weights (else it fails at start).",
         ("D-vllm",), "M/M/M", "DESIGN memory-fit; vLLM start-up KV-cache check (policies/rules/memory_fit.py)",
         serving.memory_fit, severity=H),
)
"""Every policy of the pack, in report order."""

CATALOGUE: Final[dict[str, tuple[str, ...] | str]] = {
    **{i: tuple(s.name for s in SPECS if i in s.ids) for s in SPECS for i in s.ids if i[0] != "D"},
}
"""Catalogue id -> the policies implementing it, or the reason it is not expressible on preview inputs."""
NOT_EXPRESSIBLE: Final[dict[str, str]] = {
    "KV-04 (secretness of properties.value)": "CrossGuard receives inputs with secrets unwrapped, so whether "
    "properties.value was a secret Output cannot be seen; enforced by a mock-based unit test with Output.is_secret.",
}
"""Parts of catalogue checks that preview inputs cannot express, with the reason."""

SEED_DEFECTS: Final[dict[str, tuple[str, ...] | str]] = {
    "D1": ("slm-serving-tool-call-parser",),
    "D2": ("slm-serving-quantization-flag",),
    "D3": ("slm-serving-cuda-image-on-cpu",),
    "D4": ("slm-serving-ollama-metrics",),
    "D5": ("slm-serving-ollama-probes",),
    "D6": "a Dockerfile RUN step is not a Pulumi input; model pulls run in an init container or Job (reviewed in "
          "components/engines, not visible to CrossGuard).",
    "D7": ("slm-serving-ollama-env",),
    "D8": ("slm-serving-no-foundry-local-container",),
    "D9": "text generation is server code behaviour (onnxruntime-genai loop), not an infrastructure input; tested in "
          "the engine's unit tests.",
    "D10": ("slm-k8s-no-secrets-in-env", "slm-serving-api-key"),
    "D11": ("slm-serving-autoscaling-metric",),
    "D12": "CI workflow content is not a stack resource; checked by actionlint/zizmor on .github/workflows.",
    "D13": ("slm-serving-trust-remote-code",),
}
"""Seed defects (SLM_FACTS.md D1-D13) -> lint policies, or why a policy cannot see them."""

CATALOGUE_IDS: Final = tuple(
    [f"AIF-{i:02d}" for i in range(1, 10)] + [f"AKS-{i:02d}" for i in range(1, 12)]
    + ["ACR-01", "ACR-02", "KV-01", "KV-02", "KV-03", "KV-04", "STG-01", "STG-02", "STG-03", "NET-01"]
    + [f"K8S-{i:02d}" for i in range(1, 17)] + [f"GPU-{i:02d}" for i in range(1, 8)]
    + [f"OPS-{i:02d}" for i in range(1, 5)] + [f"EDGE-{i:02d}" for i in range(1, 4)]
)
"""The 60 ids of docs POLICY_CATALOGUE.md."""

MONTHLY_BUDGET_USD: Final[dict[str, int]] = {"local": 0, "dev": 1500, "staging": 6000, "prod": 40000}
"""The environment's monthly budget in USD (both budget policies; a stack's budget_usd_per_month may only lower it)."""

LEVEL_DEVIATIONS: Final[dict[str, tuple[str, str]]] = {
    "slm-gpu-pool-node-cap": (
        "M/M/A (GPU-02)",
        "the cap is mandatory in prod too: the catalogue's prod A for GPU-02 covers the dev-only minCount and Spot "
        "sub-rules, not the cap, and with it 100 A100 nodes (about $268k a month) passed prod with an advisory "
        "(issue 12.10). The rest of GPU-02 keeps M/M/A in slm-gpu-pool-autoscaling."),
    "slm-gpu-pool-priority": (
        "M/M/A, Spot rule A in dev (GPU-02)",
        "'prod serving pools Regular' is GPU-02's own rule, and a rule at A in the one tier it applies to can never "
        "fail: Spot or Low-priority GPU capacity, which Azure evicts at any time, passed prod. Mandatory in staging "
        "(the catalogue's M; staging sets no priority) and prod; the dev Spot rule stays advisory."),
    "slm-cost-monthly-budget": (
        "A/A/A (GPU-07 budget)",
        "a cost gate that cannot fail is not a gate; the estimate is an upper bound from max counts (every pool and "
        "scale set at its maximum, PTUs at capacity, all month), and it fails only above the budget. Unpriced "
        "compute is a finding of this policy. Advisory in dev; slm-cost-budget-headroom warns from 80% everywhere."),
}
"""Policies whose levels deviate from docs POLICY_CATALOGUE.md: the catalogue's levels and the reason."""

_T4 = ["Standard_NC4as_T4_v3", "Standard_NC8as_T4_v3", "Standard_NC16as_T4_v3"]
ENV_PROPERTIES: Final[dict[str, dict[str, dict[str, Any]]]] = {
    "local": {
        "slm-k8s-replicas-spread": {"minReplicas": 1},
        "slm-gpu-autoscaler-bounds": {"minReplicas": 0, "maxGpuReplicas": 1},
    },
    "dev": {
        "slm-gpu-vm-sizes": {"allowedGpuVmSizes": [*_T4, "Standard_NV36ads_A10_v5"]},
        "slm-gpu-pool-autoscaling": {"requireScaleToZero": True},
        "slm-gpu-pool-node-cap": {"maxGpuNodes": 2},
        "slm-gpu-pool-priority": {"priority": "Spot"},
        "slm-gpu-autoscaler-bounds": {"minReplicas": 0, "maxGpuReplicas": 2},
        "slm-k8s-replicas-spread": {"minReplicas": 1},
        "slm-cost-foundry-deployment-sku": {"maxCapacity": 50},
        "slm-ops-container-insights": {"minRetentionDays": 30},
    },
    "staging": {
        "slm-gpu-vm-sizes": {"allowedGpuVmSizes": [*_T4, "Standard_NV36ads_A10_v5", "Standard_NC24ads_A100_v4"]},
        "slm-gpu-pool-node-cap": {"maxGpuNodes": 4},
        "slm-gpu-autoscaler-bounds": {"minReplicas": 1, "maxGpuReplicas": 4},
        "slm-k8s-replicas-spread": {"minReplicas": 1},
        "slm-keyvault-recovery": {"minSoftDeleteRetentionDays": 30},
        "slm-foundry-approved-models": {"forbidAutoUpgrade": True},
        "slm-cost-foundry-deployment-sku": {"maxCapacity": 200},
        "slm-ops-container-insights": {"minRetentionDays": 90},
    },
    "prod": {
        "slm-gpu-vm-sizes": {"allowedGpuVmSizes": ["Standard_NV36ads_A10_v5", "Standard_NC24ads_A100_v4",
                                                   "Standard_NC48ads_A100_v4", "Standard_NC40ads_H100_v5"]},
        "slm-gpu-pool-node-cap": {"maxGpuNodes": 8},
        "slm-gpu-pool-priority": {"priority": "Regular"},
        "slm-gpu-autoscaler-bounds": {"minReplicas": 2, "maxGpuReplicas": 8},
        "slm-k8s-replicas-spread": {"minReplicas": 2},
        "slm-k8s-network-policy-coverage": {"requireDefaultDenyEgress": True},
        "slm-aks-api-server-access": {"requirePrivateCluster": True},
        "slm-keyvault-recovery": {"minSoftDeleteRetentionDays": 90},
        "slm-foundry-approved-models": {"forbidAutoUpgrade": True},
        "slm-cost-foundry-deployment-sku": {
            "allowedDeploymentTypes": ["GlobalStandard", "DataZoneStandard", "Standard", "GlobalProvisionedManaged",
                                       "DataZoneProvisionedManaged", "ProvisionedManaged"],
            "maxCapacity": 1000},
        "slm-ops-container-insights": {"minRetentionDays": 365},
        "slm-ops-private-dashboards": {"requirePrivateGrafana": True, "forbidApiKeys": True},
        "slm-edge-iot-hub": {"requirePrivate": True},
    },
}
"""Per-environment policy properties (on top of each schema's defaults)."""

MONITORING_NAMESPACE_EXEMPTION: Final = {"exempt": [{
    "pattern": "observability-ns", "type": "kubernetes:core/v1:Namespace", "within": "slm:monitoring:MonitoringStack",
    "reason": "kube-prometheus-stack's node-exporter DaemonSet needs hostNetwork, hostPID and read-only "
              "hostPath mounts, so its namespace enforces 'privileged'; it holds only the pinned chart.",
}]}
for _env in ("local", "dev", "staging", "prod"):
    ENV_PROPERTIES[_env]["slm-k8s-namespace"] = MONITORING_NAMESPACE_EXEMPTION
    # One budget per environment, read by both budget policies (a config can only raise it with a deviation).
    ENV_PROPERTIES[_env]["slm-cost-monthly-budget"] = {"monthlyBudgetUsd": MONTHLY_BUDGET_USD[_env]}
    ENV_PROPERTIES[_env]["slm-cost-budget-headroom"] = {"monthlyBudgetUsd": MONTHLY_BUDGET_USD[_env]}


def environment_config(env: str) -> dict[str, Any]:
    """The ``--policy-pack-config`` document for ``env``: every policy's level plus its properties."""
    if env not in ENVIRONMENTS:
        msg = f"unknown environment {env!r}; use one of: {', '.join(ENVIRONMENTS)}"
        raise ValueError(msg)
    out: dict[str, Any] = {}
    for spec in SPECS:
        props = ENV_PROPERTIES[env].get(spec.name, {})
        out[spec.name] = {"enforcementLevel": spec.level(env), **props} if props else spec.level(env)
    return out


# --------------------------------------------------------------------------- adapters


def urn_types(urn: str) -> tuple[str, ...]:
    """The type chain of a URN (``parent$child``), outermost first; empty when ``urn`` is not one."""
    parts = urn.split("::")
    return tuple(parts[2].split("$")) if len(parts) >= 4 else ()


def exemption_for(cfg: Mapping[str, Any], name: str, urn: str = "") -> tuple[str, str] | None:
    """The (pattern, reason) whose regex fully matches ``name`` (and its ``type`` / ``within``, if given).

    ``type`` is the resource's type token and ``within`` the component type it must be a direct child
    of: a resource that merely shares the name elsewhere (another component's ``observability-ns``)
    does not inherit the exemption. Exemptions without a reason never match.
    """
    types = urn_types(urn)
    for entry in cfg.get("exempt") or []:
        pattern, reason = str(entry.get("pattern") or ""), str(entry.get("reason") or "").strip()
        if not pattern or len(reason) < EXEMPT_REASON_MIN or not re.fullmatch(pattern, name):
            continue
        want_type, within = entry.get("type"), entry.get("within")
        if want_type and (not types or types[-1] != want_type):
            continue
        if within and (len(types) < 2 or types[-2] != within):
            continue
        return pattern, reason
    return None


def exemption_note(name: str, pattern: str, reason: str, suppressed: int) -> str:
    """The not-applicable reason the gate parses: ``exempt <name> (pattern '<p>', N suppressed): <reason>``."""
    return f"{EXEMPT_PREFIX}{name} (pattern {pattern!r}, {suppressed} suppressed): {reason}"


def rule_failure(exc: BaseException) -> str:
    """The finding for a rule that raised: the exception type and where, never its message (it may hold values)."""
    frames = traceback.extract_tb(exc.__traceback__)
    rule_frames = [f for f in frames if Path(f.filename).name != "wire.py"] or frames  # wire: the shared readers
    where = f" at {Path(rule_frames[-1].filename).name}:{rule_frames[-1].lineno}" if rule_frames else ""
    return (f"cannot verify: the rule failed on this input ({type(exc).__name__}{where}), so it is reported "
            "instead of passed; fix the input, or report the rule bug.")


def cannot_verify(path: str) -> str:
    """The finding for an unknown value a rule had to read (staging and prod fail closed)."""
    return (f"cannot verify {path}: its value is unknown at preview (an output of another resource) and this "
            "policy fails closed here; make it known at preview (derive it from settings), or exempt the "
            "resource with a written reason.")


def is_unknown_finding(message: str) -> bool:
    """True for a finding about a value unknown at preview: a :func:`cannot_verify`, or a rule's message that
    quotes an unknown (``wire.Unknown`` renders as ``(unknown at preview)``) -- not a judgement of known values."""
    return (message.startswith("cannot verify ") and ": its value is unknown at preview" in message) \
        or "(unknown at preview)" in message


TARGETS_ENV: Final = "SLM_POLICY_TARGETS"
"""The URNs a targeted ``pulumi up --target`` creates or changes, one per line: the same list the workflow
passes as ``--target`` (``slmctl bootstrap-targets``, ``slmctl models targets``). A targeted preview still
sends the pack every resource of the program (``slmctl.plan.STEPS``); an unknown read on a resource that
step does not touch is deferred (:data:`DEFERRED_PREFIX`) to the untargeted up's preview, which judges it.
A judged violation is reported whatever the scope: the scope only decides what "cannot verify yet" means."""

DEFERRED_PREFIX: Final = "deferred "


def untargeted(urn: str) -> bool:
    """True when ``SLM_POLICY_TARGETS`` scopes this run and ``urn`` is not one of its targets.

    No scope (unset, empty), a target with a wildcard, or a list naming no URN of this stack
    (``PULUMI_STACK``/``PULUMI_PROJECT``) scopes nothing: every resource is judged (fail closed).
    """
    targets = _targets_of(os.environ.get(TARGETS_ENV, ""), os.environ.get("PULUMI_STACK", ""),
                          os.environ.get("PULUMI_PROJECT", ""))
    return targets is not None and urn not in targets


@functools.lru_cache(maxsize=4)
def _targets_of(text: str, stack: str, project: str) -> frozenset[str] | None:
    entries = [line.strip() for line in text.splitlines() if line.strip()]
    prefix = f"urn:pulumi:{stack}::{project}::"
    if not entries or any("*" in e for e in entries) or not any(e.startswith(prefix) for e in entries):
        return None
    return frozenset(entries)


def deferred_note(name: str, count: int) -> str:
    """The not-applicable reason the gate parses: ``deferred <name> (N unknown): ...``."""
    return (f"{DEFERRED_PREFIX}{name} ({count} unknown): this targeted up does not create or change it "
            f"({TARGETS_ENV}); the untargeted up's preview judges these values")


FAIL_CLOSED_ENVIRONMENTS: Final = frozenset({"staging", "prod"})
"""Where a check that could not see its value is a finding of its policy (at the policy's level)."""


def fails_closed() -> bool:
    """True when the pack runs for a staging or prod stack (``PULUMI_STACK``; unknown stacks are prod)."""
    return environment_of_stack(os.environ.get("PULUMI_STACK")) in FAIL_CLOSED_ENVIRONMENTS


def known_props(value: Any, path: str = "") -> Any:
    """The SDK's property proxy as plain data, each unknown leaf an ``Unknown`` (its path kept).

    The proxy raises on the first unknown a rule touches, which aborted the whole policy with an
    advisory "can't run" (fail open, and one unknown env value blinded every env check).
    """
    if isinstance(value, Unknown):
        return value
    if isinstance(value, Mapping):
        out = KnownDict()
        for key in value:
            sub = f"{path}.{key}" if path else str(key)
            try:
                item = value[key]
            except UnknownValueError:
                out[str(key)] = Unknown(sub)
                continue
            out[str(key)] = known_props(item, sub)
        return out
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        items_out: list[Any] = []
        for i in range(len(value)):
            try:
                item = value[i]
            except UnknownValueError:
                items_out.append(Unknown(f"{path}[{i}]"))
                continue
            items_out.append(known_props(item, f"{path}[{i}]"))
        return items_out
    return Unknown(path) if isinstance(value, str) and value in UNKNOWN_SENTINELS else value


def stack_registries() -> list[str]:
    """The stack's own ACR login server, ``<name_prefix>acr.azurecr.io`` (components/model_registry.py), from the
    stack config the engine passes (``PULUMI_CONFIG``); empty when the stack declares no settings."""
    return list(_registries_of(os.environ.get("PULUMI_CONFIG", "{}")))


@functools.lru_cache(maxsize=8)
def _registries_of(pulumi_config: str) -> tuple[str, ...]:
    """``stack_registries`` for one ``PULUMI_CONFIG`` text: parsed once, not once per policy per resource."""
    try:
        config = json.loads(pulumi_config)
        settings = json.loads(config.get(SETTINGS_CONFIG_KEY, "null")) or {}
        prefix = settings.get("name_prefix")
    except (ValueError, AttributeError):
        return ()
    return (f"{prefix}acr.azurecr.io".lower(),) if isinstance(prefix, str) and re.fullmatch(r"[a-z0-9]+", prefix) else ()


def _known_once(props: Any, path: str = "") -> Any:
    """``known_props(props, path)``, computed once for the same properties, across calls too.

    Every policy of a call gets the same properties (``policies.conversion``, which also hands a later
    call the same object for the same bytes); rules only read what ``known_props`` returns (they build
    findings, never edit inputs: ``tests/policies/test_pack_shares_inputs.py``), so one copy serves
    them all. A path only shows in the ``Unknown`` leaves: AnalyzeStack's copy of a resource (its
    name as the path) is the one Analyze built when it holds no unknown value.
    """
    if path:
        analyzed = conversion.across_calls_get(("known", id(props), ""), props)
        if analyzed is not None and not _has_unknown(analyzed):
            return analyzed
    return conversion.across_calls(("known", id(props), path), props, lambda: known_props(props, path))


def _has_unknown(value: Any) -> bool:
    if isinstance(value, Unknown):
        return True
    if isinstance(value, dict):
        return any(_has_unknown(v) for v in dict.values(value))
    if isinstance(value, list):
        return any(_has_unknown(v) for v in value)
    return False


def _views_once(type_: str, known: Any) -> list[coverage.View]:
    """``coverage.views(type_, known)``, once per call for the same converted properties."""
    return conversion.per_request(("views", id(known), type_), known, lambda: coverage.views(type_, known))


def _resource_context(type_: str, props: Any) -> tuple[Any, list[coverage.View], list[str]]:
    """What every resource policy of one Analyze call reads: the known props, their views, the stack's registries.

    Once per call: rules only read them, and ``PULUMI_CONFIG`` is re-decoded (its hash recomputed) on
    every ``os.environ`` read."""
    known = _known_once(props)
    return known, _views_once(normalize_type(type_), known), stack_registries()


def run_resource_rule(spec: Spec, type_: str, props: Any, cfg: Mapping[str, Any]) -> list[str]:
    """Every message ``spec``'s rule reports, plus one per failure: a raise, or an unknown it read (fail closed)."""
    rule = spec.rule
    assert rule is not None  # noqa: S101 (only called for resource specs)
    known, views, registries = _context(type_, props)
    cfg = {**cfg, "stackRegistries": registries}
    messages: list[str] = []
    with tracking_reads() as reads:
        try:
            if spec.raw_type:
                messages = list(rule(type_, known, cfg))
            else:  # the resource, each item of a List, the kind of a Patch, every embedded pod spec
                for view in views:
                    messages += [view.rewrite(m) for m in rule(view.type, view.props, cfg)]
        except Exception as exc:  # one bad input must not hide every other finding (issue 12.11)
            messages.append(rule_failure(exc))
    if reads and fails_closed():
        messages += [cannot_verify(path) for path in sorted(reads)]
    return messages


def _resource_validator(spec: Spec) -> Callable[[ResourceValidationArgs, ReportViolation], None]:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        cfg = args.get_config() or {}
        messages = _messages_once(spec, args.resource_type, args.props, cfg)
        if not messages:
            return
        exempt = exemption_for(cfg, args.name, args.urn)
        if exempt is not None:
            args.not_applicable(exemption_note(args.name, *exempt, len(messages)))
        unknown = [m for m in messages if is_unknown_finding(m)] if untargeted(args.urn) else []
        for message in messages:
            if message not in unknown:
                report_violation(f"{args.name} ({args.resource_type}): {message}", None)
        if unknown:  # raises: after the judged findings are reported
            args.not_applicable(deferred_note(args.name, len(unknown)))

    return validate


def _silence_check(spec: Spec) -> Callable[[str, Any, Mapping[str, Any] | None], bool]:
    """``conversion.SILENT_ATTR`` for ``spec``: its validator reports nothing exactly when the rule has no message
    (``_resource_validator`` only reports, marks exempt or defers messages)."""

    judged = judged_types(spec.rule) if spec.rule is not None else None

    def silent(type_: str, props: Any, config: Mapping[str, Any] | None) -> bool:
        if judged is not None and (type_ not in judged if spec.raw_type else
                                   judged.isdisjoint(_view_types(type_, props))):
            return True  # it judges none of the types the rule would see: ``applies_to`` returns [] unread
        return not _messages_once(spec, type_, props, config or {})

    return silent


def _view_types(type_: str, props: Any) -> frozenset[str]:
    """The types a (non-raw) resource rule is called with for this resource: those of its views, once per call."""
    return conversion.per_request(("view-types", id(props), type_), props, lambda: frozenset(
        view.type for view in _context(type_, props)[1]))


def _context(type_: str, props: Any) -> tuple[Any, list[coverage.View], list[str]]:
    """``_resource_context``, once per call."""
    return conversion.per_request(("resource", id(props), type_), props, lambda: _resource_context(type_, props))


def _messages_once(spec: Spec, type_: str, props: Any, cfg: Mapping[str, Any]) -> list[str]:
    """``run_resource_rule``, once per call: a policy with messages is asked by ``silent`` and then reports
    them through the SDK's path, which reads the same messages (a call's config cannot change within it)."""
    return conversion.per_request(("messages", spec.name, id(props), type_), props,
                                  lambda: run_resource_rule(spec, type_, props, cfg))


def _stack_known(resources: Sequence[StackResource]) -> tuple[StackResource, ...]:
    """The stack as the stack rules read it: known props, normalized types, embedded workloads added.

    A tuple: every stack policy of a call shares it (``run_stack_rule``), so none can reorder or extend it.
    """
    known = [replace(r, type=normalize_type(r.type), props=_known_once(r.props, r.name)) for r in resources]
    # Pod specs embedded in other kinds (Argo Rollout, KServe, List items) take part as the workloads they are.
    known += [replace(r, type=view.type, props=view.props) for r in known
              for view in _views_once(r.type, r.props)[1:] if view.type in WORKLOAD_TYPES]
    return tuple(known)


def _stack_resources(resources: Sequence[Any]) -> list[StackResource]:
    """The SDK's stack resources as ``StackResource``s."""
    return [StackResource(
        r.resource_type, r.name, r.urn, r.props, r.parent.urn if r.parent else None,
        tuple(d.urn for d in r.dependencies),
        {k: tuple(d.urn for d in v) for k, v in r.property_dependencies.items()},
        r.provider.urn if r.provider is not None else "") for r in resources]


def run_stack_rule(spec: Spec, resources: Sequence[StackResource], cfg: Mapping[str, Any]) -> list[Finding]:
    """``spec``'s stack findings, plus one for a raise and one per unknown value read (fail closed)."""
    rule = spec.stack_rule
    assert rule is not None  # noqa: S101 (only called for stack specs)
    known = conversion.per_request(("stack-known", id(resources)), resources, lambda: _stack_known(resources))
    with tracking_reads() as reads:
        try:
            findings = list(rule(known, cfg))
        except Exception as exc:  # the stack check is reported as failed, the other policies still run
            findings = [Finding(rule_failure(exc))]
    if reads and fails_closed():
        by_name = {r.name: r for r in known}
        findings += [Finding(cannot_verify(path), by_name.get(re.split(r"[.\[]", path, maxsplit=1)[0]))
                     for path in sorted(reads)]
    return findings


def _stack_validator(spec: Spec) -> Callable[[StackValidationArgs, ReportViolation], None]:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        cfg = args.get_config() or {}
        # The same list for every stack policy of the call (policies.conversion): converted once.
        resources = conversion.per_request(("stack-resources", id(args.resources)), args.resources,
                                           lambda: _stack_resources(args.resources))
        notes: list[str] = []
        deferred: dict[str, int] = {}
        for finding in run_stack_rule(spec, resources, cfg):
            res = finding.resource
            if res is not None and is_unknown_finding(finding.message) and untargeted(res.urn):
                deferred[res.name] = deferred.get(res.name, 0) + 1
                continue
            exempt = exemption_for(cfg, res.name, res.urn) if res is not None else None
            if res is not None and exempt is not None:
                notes.append(exemption_note(res.name, *exempt, 1))
                continue
            where = f"{res.name} ({res.type}): " if res is not None else "stack: "
            report_violation(where + finding.message, res.urn if res is not None else None)
        notes += [deferred_note(name, count) for name, count in deferred.items()]
        if notes:
            args.not_applicable("\n".join(sorted(set(notes))))

    return validate


def _schema(spec: Spec) -> PolicyConfigSchema:
    return PolicyConfigSchema(properties={"exempt": EXEMPT_SCHEMA, **{k: dict(v) for k, v in spec.config.items()}})


def build_policies() -> list[ResourceValidationPolicy | StackValidationPolicy]:
    """The pulumi_policy objects for ``SPECS``; all advisory in code (levels come from config)."""
    policies: list[ResourceValidationPolicy | StackValidationPolicy] = []
    for spec in SPECS:
        common: dict[str, Any] = {
            "name": spec.name, "description": spec.description, "enforcement_level": EnforcementLevel.ADVISORY,
            "config_schema": _schema(spec), "severity": spec.severity,
            "tags": [*spec.ids], "remediation_steps": spec.remediation or None,
        }
        if spec.rule is not None:
            policy = ResourceValidationPolicy(validate=_resource_validator(spec), **common)
            setattr(policy, conversion.SILENT_ATTR, _silence_check(spec))  # an attribute the SDK does not have
            policies.append(policy)
        else:
            policies.append(StackValidationPolicy(validate=_stack_validator(spec), **common))
    return policies


def environment_for_stack(stack_name: str | None) -> str:
    """The environment of the stack being analyzed, from its name only (``policies/environments.py``).

    ``settings.tier`` is never consulted: a stack file cannot lower its own levels.
    """
    return environment_of_stack(stack_name)


def initial_config(env: str | None, stack: str | None = None) -> dict[str, Any] | None:
    """The pack's initial config: ``config/<stack>.json`` if present, else ``config/<env>.json``; None if neither."""
    if env is None:
        return None
    path = config_path_for_stack(stack) if stack is not None else CONFIG_DIR / f"{env}.json"
    if not path.is_file():
        return None
    raw = json.loads(path.read_text(encoding="utf-8"))
    levels = {"advisory": EnforcementLevel.ADVISORY, "mandatory": EnforcementLevel.MANDATORY,
              "disabled": EnforcementLevel.DISABLED, "remediate": EnforcementLevel.REMEDIATE}
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, str):
            out[key] = levels[value]
        else:
            entry = dict(value)
            if "enforcementLevel" in entry:
                entry["enforcementLevel"] = levels[entry["enforcementLevel"]]
            out[key] = entry
    return out
