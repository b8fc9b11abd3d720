"""Issue 12.2: values unknown at preview fail closed in staging/prod, and blind only their own check.

The engine sends an unknown as a sentinel string; the SDK's proxy raised on first access and the
policy became an advisory "can't run" (exit 0), so one unknown env value switched off the secret and
dev-mode checks of the whole container. The pack's adapter now reads around unknowns and reports each
one a rule needed as "cannot verify <path>" at the policy's own level, in staging and prod.
"""

from __future__ import annotations

from typing import Any

import pulumi_kubernetes as k8s
import pytest
from pulumi_azure_native import storage

from policies.pack import SPECS, run_resource_rule
from slmctl.gate import GateResult, run_gate
from slmctl.recorder import UNKNOWN, record

DIGEST = "@sha256:" + "a" * 64
FAKE = "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01"
SPEC = {s.name: s for s in SPECS}


def _deployment(name: str, *, env: list[dict[str, Any]] | None = None, security: dict[str, Any] | None = None,
                image: str = "mcr.microsoft.com/azurelinux/base/core:3.0" + DIGEST) -> None:
    container: dict[str, Any] = {"name": "app", "image": image, "env": env or [],
                                 "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True,
                                                     "capabilities": {"drop": ["ALL"]}, **(security or {})}}
    k8s.apps.v1.Deployment(name, metadata={"name": name, "namespace": "inference"}, spec={
        "selector": {"matchLabels": {"app": name}}, "template": {"metadata": {"labels": {"app": name}},
                                                                  "spec": {"containers": [container]}}})


def _program() -> None:
    _deployment("unknown-neighbour", env=[{"name": "REGION", "value": UNKNOWN}, {"name": "HF_TOKEN", "value": FAKE},
                                          {"name": "VLLM_SERVER_DEV_MODE", "value": "1"}])
    _deployment("unknown-privileged", security={"privileged": UNKNOWN})
    _deployment("unknown-image", image=UNKNOWN)
    storage.StorageAccount("unknownblob", account_name="unknownblob", resource_group_name="rg", kind="StorageV2",
                           sku={"name": "Standard_ZRS"}, allow_blob_public_access=UNKNOWN,
                           enable_https_traffic_only=True, minimum_tls_version="TLS1_2")


@pytest.fixture(scope="module", params=["prod", "staging"])
def strict(request: pytest.FixtureRequest) -> GateResult:
    return run_gate(record(_program, stack=request.param))


@pytest.fixture(scope="module")
def dev() -> GateResult:
    return run_gate(record(_program, stack="dev"))


def _on(result: GateResult, resource: str, policy: str) -> list[str]:
    return [v.detail.split("): ", 1)[1] for v in result.violations if v.resource == resource and v.policy == policy]


def test_an_unknown_env_value_does_not_blind_its_neighbours(strict: GateResult) -> None:
    secrets = _on(strict, "unknown-neighbour", "slm-k8s-no-secrets-in-env")
    assert any("env[1].value: found a literal value for 'HF_TOKEN'" in m for m in secrets), secrets
    assert _on(strict, "unknown-neighbour", "slm-serving-dev-mode")


def test_the_unknown_value_itself_is_a_mandatory_cannot_verify(strict: GateResult) -> None:
    found = [v for v in strict.violations if v.resource == "unknown-neighbour"
             and v.policy == "slm-k8s-no-secrets-in-env" and "cannot verify" in v.detail]
    assert [v.level for v in found] == ["mandatory"]
    assert "cannot verify spec.template.spec.containers[0].env[0].value: its value is unknown at preview" in \
        found[0].detail
    assert strict.exit_code == 1


@pytest.mark.parametrize(("resource", "policy", "path"), [
    ("unknown-privileged", "slm-k8s-pss-baseline", "spec.template.spec.containers[0].securityContext.privileged"),
    ("unknown-image", "slm-k8s-image-provenance", "spec.template.spec.containers[0].image"),
    ("unknown-image", "slm-serving-no-foundry-local-container", "spec.template.spec.containers[0].image"),
    ("unknownblob", "slm-storage-no-public-blob", "allowBlobPublicAccess"),
])
def test_an_unknown_security_property_fails_closed(strict: GateResult, resource: str, policy: str,
                                                   path: str) -> None:
    assert f"cannot verify {path}: its value is unknown at preview (an output of another resource) and this " \
           "policy fails closed here; make it known at preview (derive it from settings), or exempt the " \
           "resource with a written reason." in _on(strict, resource, policy)
    assert {v.level for v in strict.violations if v.resource == resource and v.policy == policy} == {
        SPEC[policy].level(strict.environment)}


def test_no_advisory_cant_run_remains(strict: GateResult, dev: GateResult) -> None:
    for result in (strict, dev):
        assert not [v for v in result.violations if "can't run policy" in v.message]


def test_dev_does_not_fail_closed_on_unknowns(dev: GateResult) -> None:
    assert not [v for v in dev.violations if "cannot verify" in v.detail]
    assert _on(dev, "unknown-neighbour", "slm-k8s-no-secrets-in-env")  # the known token is still reported


def test_an_unknown_no_rule_reads_is_not_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULUMI_STACK", "prod")
    props = {"metadata": {"name": "x", "namespace": "inference", "uid": UNKNOWN},
             "spec": {"type": "ClusterIP", "clusterIP": UNKNOWN}}
    assert run_resource_rule(SPEC["slm-k8s-service-exposure"], "kubernetes:core/v1:Service", props, {}) == []
    props["spec"]["type"] = UNKNOWN
    assert run_resource_rule(SPEC["slm-k8s-service-exposure"], "kubernetes:core/v1:Service", props, {}) == [
        "cannot verify spec.type: its value is unknown at preview (an output of another resource) and this policy "
        "fails closed here; make it known at preview (derive it from settings), or exempt the resource with a "
        "written reason."]


@pytest.mark.parametrize("policy", ["slm-k8s-image-provenance", "slm-k8s-image-digest"])
def test_an_unknown_image_is_cannot_verify_not_an_empty_reference(strict: GateResult, policy: str) -> None:
    """A first preview's image digest of an image the stack builds is unknown, not '' (which misled: "set a
    full image reference")."""
    found = _on(strict, "unknown-image", policy)
    assert found
    assert all("cannot verify spec.template.spec.containers[0].image" in m for m in found), found


def test_an_unknown_defender_workspace_is_cannot_verify_not_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """At a first preview the workspace id is an output of the workspace being created: unknown, not unset."""
    monkeypatch.setenv("PULUMI_STACK", "prod")
    props = {"securityProfile": {"defender": {"securityMonitoring": {"enabled": True},
                                              "logAnalyticsWorkspaceResourceId": UNKNOWN}}}
    found = run_resource_rule(SPEC["slm-aks-defender"], "azure-native:containerservice:ManagedCluster", props, {})
    assert found == [
        "cannot verify securityProfile.defender.logAnalyticsWorkspaceResourceId: its value is unknown at preview (an "
        "output of another resource) and this policy fails closed here; make it known at preview (derive it from "
        "settings), or exempt the resource with a written reason."]
