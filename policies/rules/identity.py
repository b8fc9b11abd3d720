"""Stack invariants: every access is granted, on the right scope, to the identity that actually calls.

Each rule follows a call through the plan: who calls (the kubelet of a cluster, the workload identity a
SecretProviderClass names, the identity KEDA's TriggerAuthentication federates, the deployer running
``pulumi up``, people signing in to Grafana), what it calls (a registry, a vault, an Azure Monitor
workspace, a cluster's API, an IoT Hub, Grafana), and which RoleAssignment grants that role on that
scope to that principal. Grants Azure checks at create time must also be ordered before the resource.

Not checkable offline (see docs/components/*.md): role propagation (a new assignment can take minutes
to be honoured), roles granted outside the stack (group membership, inherited assignments), and the
deployer's real object id (recognized by the ``deployer:`` description the platform gives its grants).
"""

# Every rule takes (resources, config) so the pack can adapt them uniformly; not all use both.
# ruff: noqa: ARG001

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from policies.rules.plan_graph import (
    DEPLOYER_MARK,
    ancestors,
    by_urn,
    clusters_running,
    deps_of,
    find_grant,
    grants,
    identities_in,
    known,
    physical_name,
    role_assignments,
    scope_covers,
)
from policies.rules.stack import Finding, StackResource, created_here, of_type, workloads_of
from policies.rules.tokens import (
    CLUSTER,
    FEDERATED_CREDENTIAL,
    GRAFANA,
    IDENTITY,
    IOT_HUB,
    K8S_PROVIDER,
    MONITOR_WORKSPACE,
    REGISTRY,
    SCALED_OBJECT,
    SECRET_PROVIDER_CLASS,
    SUBNET,
    TRIGGER_AUTH,
    VAULT,
)
from policies.rules.wire import get, items, mapping, namespace_of, pod_spec

KEDA_SUBJECT: Final = "system:serviceaccount:kube-system:keda-operator"
PULL_ROLES: Final = ("AcrPull", "AcrPush", "Owner")
SECRET_ROLES: Final = ("Key Vault Secrets User", "Key Vault Secrets Officer", "Key Vault Administrator", "Owner")
AKS_ADMIN: Final = ("Azure Kubernetes Service RBAC Cluster Admin", "Owner")
GRAFANA_SIGN_IN: Final = ("Grafana Admin", "Grafana Editor", "Grafana Viewer")


def _kubelets(cluster: StackResource, index: Mapping[str, StackResource]) -> list[StackResource]:
    """The kubelet identity: the bring-your-own one of ``identityProfile``, else the cluster's own."""
    return identities_in(cluster, "identityProfile", index) or [cluster]


def _ordered(grant: StackResource, dependent: StackResource, index: Mapping[str, StackResource]) -> bool:
    return grant.urn in ancestors(dependent, index)


def _grant_line(role: str, target: StackResource, who: str) -> str:
    return (f"add an azure-native:authorization:RoleAssignment of '{role}' with scope {target.name!r}'s id and "
            f"principalId {who}")


# --------------------------------------------------------------------------- create-time grants (#5)


def _subnets(cluster: StackResource, index: Mapping[str, StackResource]) -> list[StackResource]:
    return [index[u] for u in deps_of(cluster, "agentPoolProfiles") if u in index and index[u].type == SUBNET]


