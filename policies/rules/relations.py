"""Reading relations between the resources of a plan: who refers to whom, who is ordered before whom.

A reference is seen two ways, both as the engine sends them to ``AnalyzeStack``: through the
property dependencies of an input (an Output of resource B flowed into input ``p`` of A, the only
signal at ``pulumi preview`` where new ids are still unknown), or through an ARM id string that
ends in the target's physical name. Ordering is the transitive closure of ``dependencies`` (which
holds ``depends_on`` and every property dependency), i.e. what the engine waits for before creating.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from policies.rules.stack import StackResource
from policies.rules.wire import get, items, mapping

UNKNOWN: Final = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
"""The engine's sentinel for a value not known at preview."""

ROLE_IDS: Final[Mapping[str, str]] = {
    # Azure built-in role definition ids, the same in every tenant
    # (learn.microsoft.com/azure/role-based-access-control/built-in-roles).
    "AcrPull": "7f951dda-4ed3-4680-a7ca-43fe172d538d",
    "AcrPush": "8311e382-0749-4cb8-b61a-304f252e45ec",
    "Key Vault Secrets User": "4633458b-17de-408a-b874-0445c86b69e6",
    "Key Vault Secrets Officer": "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
    "Key Vault Administrator": "00482a5a-887f-4fb3-b363-3b7fe8e74483",
    "Monitoring Data Reader": "b0d8363b-8ddd-447d-831f-62ca05bff136",
    "Azure Kubernetes Service RBAC Cluster Admin": "b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b",
    "IoT Hub Data Contributor": "4fc6c259-987e-4a07-842e-c321cc9d413f",
    "Grafana Admin": "22926164-76b3-42b3-bc55-97df8dab3e41",
    "Grafana Editor": "a79a5197-3a5c-4973-a920-486035ffd60f",
    "Grafana Viewer": "60921a7e-fef1-4a43-9b16-a26c52ad4769",
    "Managed Identity Operator": "f1a07417-d97a-45cb-824c-7a7467783830",
    "Network Contributor": "4d97b98b-1d4f-4787-a291-c67834d212e7",
    "Storage Blob Data Reader": "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
    "Storage Blob Data Contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "Owner": "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
}
"""The roles the invariants reason about, by name."""

ROLE_ASSIGNMENT: Final = "azure-native:authorization:RoleAssignment"
IDENTITY: Final = "azure-native:managedidentity:UserAssignedIdentity"
DEPLOYER_MARK: Final = "deployer:"
"""Role assignments whose ``description`` starts with this grant the identity that runs ``pulumi up``
(``authorization.getClientConfig().objectId``): its object id is only known to the engine, so the plan
names it through the description Azure also shows next to the assignment."""


def known(value: object) -> str | None:
    """A string input that is known at preview (not unset, not the unknown sentinel)."""
    return value if isinstance(value, str) and value and UNKNOWN not in value else None


def deps_of(r: StackResource, prop: str) -> tuple[str, ...]:
    """URNs whose outputs flowed into input ``prop`` of ``r``."""
    return tuple(r.property_dependencies.get(prop, ()))


def by_urn(resources: Sequence[StackResource]) -> dict[str, StackResource]:
    """Resources keyed by URN."""
    return {r.urn: r for r in resources}


def ancestors(r: StackResource, index: Mapping[str, StackResource]) -> set[str]:
    """Every URN ``r`` waits for before it is created (transitive ``dependencies``)."""
    seen: set[str] = set()
    todo = list(r.dependencies)
    while todo:
        urn = todo.pop()
        if urn in seen:
            continue
        seen.add(urn)
        dep = index.get(urn)
        if dep is not None:
            todo.extend(dep.dependencies)
    return seen


def clusters_running(r: StackResource, clusters: Sequence[StackResource],
                     index: Mapping[str, StackResource]) -> list[StackResource]:
    """The clusters a Kubernetes object is applied to: those its provider waits for (kubeconfig from them)."""
    provider = index.get(r.provider or "")
    if provider is None:
        return []
    before = ancestors(provider, index)
    return [c for c in clusters if c.urn in before]


