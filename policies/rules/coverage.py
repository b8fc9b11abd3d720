"""Blind spots by type (issue 12.4): which types the pack reads, and every place a pod spec can hide.

* ``views`` turns one resource into the objects the rules understand: each item of a ``*List`` kind,
  the base kind of a ``*Patch``, and a pod template (as a ReplicaSet) for every pod spec embedded in
  any other Kubernetes kind (PodTemplate, ReplicationController, KServe InferenceService, Argo
  Rollout, ...). The pack runs every resource rule on every view, so a new rule covers them too.
* ``KNOWN_TYPES`` lists the types some policy reads, and the reviewed types that carry no setting a
  policy would judge; ``unknown_type`` reports everything else (mandatory in prod: a reviewer cannot
  trust a PASS over resources nobody looked at).
* ``OPAQUE_COMPONENTS`` are provider-side components (Helm v4 Chart, yaml/v2, kustomize/v2) whose
  objects exist only once the provider renders them: offline they have no children to check.
"""

# ruff: noqa: ARG001
from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from policies.rules.stack import Finding, StackResource
from policies.rules.tokens import REPLICA_SET
from policies.rules.wire import WORKLOAD_TYPES, KnownDict, Props, is_list, is_map, show

TEMPLATE_PATH: Final = "spec.template.spec"
MAX_POD_SPEC_DEPTH: Final = 6
_K8S_TYPE_RE: Final = re.compile(r"^kubernetes:(?P<gv>[a-z0-9.-]+/v[0-9a-z]+):(?P<kind>[A-Za-z0-9]+)$")

CHECKED: Final = "read by the pack's rules"
KNOWN_TYPES: Final[dict[str, str]] = {
    **dict.fromkeys((
        "azure-native:authorization:ManagementLockAtResourceGroupLevel", "azure-native:authorization:ManagementLockByScope",
        "azure-native:authorization:RoleAssignment", "azure-native:cognitiveservices:Account",
        "azure-native:cognitiveservices:AccountConnection", "azure-native:cognitiveservices:Deployment",
        "azure-native:cognitiveservices:Project", "azure-native:cognitiveservices:ProjectConnection",
        "azure-native:cognitiveservices:RaiPolicy", "azure-native:containerregistry:CacheRule",
        "azure-native:containerregistry:Registry", "azure-native:containerregistry:ScopeMap",
        "azure-native:containerservice:AgentPool", "azure-native:containerservice:ManagedCluster",
        "azure-native:dashboard:Grafana", "azure-native:insights:DiagnosticSetting",
        "azure-native:iothub:IotHubResource", "azure-native:keyvault:Key", "azure-native:keyvault:Secret",
        "azure-native:keyvault:Vault", "azure-native:managedidentity:FederatedIdentityCredential",
        "azure-native:monitor:DiagnosticSetting", "azure-native:monitor:ActionGroup",
        "azure-native:network:NetworkSecurityGroup",
        "azure-native:network:PrivateDnsZoneGroup", "azure-native:network:PrivateEndpoint",
        "azure-native:network:SecurityRule", "azure-native:network:Subnet",
        "azure-native:operationalinsights:Workspace", "azure-native:privatedns:VirtualNetworkLink",
        "azure-native:storage:BlobContainer", "azure-native:storage:BlobServiceProperties",
        "azure-native:storage:StorageAccount", "azure-native:compute:VirtualMachineScaleSet",
        "azure-native:containerinstance:ContainerGroup",
        *WORKLOAD_TYPES, "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
        "kubernetes:azmonitoring.coreos.com/v1:PodMonitor", "kubernetes:azmonitoring.coreos.com/v1:ServiceMonitor",
        "kubernetes:core/v1:ConfigMap", "kubernetes:core/v1:Namespace", "kubernetes:core/v1:Service",
        "kubernetes:helm.sh/v3:Release", "kubernetes:keda.sh/v1alpha1:ScaledObject",
        "kubernetes:monitoring.coreos.com/v1:PodMonitor", "kubernetes:monitoring.coreos.com/v1:ServiceMonitor",
        "kubernetes:networking.k8s.io/v1:Ingress", "kubernetes:networking.k8s.io/v1:NetworkPolicy",
        "kubernetes:policy/v1:PodDisruptionBudget", "kubernetes:rbac.authorization.k8s.io/v1:Role",
        "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole", "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding",
        "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding", "kubernetes:core/v1:PersistentVolume",
        "kubernetes:core/v1:PodTemplate", "kubernetes:core/v1:ReplicationController",
        "kubernetes:serving.kserve.io/v1beta1:InferenceService", "kubernetes:argoproj.io/v1alpha1:Rollout",
    ), CHECKED),
    # Reviewed: no setting of these is a security or cost decision the catalogue judges.
    "azure-native:resources:ResourceGroup": "a container; its tags are checked by slm-cost-required-tags",
    "azure-native:managedidentity:UserAssignedIdentity": "an identity; what it may do is its RoleAssignments",
    "azure-native:alertsmanagement:PrometheusRuleGroup": "alert rules (promtool-checked at render)",
    "azure-native:monitor:AzureMonitorWorkspace": "metrics store; access is RBAC (RoleAssignment)",
    "azure-native:monitor:DataCollectionEndpoint": "managed Prometheus plumbing, no network exposure setting used",
    "azure-native:monitor:DataCollectionRule": "which metrics are collected",
    "azure-native:monitor:DataCollectionRuleAssociation": "links a DCR to the cluster",
    "azure-native:network:VirtualNetwork": "address space only; exposure is judged on subnets, NSGs and endpoints",
    "azure-native:privatedns:PrivateZone": "private DNS zone (no public records)",
    "azure-native:network:NatGateway": "outbound-only SNAT for a subnet (no inbound path); slm-reach-deployer reads "
                                      "it as the deploy runner's egress",
    "azure-native:network:PublicIPAddress": "an address; what it exposes is judged where it is attached (NSGs, "
                                           "load balancers); the deploy runner's sits only on its NAT gateway",
    "azure-native:containerregistry:Token": "a repository-scoped pull token; its reach is its ScopeMap's actions",
    "docker:index/image:Image": "a build; the image reference it produces is judged where a pod uses it",
    "pulumi-python:dynamic:Resource": "the program's own dynamic providers (reviewed in components/)",
    "kubernetes:core/v1:Secret": "holds secrets by design; how pods read them is judged on the pods",
    "kubernetes:core/v1:PersistentVolumeClaim": "a model volume (size, class, access mode); what may mount it "
                                                "is judged on the pods (slm-k8s-volume-types)",
    "kubernetes:core/v1:ServiceAccount": "token automount is judged on the pods that use it",
    "kubernetes:keda.sh/v1alpha1:TriggerAuthentication": "workload-identity reference for KEDA",
    "kubernetes:monitoring.coreos.com/v1:PrometheusRule": "alert rules (promtool-checked at render)",
    "kubernetes:secrets-store.csi.x-k8s.io/v1:SecretProviderClass": "Key Vault CSI mapping (no secret values)",
}
"""Type -> why it is understood: read by a rule, or reviewed as carrying nothing to judge."""