def create_time_grants(resources: Sequence[StackResource], cfg: Mapping[str, Any]) -> list[Finding]:
    """A cluster with a user-assigned control-plane identity gets its BYO-kubelet and subnet grants first."""
    index, ras, out = by_urn(resources), role_assignments(resources), []
    for c in of_type(resources, CLUSTER):
        for cp in identities_in(c, "identity", index):
            needs = [("Managed Identity Operator", k) for k in identities_in(c, "identityProfile", index) if k != cp]
            needs += [("Network Contributor", s) for s in _subnets(c, index)]
            for role, target in needs:
                vnets = [index[u] for u in deps_of(target, "virtualNetworkName") if u in index]
                grant = next((g for t in [target, *vnets] if (g := find_grant(ras, roles=(role, "Owner"), target=t,
                                                                                 principal=cp)) is not None), None)
                if grant is None:
                    out.append(Finding(
                        f"identity: control-plane identity {cp.name!r} has no '{role}' on {target.name!r}, which AKS "
                        f"checks when it creates {c.name!r}; {_grant_line(role, target, f'{cp.name!r}.principalId')}"
                        f", and list it in {c.name!r}'s depends_on.", c))
                elif not _ordered(grant, c, index):
                    out.append(Finding(
                        f"dependsOn: {c.name!r} is created in parallel with {grant.name!r} ('{role}' on "
                        f"{target.name!r} for {cp.name!r}), which AKS needs at creation; add {grant.name!r} to "
                        f"{c.name!r}'s depends_on.", c))
    return out


# --------------------------------------------------------------------------- kubelet -> AcrPull


def _pulls_from(w: StackResource, registry: StackResource, index: Mapping[str, StackResource]) -> bool:
    pod = pod_spec(w.type, w.props)
    host = f"{physical_name(registry).lower()}.azurecr.io/"
    if pod is not None and any(c.image.lower().startswith(host) for c in pod.containers()):
        return True
    images = [index[u] for u in deps_of(w, "spec") if u in index and index[u].type.startswith("docker:")]
    return any(registry.urn in {*deps_of(i, "registry"), *deps_of(i, "imageName")} for i in images)


def kubelet_acr_pull(resources: Sequence[StackResource], cfg: Mapping[str, Any]) -> list[Finding]:
    """The kubelet of every cluster may pull (AcrPull) from each registry its pods' images come from."""
    index, ras, out = by_urn(resources), role_assignments(resources), []
    workloads = workloads_of(resources)
    clusters = of_type(resources, CLUSTER)
    for reg in of_type(resources, REGISTRY):
        pullers = [w for w in workloads if _pulls_from(w, reg, index)]
        on = {c.urn: c for w in pullers for c in clusters_running(w, clusters, index)}
        for c in on.values():
            for kubelet in _kubelets(c, index):
                if find_grant(ras, roles=PULL_ROLES, target=reg, principal=kubelet) is None:
                    who = f"{kubelet.name!r}.principalId" if kubelet is not c else f"{c.name!r}'s kubelet objectId"
                    out.append(Finding(
                        f"identity: {pullers[0].name!r} pulls its image from {reg.name!r}, but the kubelet of "
                        f"{c.name!r} ({kubelet.name!r}) has no AcrPull there (ErrImagePull 401); "
                        f"{_grant_line('AcrPull', reg, who)}.", reg))
    return out


# --------------------------------------------------------------------------- CSI -> Key Vault Secrets User


def _vault_of(spc: StackResource, vaults: Sequence[StackResource]) -> StackResource | None:
    """The vault the class reads: by dependency first, so a name that is unknown only because the vault is
    created in this stack (a first preview) is judged by its source and never read; else by the name."""
    for v in vaults:
        if v.urn in deps_of(spc, "spec"):
            return v
    name = known(get(spc.props, "spec.parameters.keyvaultName"))
    for v in vaults:
        if name is not None and physical_name(v).lower() == name.lower():
            return v
    return None