def physical_name(r: StackResource) -> str:
    """The Azure name of ``r``: its ``<kind>Name`` input (or resourceName / name), else its logical name."""
    kind = r.type.rsplit(":", 1)[-1]
    lower = kind[0].lower() + kind[1:]
    for key in (f"{lower}Name", "resourceName", "accountName", "vaultName", "registryName", "workspaceName", "name"):
        value = known(get(r.props, key))
        if value:
            return value
    return r.name


def refers_to(ref: StackResource, prop: str, target: StackResource, value: object = None) -> bool:
    """``ref.prop`` (or ``value`` taken from it) points at ``target``: a property dependency or its ARM id."""
    if target.urn in deps_of(ref, prop):
        return True
    text = known(value if value is not None else get(ref.props, prop))
    return bool(text) and text.rstrip("/").lower().endswith("/" + physical_name(target).lower())  # type: ignore[union-attr]


def role_name(ra: StackResource) -> str | None:
    """The built-in role a RoleAssignment grants, by name (None for other roles)."""
    rid = str(get(ra.props, "roleDefinitionId") or "").rstrip("/").rsplit("/", 1)[-1].lower()
    return next((name for name, guid in ROLE_IDS.items() if guid == rid), None)


def role_assignments(resources: Iterable[StackResource]) -> list[StackResource]:
    """Every RoleAssignment of the plan."""
    return [r for r in resources if r.type == ROLE_ASSIGNMENT]


def grants(ra: StackResource, roles: Iterable[str]) -> bool:
    """``ra`` grants one of ``roles``."""
    return role_name(ra) in set(roles)


def scope_covers(ra: StackResource, target: StackResource) -> bool:
    """``ra.scope`` is ``target``, or its resource group, or its subscription."""
    if refers_to(ra, "scope", target):
        return True
    scope = known(get(ra.props, "scope"))
    if scope is None:
        return False
    scope = scope.rstrip("/").lower()
    if not scope.startswith("/subscriptions/"):
        return False
    if scope.count("/") == 2:
        return True
    rg = known(get(target.props, "resourceGroupName"))
    return rg is not None and scope.count("/") == 4 and scope.endswith(f"/resourcegroups/{rg.lower()}")


def principal_is(ra: StackResource, principal: StackResource | str) -> bool:
    """``ra`` is granted to ``principal``: an identity resource (by property dependency) or a known id."""
    if isinstance(principal, str):
        return known(get(ra.props, "principalId")) == principal
    return principal.urn in deps_of(ra, "principalId")


def is_deployer_grant(ra: StackResource) -> bool:
    """``ra`` grants the identity that runs ``pulumi up`` (see ``DEPLOYER_MARK``)."""
    return str(get(ra.props, "description") or "").startswith(DEPLOYER_MARK)


def identities_in(r: StackResource, prop: str, index: Mapping[str, StackResource]) -> list[StackResource]:
    """The user-assigned identities whose outputs flowed into ``r.prop``."""
    return [index[u] for u in deps_of(r, prop) if u in index and index[u].type == IDENTITY]


def find_grant(ras: Iterable[StackResource], *, roles: Iterable[str], target: StackResource,
               principal: StackResource | str | None = None, deployer: bool = False) -> StackResource | None:
    """The first assignment of one of ``roles`` on ``target`` to ``principal`` (or to the deployer)."""
    wanted = tuple(roles)
    for ra in ras:
        if not grants(ra, wanted) or not scope_covers(ra, target):
            continue
        if deployer and is_deployer_grant(ra):
            return ra
        if principal is not None and principal_is(ra, principal):
            return ra
    return None


def listed(value: object) -> list[dict[str, object]]:
    """``value`` as a list of mappings (wire lists of objects)."""
    return [mapping(v) for v in items(value)]