OPAQUE_COMPONENTS: Final = frozenset({
    "kubernetes:helm.sh/v4:Chart", "kubernetes:yaml/v2:ConfigFile", "kubernetes:yaml/v2:ConfigGroup",
    "kubernetes:kustomize/v2:Directory",
})
"""Provider-side components: their objects appear only when the provider renders them (never offline)."""


@dataclass(frozen=True)
class View:
    """One object a resource contains, as the rules read it, and how to put its paths back."""

    type: str
    props: Props
    rewrite: Callable[[str], str]


def _same(message: str) -> str:
    return message


def _prefixed(prefix: str) -> Callable[[str], str]:
    def rewrite(message: str) -> str:
        head, sep, tail = message.partition(": ")
        if sep and re.match(r"^[\w.\[\]'/-]+$", head):
            return f"{prefix}{head}: {tail}"
        return f"{prefix.rstrip('.')}: {message}"
    return rewrite


def _relocated(path: str) -> Callable[[str], str]:
    meta = path.rsplit(".", 1)[0] + ".metadata" if "." in path else "metadata"

    def rewrite(message: str) -> str:
        return message.replace(TEMPLATE_PATH, path).replace("spec.template.metadata", meta)
    return rewrite


def item_type(list_type: str, item: Mapping[str, Any]) -> str | None:
    """The type token of one item of a ``*List`` kind (``kubernetes:core/v1:List`` items name their kind)."""
    m = _K8S_TYPE_RE.match(list_type)
    if m is None:
        return None
    if m["kind"] == "List":
        api, kind = str(item.get("apiVersion") or ""), str(item.get("kind") or "")
        if not api or not kind:
            return None
        return f"kubernetes:{api if '/' in api else 'core/' + api}:{kind}"
    return f"kubernetes:{m['gv']}:{m['kind'].removesuffix('List')}"