def secrets_reader(resources: Sequence[StackResource], cfg: Mapping[str, Any]) -> list[Finding]:
    """The identity a SecretProviderClass reads Key Vault with holds Key Vault Secrets User on that vault."""
    index, ras, out = by_urn(resources), role_assignments(resources), []
    vaults = of_type(resources, VAULT)
    for spc in of_type(resources, SECRET_PROVIDER_CLASS):
        if get(spc.props, "spec.provider") != "azure":
            continue
        vault = _vault_of(spc, vaults)
        if vault is None:
            continue
        params = mapping(get(spc.props, "spec.parameters"))
        client_id = dict.get(params, "clientID")  # not a tracked read: an unknown is judged by its source first
        if str(params.get("useVMManagedIdentity")).lower() == "true":
            callers = [k for c in clusters_running(spc, of_type(resources, CLUSTER), index) for k in _kubelets(c, index)]
        elif created_here(spc, "spec", client_id):
            # The workload identity's client id, unknown at a first preview because the identity is created
            # in this stack: the class reads as that identity (its dependency), never as "no clientID".
            callers = identities_in(spc, "spec", index)
        elif not params.get("clientID"):
            callers = [k for c in clusters_running(spc, of_type(resources, CLUSTER), index) for k in _kubelets(c, index)]
        else:
            callers = identities_in(spc, "spec", index)
        for who in callers:
            if find_grant(ras, roles=SECRET_ROLES, target=vault, principal=who) is None:
                out.append(Finding(
                    f"identity: SecretProviderClass {spc.name!r} reads {vault.name!r} as {who.name!r}, which has no "
                    f"'Key Vault Secrets User' there (the CSI mount fails with 403 and the pod never starts); "
                    f"{_grant_line('Key Vault Secrets User', vault, f'{who.name!r}.principalId')}.", spc))
    return out


# --------------------------------------------------------------------------- KEDA -> Monitoring Data Reader


def _workspace_of(so: StackResource, trigger: Mapping[str, Any], workspaces: Sequence[StackResource]) -> \
        StackResource | bool | None:
    """The Azure Monitor workspace a prometheus trigger queries: a resource, True (outside the stack), None."""
    found = [w for w in workspaces if w.urn in deps_of(so, "spec")]
    if found:
        return found[0]
    address = str(mapping(trigger.get("metadata")).get("serverAddress") or "")
    return True if ".prometheus.monitor.azure.com" in address else None


def _federated_to_keda(uai: StackResource, fics: Sequence[StackResource]) -> bool:
    return any(uai.urn in deps_of(f, "resourceName") and get(f.props, "subject") == KEDA_SUBJECT for f in fics)


def keda_metrics_reader(resources: Sequence[StackResource], cfg: Mapping[str, Any]) -> list[Finding]:
    """KEDA queries an Azure Monitor workspace as an identity federated to keda-operator with Monitoring Data Reader."""
    index, ras, out = by_urn(resources), role_assignments(resources), []
    auths = of_type(resources, TRIGGER_AUTH)
    fics = of_type(resources, FEDERATED_CREDENTIAL)
    for so in of_type(resources, SCALED_OBJECT):
        for i, trigger in enumerate(mapping(t) for t in items(get(so.props, "spec.triggers"))):
            workspace = _workspace_of(so, trigger, of_type(resources, MONITOR_WORKSPACE)) if trigger.get("type") == "prometheus" else None
            if workspace is None:
                continue
            ref = str(mapping(trigger.get("authenticationRef")).get("name") or "")
            auth = next((a for a in auths if get(a.props, "metadata.name") == ref
                         and namespace_of(a.props) == namespace_of(so.props)), None) if ref else None
            if auth is None or get(auth.props, "spec.podIdentity.provider") != "azure-workload":
                out.append(Finding(
                    f"spec.triggers[{i}].authenticationRef: {so.name!r} queries an Azure Monitor workspace without an "
                    "azure-workload TriggerAuthentication in its namespace, so KEDA is refused (401); reference one "
                    "whose podIdentity.identityId is an identity with Monitoring Data Reader on the workspace.", so))
                continue
            for uai in identities_in(auth, "spec", index):
                if not _federated_to_keda(uai, fics):
                    out.append(Finding(
                        f"identity: TriggerAuthentication {auth.name!r} uses {uai.name!r}, which has no federated "
                        f"credential for '{KEDA_SUBJECT}' (the operator's token is refused); add a "
                        "FederatedIdentityCredential on it with that subject and the cluster's OIDC issuer.", auth))
                if isinstance(workspace, StackResource) and find_grant(
                        ras, roles=("Monitoring Data Reader", "Owner"), target=workspace, principal=uai) is None:
                    out.append(Finding(
                        f"identity: {so.name!r} queries {workspace.name!r} as {uai.name!r} (TriggerAuthentication "
                        f"{auth.name!r}), which has no 'Monitoring Data Reader' there; KEDA never scales; "
                        f"{_grant_line('Monitoring Data Reader', workspace, f'{uai.name!r}.principalId')}.", so))
    return out


