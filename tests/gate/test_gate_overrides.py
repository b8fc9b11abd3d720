"""Issue 12.5 (trust too wide), 12.6 (pod security by override), 12.7 (RBAC), over the real pack, prod levels.

Each bypass the attack found, and variants: ``--trust_remote_code``, ``sh -c "vllm serve ..."``, ``--config``
from a ConfigMap, ``VLLM_SERVER_DEV_MODE`` through ``envFrom``; a container's ``Unconfined`` seccomp or
``runAsNonRoot: false`` under a compliant pod; hostPath through a PersistentVolume; the workload-identity
label keeping the token; ``escalate``/``bind``/``impersonate``, cluster-admin to system groups and
service-account users, cluster-wide secret reads. Compliant twins: the ``ok-*`` fixtures of the matrix.
"""

from __future__ import annotations

from typing import Any

import pulumi_kubernetes as k8s
import pytest

from slmctl.gate import GateResult, run_gate
from slmctl.recorder import record

VLLM = "vllm/vllm-openai:v0.11.0@sha256:" + "a" * 64
APP = "mcr.microsoft.com/azurelinux/base/core:3.0@sha256:" + "a" * 64
POD_OK = {"securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
          "automountServiceAccountToken": False, "serviceAccountName": "app"}


def _deploy(name: str, container: dict[str, Any], pod: dict[str, Any] | None = None,
            labels: dict[str, str] | None = None) -> None:
    k8s.apps.v1.Deployment(name, metadata={"name": name, "namespace": "inference"}, spec={
        "selector": {"matchLabels": {"app": name}}, "template": {
            "metadata": {"labels": {"app": name, **(labels or {})}},
            "spec": {**POD_OK, **(pod or {}), "containers": [{"name": "c", "image": APP, **container}]}}})


def _role(name: str, rules: list[dict[str, Any]], *, cluster: bool = True) -> None:
    cls = k8s.rbac.v1.ClusterRole if cluster else k8s.rbac.v1.Role
    cls(name, metadata={"name": name, **({} if cluster else {"namespace": "inference"})}, rules=rules)


def _binding(name: str, role: str, subject: dict[str, str]) -> None:
    k8s.rbac.v1.ClusterRoleBinding(name, metadata={"name": name}, subjects=[subject], role_ref={
        "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role})


def _program() -> None:
    model = ["--model", "microsoft/Phi-4-mini-instruct", "--max-model-len", "8192"]
    _deploy("trc-underscore", {"image": VLLM, "args": [*model, "--trust_remote_code"]})
    _deploy("trc-equals", {"image": VLLM, "args": [*model, "--trust-remote-code=true"]})
    _deploy("trc-shell", {"image": VLLM, "command": ["sh", "-c"],
                          "args": ["exec vllm serve microsoft/Phi-4-mini-instruct --trust-remote-code"]})
    _deploy("trc-config", {"image": VLLM, "args": [*model, "--config", "/etc/vllm/config.yaml"]})
    _deploy("dev-mode-envfrom", {"image": VLLM, "args": model, "envFrom": [{"configMapRef": {"name": "vllm-env"}}]})
    _deploy("seccomp-override", {"securityContext": {"seccompProfile": {"type": "Unconfined"}}})
    _deploy("nonroot-override", {"securityContext": {"runAsNonRoot": False}})
    _deploy("wi-keeps-token", {}, pod={"automountServiceAccountToken": True},
            labels={"azure.workload.identity/use": "true"})
    k8s.core.v1.PersistentVolume("pv-hostpath", metadata={"name": "host"}, spec={
        "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/var/lib"}})
    for verb in ("escalate", "bind", "impersonate"):
        _role(f"role-{verb}", [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"],
                                "verbs": ["get", verb]}])
    _role("role-secrets", [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}])
    _role("role-secrets-namespaced", [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}], cluster=False)
    _binding("bind-sa-group", "cluster-admin", {"kind": "Group", "name": "system:serviceaccounts:inference",
                                                "apiGroup": "rbac.authorization.k8s.io"})
    _binding("bind-sa-user", "cluster-admin", {"kind": "User", "name": "system:serviceaccount:inference:app",
                                               "apiGroup": "rbac.authorization.k8s.io"})
    _binding("bind-authenticated", "cluster-admin", {"kind": "Group", "name": "system:authenticated",
                                                     "apiGroup": "rbac.authorization.k8s.io"})
    _binding("bind-admins-ok", "cluster-admin", {"kind": "Group", "name": "5b1a0d2e-0000-4000-8000-000000000001",
                                                 "apiGroup": "rbac.authorization.k8s.io"})