def _pod_specs(node: Any, path: str, depth: int) -> list[tuple[str, Any, Any]]:
    """(path, pod spec, its metadata) for each mapping under ``node`` that holds a list of containers."""
    if depth > MAX_POD_SPEC_DEPTH or not is_map(node):
        return []
    containers = node.get("containers")
    if is_list(containers) and any(is_map(c) for c in containers):
        return [(path, node, None)]
    found: list[tuple[str, Any, Any]] = []
    for key in node:
        value = dict.get(node, key) if isinstance(node, KnownDict) else node[key]
        sub = f"{path}.{key}" if path else str(key)
        for p, spec, meta in _pod_specs(value, sub, depth + 1):
            template_meta = meta
            if meta is None and p == f"{sub}.spec" and isinstance(value, Mapping):
                template_meta = value.get("metadata")
            found.append((p, spec, template_meta))  # a template is {metadata, spec}
    return found


def views(type_: str, props: Props) -> list[View]:
    """Every object in ``type_``/``props`` the rules should judge, the resource itself first."""
    out = [View(type_, props, _same)]
    if not type_.startswith("kubernetes:"):
        return out
    if type_.endswith("List"):
        for i, item in enumerate(props.get("items") or [] if is_map(props) else []):
            if is_map(item) and (sub_type := item_type(type_, item)) is not None:
                out += [View(v.type, v.props, _compose(_prefixed(f"items[{i}]."), v.rewrite))
                        for v in views(sub_type, item)]
        return out
    if type_.endswith("Patch"):
        return [View(type_.removesuffix("Patch"), props, _same)]
    if type_ in WORKLOAD_TYPES:
        return out
    for path, spec, meta in _pod_specs(props, "", 0):
        template = {"metadata": meta if is_map(meta) else {}, "spec": spec}
        synthetic = {"metadata": props.get("metadata") or {}, "spec": {"template": template}}
        out.append(View(REPLICA_SET, synthetic, _relocated(path)))
    return out


def _compose(outer: Callable[[str], str], inner: Callable[[str], str]) -> Callable[[str], str]:
    return lambda message: outer(inner(message))


def understood(type_: str) -> bool:
    """Whether some policy reads ``type_`` (or it was reviewed), looking through Lists and Patches."""
    if type_.startswith("pulumi:providers:") or type_ in KNOWN_TYPES:
        return True
    return type_.endswith("Patch") and type_.removesuffix("Patch") in KNOWN_TYPES


def unknown_type(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """Every resource type no policy reads is a finding (a PASS must not cover unread resources)."""
    if type_ in OPAQUE_COMPONENTS:
        return []  # judged by opaque_components, with the stack's children in view
    extra = {str(t) for t in cfg.get("reviewedTypes", [])}
    if type_.startswith("kubernetes:") and type_.endswith("List") and not type_.endswith(":List"):
        base = f"{type_.removesuffix('List')}"
        return [] if understood(base) or base in extra else [_unread(base, f"items of {type_}")]
    if type_.endswith(":List"):
        kinds = sorted({t for item in (props.get("items") or []) if is_map(item)
                        and (t := item_type(type_, item)) is not None and not understood(t) and t not in extra})
        return [_unread(k, f"an item of {type_}") for k in kinds]
    return [] if understood(type_) or type_ in extra else [_unread(type_, "this resource")]


def _unread(type_: str, what: str) -> str:
    classic = " (pulumi-azure classic: use the azure-native equivalent, which the pack reads)" \
        if type_.startswith("azure:") else ""
    return (f"type: found {type_!r} for {what}, which no policy of this pack reads{classic}; its settings are not "
            "checked. Use a type the pack reads, add rules for it (policies/rules/coverage.py), or exempt the "
            "resource with a written reason.")


def opaque_components(resources: Sequence[StackResource], cfg: Mapping[str, Any]) -> list[Finding]:
    """Helm v4 Charts and yaml/v2 / kustomize/v2 components whose objects are not in the stack being checked."""
    parents = {r.parent for r in resources if r.parent}
    return [Finding(f"type: found {r.type.rsplit(':', 1)[-1]} {show(r.name)} with no rendered objects in this "
                    "stack; the provider renders them only at a real preview, so they were not checked here. Run "
                    "`pulumi preview --policy-pack policies` (CI does), or use objects the program declares.", r)
            for r in resources if r.type in OPAQUE_COMPONENTS and r.urn not in parents]