# --------------------------------------------------------------------------- the deployer


def _deployer_need(target: StackResource, writers: Sequence[StackResource], *, role: str, why: str,
                   ras: Sequence[StackResource], index: Mapping[str, StackResource],
                   roles: Sequence[str]) -> list[Finding]:
    if not writers:
        return []
    grant = find_grant(ras, roles=roles, target=target, deployer=True)
    if grant is None:
        return [Finding(
            f"identity: the deployer writes {why} of {target.name!r} ({writers[0].name!r}) but holds no '{role}' "
            f"there; add a RoleAssignment of '{role}' scoped to {target.name!r} for the deploying principal "
            f"(getClientConfig().objectId) with a description starting '{DEPLOYER_MARK}'.", target)]
    late = [w for w in writers if not _ordered(grant, w, index)]
    return [Finding(f"dependsOn: {w.name!r} writes {why} of {target.name!r} in parallel with the deployer's grant "
                    f"{grant.name!r}; add {grant.name!r} to its depends_on (then allow for role propagation).", w)
            for w in late[:1]]


def _aks_rbac_only(c: StackResource) -> bool:
    return get(c.props, "aadProfile.enableAzureRBAC") is True and get(c.props, "disableLocalAccounts") is True


def deployer_grants(resources: Sequence[StackResource], cfg: Mapping[str, Any]) -> list[Finding]:
    """The identity running ``pulumi up`` may write every data plane the plan writes, before it writes."""
    index, ras, out = by_urn(resources), role_assignments(resources), []
    providers = of_type(resources, K8S_PROVIDER)
    for c in (c for c in of_type(resources, CLUSTER) if _aks_rbac_only(c)):
        writers = [p for p in providers if c.urn in ancestors(p, index)]
        out += _deployer_need(c, writers, role=AKS_ADMIN[0], why="Kubernetes objects", ras=ras, index=index,
                              roles=AKS_ADMIN)
    for hub in (h for h in of_type(resources, IOT_HUB) if get(h.props, "properties.disableLocalAuth") is True):
        writers = [r for r in resources if r.type.startswith("pulumi-python:dynamic:")
                   and any(hub.urn in urns for urns in r.property_dependencies.values())]
        out += _deployer_need(hub, writers, role="IoT Hub Data Contributor", why="IoT Edge configurations", ras=ras,
                              index=index, roles=("IoT Hub Data Contributor", "Owner"))
    for reg in of_type(resources, REGISTRY):
        writers = [r for r in resources if r.type.startswith("docker:") and get(r.props, "skipPush") is not True
                   and reg.urn in deps_of(r, "registry")]
        out += _deployer_need(reg, writers, role="AcrPush", why="images", ras=ras, index=index,
                              roles=("AcrPush", "Owner"))
    return out


# --------------------------------------------------------------------------- people -> Grafana


def grafana_users(resources: Sequence[StackResource], cfg: Mapping[str, Any]) -> list[Finding]:
    """Somebody may sign in to and manage each Managed Grafana: a Grafana Admin grant to people."""
    out = []
    ras = role_assignments(resources)
    for g in of_type(resources, GRAFANA):
        admins = [ra for ra in ras if grants(ra, ("Grafana Admin", "Owner")) and scope_covers(ra, g)
                  and g.urn not in deps_of(ra, "principalId")]  # not Grafana's own identity
        if not admins:
            out.append(Finding(
                f"identity: nobody holds 'Grafana Admin' on {g.name!r}, so nobody can sign in or manage it; grant "
                "it (and Grafana Viewer) to the people's Entra groups (settings monitoring."
                "grafana_admin_group_object_ids / grafana_viewer_group_object_ids).", g))
    return out


__all__ = ["IDENTITY", "create_time_grants", "deployer_grants", "grafana_users", "keda_metrics_reader",
           "kubelet_acr_pull", "secrets_reader"]