@pytest.fixture(scope="module")
def result() -> GateResult:
    return run_gate(record(_program, stack="prod"))


def _found(result: GateResult, resource: str, policy: str) -> list[str]:
    return [v.detail.split("): ", 1)[1] for v in result.violations if v.resource == resource and v.policy == policy
            and v.level == "mandatory"]


@pytest.mark.parametrize(("resource", "policy", "start"), [
    ("trc-underscore", "slm-serving-trust-remote-code", "spec.template.spec.containers[0].args: found --trust-remote-code"),
    ("trc-equals", "slm-serving-trust-remote-code", "spec.template.spec.containers[0].args: found --trust-remote-code"),
    ("trc-shell", "slm-serving-trust-remote-code", "spec.template.spec.containers[0].args: found --trust-remote-code "
                                                   "for 'microsoft/Phi-4-mini-instruct'"),
    ("trc-config", "slm-serving-trust-remote-code", "spec.template.spec.containers[0].args: found --config "
                                                    "'/etc/vllm/config.yaml'; options in a file"),
    ("dev-mode-envfrom", "slm-serving-dev-mode", "spec.template.spec.containers[0].envFrom: found configMap/vllm-env"),
    ("seccomp-override", "slm-k8s-seccomp", "spec.template.spec.containers[0].securityContext.seccompProfile.type: "
                                            "found 'Unconfined'"),
    ("nonroot-override", "slm-k8s-run-as-non-root", "spec.template.spec.containers[0].securityContext.runAsNonRoot: "
                                                    "found false, which overrides the pod"),
    ("wi-keeps-token", "slm-k8s-service-account", "spec.template.spec.automountServiceAccountToken: found true"),
    ("pv-hostpath", "slm-k8s-volume-types", "spec.hostPath: found a hostPath PersistentVolume"),
    ("role-escalate", "slm-k8s-rbac-least-privilege", "rules[0].verbs: found ['escalate']"),
    ("role-bind", "slm-k8s-rbac-least-privilege", "rules[0].verbs: found ['bind']"),
    ("role-impersonate", "slm-k8s-rbac-least-privilege", "rules[0].verbs: found ['impersonate']"),
    ("role-secrets", "slm-k8s-rbac-least-privilege", "rules[0]: found cluster-wide read of secrets"),
    ("bind-sa-group", "slm-k8s-rbac-least-privilege", "roleRef.name: found 'cluster-admin' bound to a service account"),
    ("bind-sa-user", "slm-k8s-rbac-least-privilege", "roleRef.name: found 'cluster-admin' bound to a service account"),
    ("bind-authenticated", "slm-k8s-rbac-least-privilege", "roleRef.name: found 'cluster-admin' bound"),
])
def test_the_bypass_is_reported(result: GateResult, resource: str, policy: str, start: str) -> None:
    found = _found(result, resource, policy)
    assert any(m.startswith(start) for m in found), found


@pytest.mark.parametrize(("resource", "policy"), [("role-secrets-namespaced", "slm-k8s-rbac-least-privilege"),
                                                  ("bind-admins-ok", "slm-k8s-rbac-least-privilege")])
def test_the_compliant_twin_is_silent(result: GateResult, resource: str, policy: str) -> None:
    assert _found(result, resource, policy) == []


def test_a_fully_compliant_override_free_pod_has_no_security_context_findings(result: GateResult) -> None:
    policies = {"slm-k8s-seccomp", "slm-k8s-run-as-non-root", "slm-k8s-service-account"}
    assert not [v for v in result.violations if v.resource == "trc-underscore" and v.policy in policies]
