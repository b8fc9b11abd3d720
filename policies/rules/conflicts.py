"""Stack invariants: what Azure or Kubernetes would reject because two resources of the plan collide.

- ``diagnostic_sinks``: Azure refuses a second diagnostic setting that sends a category (or a category
  group covering it) of one resource to a destination another setting already uses ("Data sink ... is
  already used in diagnostic setting ... for category ...").
- ``unique_names``: two resources with one name in one scope (the second create fails with Conflict or
  silently updates the first); globally unique Azure names collide across resource groups too.
"""

# Every rule takes (resources, config) so the pack can adapt them uniformly; not all use both.
# ruff: noqa: ARG001

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from policies.rules.plan_graph import UNKNOWN, deps_of, known, listed
from policies.rules.stack import DIAGNOSTIC_SETTINGS, REQUIRED_LOGS, Finding, StackResource, created_here
from policies.rules.wire import Unknown, get

ALL_LOGS: Final = "allLogs"
AUDIT_GROUP: Final = "audit"
AUDIT_CATEGORIES: Final = frozenset(c for groups in REQUIRED_LOGS.values() for g in groups for c in g) | {"kube-audit"}
"""Categories Azure puts in the ``audit`` category group for the types the pack knows."""
GLOBAL_NAMES: Final[Mapping[str, str]] = {
    "azure-native:storage:StorageAccount": "accountName",
    "azure-native:keyvault:Vault": "vaultName",
    "azure-native:containerregistry:Registry": "registryName",
    "azure-native:cognitiveservices:Account": "properties.customSubDomainName",
    "azure-native:iothub:IotHubResource": "resourceName",
    "azure-native:dashboard:Grafana": "workspaceName",
}
"""Types whose name is a DNS label unique across Azure, and the input holding it."""


def _key(r: StackResource, prop: str) -> str:
    """What ``r.prop`` designates: its ARM id when known, else the resources it came from."""
    if created_here(r, prop):  # an id of a resource this stack creates: that resource, read nothing
        return "urn:" + ",".join(sorted(deps_of(r, prop)))
    text = known(get(r.props, prop))
    return text.lower() if text else "urn:" + ",".join(sorted(deps_of(r, prop)))


def _categories(s: StackResource) -> set[str]:
    out = set()
    for entry in listed(get(s.props, "logs")):
        if entry.get("enabled") is not False:
            out.add(str(entry.get("category") or f"group:{entry.get('categoryGroup')}"))
    for entry in listed(get(s.props, "metrics")):
        if entry.get("enabled") is not False:
            out.add(f"metric:{entry.get('category') or entry.get('categoryGroup')}")
    return out


def _overlap(a: set[str], b: set[str]) -> list[str]:
    """Categories both settings send (a group counts as each category it covers)."""
    shared = a & b
    for x, y in ((a, b), (b, a)):
        if f"group:{ALL_LOGS}" in x:
            shared |= {c for c in y if not c.startswith("metric:")}
        if f"group:{AUDIT_GROUP}" in x:
            shared |= {c for c in y if c in AUDIT_CATEGORIES}
    return sorted(c.removeprefix("group:") for c in shared)


def _destination(s: StackResource) -> tuple[str, ...]:
    return tuple(_key(s, p) for p in ("workspaceId", "storageAccountId", "eventHubAuthorizationRuleId")
                 if created_here(s, p) or known(get(s.props, p)) or deps_of(s, p))


