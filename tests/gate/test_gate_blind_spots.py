"""Issue 12.4: no blind spots by type, over the real analyzer protocol under prod levels.

Every pod spec is checked wherever it is embedded (``*List`` items, ``*Patch`` kinds,
ReplicationController, PodTemplate, CRD workloads such as KServe InferenceService and Argo Rollout);
versioned azure-native tokens are read like the default token; every type no policy reads is a
mandatory finding in prod; provider-rendered components (Helm v4 Chart, yaml/v2) are flagged offline.
The compliant twins (a compliant Rollout and InferenceService) are in ``test_gate_matrix.py`` (``ok-*``).
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest

from slmctl.gate import GateResult, run_gate
from slmctl.recorder import record

FAKE = "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01"
IMAGE = "mcr.microsoft.com/azurelinux/base/core:3.0@sha256:" + "a" * 64


def _pod(**override: Any) -> dict[str, Any]:
    container = {"name": "app", "image": IMAGE, **override.pop("container", {})}
    return {"containers": [container], **override}


def _template(**override: Any) -> dict[str, Any]:
    return {"metadata": {"labels": {"app": "x"}}, "spec": _pod(**override)}


def _program() -> None:
    meta = {"namespace": "inference"}
    k8s.apps.v1.DeploymentPatch("patch-privileged", metadata={"name": "coredns", **meta}, spec={
        "template": {"spec": {"containers": [{"name": "c", "securityContext": {"privileged": True}}]}}})
    k8s.apps.v1.DeploymentList("list-hostpath", items=[
        {"metadata": {"name": "ok", **meta}, "spec": {"selector": {}, "template": _template()}},
        {"metadata": {"name": "bad", **meta}, "spec": {"selector": {}, "template": _template(
            volumes=[{"name": "h", "hostPath": {"path": "/"}}])}}])
    k8s.core.v1.ReplicationController("rc-host-network", metadata={"name": "rc", **meta},
                                      spec={"template": _template(hostNetwork=True)})
    k8s.core.v1.PodTemplate("podtemplate-secret", metadata={"name": "pt", **meta}, template=_template(
        container={"env": [{"name": "HF_TOKEN", "value": FAKE}]}))
    k8s.apiextensions.CustomResource(
        "rollout-root", api_version="argoproj.io/v1alpha1", kind="Rollout", metadata={"name": "r", **meta},
        spec={"template": _template(container={"securityContext": {"runAsUser": 0}})})
    k8s.apiextensions.CustomResource(
        "kserve-privileged", api_version="serving.kserve.io/v1beta1", kind="InferenceService",
        metadata={"name": "isvc", **meta}, spec={"predictor": _pod(container={"securityContext": {"privileged": True}})})
    k8s.apiextensions.CustomResource(
        "widget-with-pod", api_version="example.com/v1", kind="Widget", metadata={"name": "w", **meta},
        spec={"deep": {"runner": {"template": _template(hostPID=True)}}})
    pulumi.CustomResource("azure-native:storage/v20230101:StorageAccount", "versioned-public-blob", {
        "resourceGroupName": "rg", "kind": "StorageV2", "sku": {"name": "Standard_ZRS"},
        "allowBlobPublicAccess": True, "enableHttpsTrafficOnly": True, "minimumTlsVersion": "TLS1_2"})
    pulumi.CustomResource("azure:storage/account:Account", "classic-storage", {
        "resourceGroupName": "rg", "accountTier": "Standard", "allowNestedItemsToBePublic": True})
    k8s.helm.v4.Chart("helm-v4", chart="oci://registry-1.docker.io/bitnamicharts/redis", version="20.0.0",
                      namespace="cache")
    k8s.yaml.v2.ConfigFile("yaml-v2", file="manifests/extra.yaml")


@pytest.fixture(scope="module")
def result() -> GateResult:
    return run_gate(record(_program, stack="prod"))


def _details(result: GateResult, resource: str, policy: str) -> list[str]:
    return [v.detail.split("): ", 1)[1] for v in result.violations if v.resource == resource and v.policy == policy
            and v.level == "mandatory"]


@pytest.mark.parametrize(("resource", "policy", "message"), [
    ("patch-privileged", "slm-k8s-pss-baseline",
     "spec.template.spec.containers[0].securityContext.privileged: found true"),
    ("list-hostpath", "slm-k8s-volume-types", "items[1].spec.template.spec.volumes[0]: found hostPath volume 'h'"),
    ("rc-host-network", "slm-k8s-pss-baseline", "spec.template.spec.hostNetwork: found true"),
    ("podtemplate-secret", "slm-k8s-no-secrets-in-env",
     "template.spec.containers[0].env[0].value: found a literal value for 'HF_TOKEN'"),
    ("rollout-root", "slm-k8s-run-as-non-root", "spec.template.spec.containers[0].securityContext.runAsUser: found 0"),
    ("kserve-privileged", "slm-k8s-pss-baseline", "spec.predictor.containers[0].securityContext.privileged: found true"),
    ("widget-with-pod", "slm-k8s-pss-baseline", "spec.deep.runner.template.spec.hostPID: found true"),
    ("versioned-public-blob", "slm-storage-no-public-blob", "allowBlobPublicAccess: found true"),
])
def test_an_embedded_or_versioned_object_is_checked(result: GateResult, resource: str, policy: str,
                                                    message: str) -> None:
    found = _details(result, resource, policy)
    assert any(m.startswith(message) for m in found), found


def test_the_good_item_of_a_list_is_not_blamed(result: GateResult) -> None:
    assert not [m for m in _details(result, "list-hostpath", "slm-k8s-volume-types") if "items[0]" in m]


@pytest.mark.parametrize(("resource", "type_"), [("classic-storage", "azure:storage/account:Account"),
                                                 ("widget-with-pod", "kubernetes:example.com/v1:Widget")])
def test_a_type_no_policy_reads_is_mandatory_in_prod(result: GateResult, resource: str, type_: str) -> None:
    (message,) = _details(result, resource, "slm-pack-known-types")
    assert message.startswith(f"type: found {type_!r} for this resource, which no policy of this pack reads")


def test_classic_azure_points_at_azure_native(result: GateResult) -> None:
    (message,) = _details(result, "classic-storage", "slm-pack-known-types")
    assert "pulumi-azure classic: use the azure-native equivalent" in message


@pytest.mark.parametrize(("resource", "kind"), [("helm-v4", "Chart"), ("yaml-v2", "ConfigFile")])
def test_provider_rendered_components_are_flagged_offline(result: GateResult, resource: str, kind: str) -> None:
    (message,) = _details(result, resource, "slm-pack-opaque-components")
    assert message.startswith(f"type: found {kind} '{resource}' with no rendered objects in this stack")
    assert result.exit_code == 1


def test_known_kinds_are_not_reported_as_unknown(result: GateResult) -> None:
    unknown = {v.resource for v in result.violations if v.policy == "slm-pack-known-types"}
    assert unknown == {"classic-storage", "widget-with-pod"}


def _uncovered_rollout() -> None:
    k8s.apiextensions.CustomResource(
        "rollout-uncovered", api_version="argoproj.io/v1alpha1", kind="Rollout",
        metadata={"name": "r", "namespace": "uncovered"}, spec={"template": _template()})


def test_stack_policies_see_embedded_workloads_too() -> None:
    """A Rollout's pods need a NetworkPolicy like a Deployment's (stack rules get the same views)."""
    result = run_gate(record(_uncovered_rollout, stack="prod"))
    assert [v.resource for v in result.mandatory if v.policy == "slm-k8s-network-policy-coverage" and v.resource] \
        == ["rollout-uncovered"]
