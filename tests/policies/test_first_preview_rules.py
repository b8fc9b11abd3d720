"""Stack rules at a first preview: a value unknown because the resource it comes from is created in this
stack is judged by that resource (its property dependency); an unknown from outside still cannot be verified.

The resources are what the engine sends a stack's first ``pulumi preview``: ids of new resources are the
unknown sentinel, and ``propertyDependencies`` name the resources they flow from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from policies.pack import SPECS, run_stack_rule
from policies.rules.plan_graph import UNKNOWN
from policies.rules.stack import StackResource

SPEC = {s.name: s for s in SPECS}
VAULT = "azure-native:keyvault:Vault"
WORKSPACE = "azure-native:operationalinsights:Workspace"
STACK_REF = "pulumi:pulumi:StackReference"


def urn(token: str) -> str:
    return f"urn:pulumi:prod::p::{token}"


def res(type_: str, name: str, props: Mapping[str, Any], pdeps: Mapping[str, Sequence[str]] | None = None
        ) -> StackResource:
    deps = {k: tuple(urn(u) for u in v) for k, v in (pdeps or {}).items()}
    return StackResource(type_, name, urn(f"{type_}::{name}"), dict(props),
                         dependencies=tuple(sorted({u for v in deps.values() for u in v})), property_dependencies=deps)


def vault(name: str) -> StackResource:
    return res(VAULT, name, {"vaultName": name, "resourceGroupName": "rg",
                             "properties": {"publicNetworkAccess": "Disabled", "tenantId": "t"}})


def setting(name: str, target: str, *, workspace_from: str = f"{WORKSPACE}::law") -> StackResource:
    return res("azure-native:monitor:DiagnosticSetting", name,
               {"name": name, "resourceUri": UNKNOWN, "workspaceId": UNKNOWN,
                "logs": [{"categoryGroup": "audit", "enabled": True}]},
               {"resourceUri": [f"{VAULT}::{target}"], "workspaceId": [workspace_from]})


def endpoint(name: str, target: str) -> StackResource:
    return res("azure-native:network:PrivateEndpoint", name,
               {"resourceGroupName": "rg", "privateLinkServiceConnections": [
                   {"name": name, "privateLinkServiceId": UNKNOWN, "groupIds": ["vault"]}]},
               {"privateLinkServiceConnections": [f"{VAULT}::{target}"]})


@pytest.fixture(autouse=True)
def prod(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULUMI_STACK", "prod")


def messages(policy: str, resources: list[StackResource]) -> list[str]:
    return [f.message for f in run_stack_rule(SPEC[policy], resources, {})]


def test_settings_on_new_vaults_to_a_new_workspace_pass() -> None:
    stack = [vault("kv-a"), vault("kv-b"), res(WORKSPACE, "law", {"workspaceName": "law"}),
             setting("a-diag", "kv-a"), setting("b-diag", "kv-b")]
    assert messages("slm-ops-diagnostic-settings", stack) == []


def test_a_workspace_id_from_a_stack_reference_cannot_be_verified() -> None:
    stack = [vault("kv-a"), res(STACK_REF, "shared", {"name": "org/shared/prod"}),
             setting("a-diag", "kv-a", workspace_from=f"{STACK_REF}::shared")]
    assert any(m.startswith("cannot verify a-diag.workspaceId") or "cannot verify workspaceId" in m
               for m in messages("slm-ops-diagnostic-settings", stack)), messages("slm-ops-diagnostic-settings", stack)


def test_private_endpoints_of_new_vaults_pass_and_a_missing_one_is_still_found() -> None:
    stack = [vault("kv-a"), vault("kv-b"), endpoint("a-pe", "kv-a"), endpoint("b-pe", "kv-b")]
    assert messages("slm-keyvault-private-endpoint", stack) == []
    found = messages("slm-keyvault-private-endpoint", stack[:3])
    assert [m for m in found if m.startswith("privateEndpoint: found none for 'kv-b'")], found
    assert not [m for m in found if "cannot verify" in m], found


RA = "azure-native:authorization:RoleAssignment"
RG = "azure-native:resources:ResourceGroup"


def grant(scope_from: str) -> StackResource:
    return res(RA, "ra", {"scope": UNKNOWN, "principalId": "p", "roleDefinitionId": "x"}, {"scope": [scope_from]})


def test_a_scope_created_here_covers_only_the_resource_or_group_it_comes_from() -> None:
    from policies.rules.plan_graph import scope_covers
    from policies.rules.wire import tracking_reads, with_unknowns

    kv_a = res(VAULT, "kv-a", {"vaultName": "kv-a", "resourceGroupName": UNKNOWN}, {"resourceGroupName": [f"{RG}::rg"]})
    kv_b = vault("kv-b")
    with tracking_reads() as reads:
        assert scope_covers(grant(f"{VAULT}::kv-a"), kv_a)
        assert not scope_covers(grant(f"{VAULT}::kv-a"), kv_b)
        assert scope_covers(grant(f"{RG}::rg"), kv_a)
        assert not scope_covers(grant(f"{RG}::rg"), kv_b)
    assert reads == set()
    outside = grant(f"{STACK_REF}::shared")
    outside = StackResource(outside.type, outside.name, outside.urn, with_unknowns(outside.props),
                            property_dependencies=outside.property_dependencies)
    with tracking_reads() as reads:
        assert not scope_covers(outside, kv_b)
    assert reads == {"scope"}  # a scope from another stack is read: "cannot verify" in staging/prod