def diagnostic_sinks(resources: Sequence[StackResource], cfg: Mapping[str, Any]) -> list[Finding]:
    """No two diagnostic settings send one category of one resource to the same destination."""
    settings = sorted((r for r in resources if r.type in DIAGNOSTIC_SETTINGS), key=lambda r: r.name)
    out = []
    for i, a in enumerate(settings):
        for b in settings[i + 1:]:
            if _key(a, "resourceUri") != _key(b, "resourceUri"):
                continue
            sinks = set(_destination(a)) & set(_destination(b))
            shared = _overlap(_categories(a), _categories(b)) if sinks else []
            if shared:
                target = (None if created_here(a, "resourceUri") else known(get(a.props, "resourceUri"))) \
                    or "the same resource"
                target = target.rstrip("/").rsplit("/", 1)[-1]
                out.append(Finding(
                    f"diagnostic setting {a.name!r} sends {', '.join(c.removeprefix('metric:') for c in shared)} "
                    f"of {target!r} to the same destination as {b.name!r}; Azure rejects the second (Conflict: "
                    "data sink already used). Keep one setting per resource and destination: remove one of them "
                    "or the overlapping categories.", a))
    return out


def _scope(r: StackResource, name_key: str) -> tuple[str, ...] | None:
    """The scope a name must be unique in: the type and every other parent-name input (None: unnamed)."""
    if r.type in GLOBAL_NAMES:
        return (r.type,)
    if r.type.startswith("kubernetes:"):
        if r.type.startswith("kubernetes:helm.sh/"):
            return (r.type, str(get(r.props, "namespace") or "default"))
        group_kind = r.type.split(":", 1)[1].split("/")[0] + ":" + r.type.rsplit(":", 1)[-1]
        return (group_kind, str(get(r.props, "metadata.namespace") or ""))
    if not r.type.startswith("azure-native:"):
        return None
    parents = tuple(_parent(r, k, v) for k, v in sorted(r.props.items())
                    if k != name_key and (k.endswith("Name") or k in {"resourceUri", "scope"})
                    and (known(v) or _unknown(v)))
    return (r.type, *parents)


def _unknown(value: object) -> bool:
    return isinstance(value, Unknown) or (isinstance(value, str) and UNKNOWN in value)


def _parent(r: StackResource, key: str, value: object) -> str:
    """One parent-name input as a scope part: its value, or (unknown at a first preview, because the parent
    is created in this stack) the resources it comes from; an unknown from nowhere in the stack is read, so
    the rule reports it as "cannot verify" rather than calling two unknown parents one scope."""
    text = known(value)
    if text:
        return f"{key}={text}"
    deps = deps_of(r, key)
    if deps:
        return f"{key}=urn:{','.join(sorted(deps))}"
    return f"{key}={value}#{r.urn}"  # str() of an Unknown records the read


def _name(r: StackResource) -> tuple[str, str] | None:
    """(input key, value) of the name ``r`` is created under, when the program set one."""
    if r.type in GLOBAL_NAMES:
        key = GLOBAL_NAMES[r.type]
        value = known(get(r.props, key))
        return (key, value.lower()) if value else None
    if r.type.startswith("kubernetes:helm.sh/"):
        value = known(get(r.props, "name"))
        return ("name", value) if value else None
    if r.type.startswith("kubernetes:"):
        value = known(get(r.props, "metadata.name"))
        return ("metadata.name", value) if value else None
    kind = r.type.rsplit(":", 1)[-1]
    lower = kind[0].lower() + kind[1:]
    for key in (f"{lower}Name", f"{lower}ResourceName", "name"):
        value = known(get(r.props, key))
        if value:
            return key, value
    return None


def unique_names(resources: Sequence[StackResource], cfg: Mapping[str, Any]) -> list[Finding]:
    """Names are unique per scope (resource group and parent, namespace, or all of Azure for DNS names)."""
    seen: dict[tuple[str, ...], StackResource] = {}
    out = []
    for r in sorted(resources, key=lambda r: r.name, reverse=True):  # report the first by name
        named = _name(r)
        scope = _scope(r, named[0]) if named else None
        if named is None or scope is None:
            continue
        key = (*scope, named[1])
        first = seen.setdefault(key, r)
        if first is not r:
            where = "in all of Azure" if r.type in GLOBAL_NAMES else "in the same scope"
            out.append(Finding(f"{named[0]}: found {named[1]!r}, which {first.name!r} already uses {where}; the "
                               "second create fails or overwrites the first. Give one of them another name.", r))
    return out
