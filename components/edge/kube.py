"""Kubernetes objects for one edge fleet (k3s / Arc-enabled cluster), as plain wire-form dicts (pure).

One fleet = one cluster reached through its own kubeconfig. The engine runs as a DaemonSet (one
server per device node) selected by the fleet's device names (``kubernetes.io/hostname``) and/or
its selector labels, so the object count is the same for 1 or 1,000 devices.

Hardening matches the cluster workloads (PSS restricted, read-only root, no service-account token,
resources requests == limits inside the device envelope, default-deny NetworkPolicy). The one
documented deviation: ``imagePullPolicy: IfNotPresent`` with digest-pinned images, so a device keeps
serving offline (Checkov CKV_K8S_15 wants ``Always``; suppressed with ``checkov.io/skip1``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from components._security import namespace_labels
from components.engines.spec import ContainerSpec, HttpProbe, SecretEnv

EDGE_TIER_LABEL: Final = {"slm.io/tier": "edge"}
CKV_K8S_15_SKIP: Final = (
    "CKV_K8S_15=Edge devices must keep serving offline: images are pinned by sha256 digest and pulled "
    "IfNotPresent (policy EDGE-01)"
)
ANNOTATION_MODEL_ID: Final = "slm.io/model-id"
ANNOTATION_MODEL_VERSION: Final = "slm.io/model-version"
ANNOTATION_MODEL_SHA256: Final = "slm.io/model-sha256"


@dataclass(frozen=True, kw_only=True)
class EdgeObjects:
    """The wire-form ``metadata`` / ``spec`` of each object, keyed by kind."""

    namespace: dict[str, Any]
    service_account: dict[str, Any]
    daemon_set: dict[str, Any]
    service: dict[str, Any]
    deny_all: dict[str, Any]
    allow_serving: dict[str, Any]
    allow_egress: dict[str, Any] | None = None
    """With ``egress_cidrs``: DNS and HTTPS to the registry endpoint only (default-deny covers egress)."""
    auth_proxy_config: dict[str, Any] | None = None
    """The API-key gate's ConfigMap (its nginx template; no key in it) when the engine has no key (Ollama)."""


DNS_PORTS: Final = ({"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"})


def _probe(p: HttpProbe, port: str | int = "http") -> dict[str, Any]:
    return {"httpGet": {"path": p.path, "port": port}, "periodSeconds": p.period_seconds,
            "timeoutSeconds": p.timeout_seconds, "failureThreshold": p.failure_threshold,
            "successThreshold": p.success_threshold, "initialDelaySeconds": p.initial_delay_seconds}


def _security_context(uid: int) -> dict[str, Any]:
    """Wire form of ``components._security.container_security(uid)`` (kept equal by a test)."""
    return {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid,
            "allowPrivilegeEscalation": False, "privileged": False, "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}


def _pod_security(uid: int) -> dict[str, Any]:
    """Wire form of ``components._security.pod_security(uid)`` (kept equal by a test)."""
    return {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid, "fsGroup": uid,
            "fsGroupChangePolicy": "OnRootMismatch", "seccompProfile": {"type": "RuntimeDefault"}}


def _env(env: Mapping[str, str], secret_env: tuple[SecretEnv, ...] = ()) -> list[dict[str, Any]]:
    plain: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in sorted(env.items())]
    return plain + [{"name": s.name, "valueFrom": {"secretKeyRef": {"name": s.secret_name, "key": s.key}}}
                    for s in secret_env]


def fleet_objects(
    *,
    fleet_name: str,
    namespace: str,
    spec: ContainerSpec,
    architecture: str,
    devices: tuple[str, ...],
    node_selector: Mapping[str, str],
    model_id: str,
    model_version: str,
    model_sha256: str | None,
    storage_class: str | None = None,
    image_pull_secret: str | None = None,
    egress_cidrs: tuple[str, ...] | None = None,
) -> EdgeObjects:
    """Everything the fleet's cluster runs, with labels and annotations that carry intent.

    Args:
        fleet_name: the fleet's key (object names, labels).
        namespace: the namespace the workload lives in.
        spec: the engine container (from ``components.edge.engines.edge_container``).
        architecture: ``amd64`` / ``arm64`` (nodeSelector ``kubernetes.io/arch``).
        devices: node names the server runs on; empty: every node matching ``node_selector``.
        node_selector: node labels the devices carry.
        model_id: catalogue id (annotation).
        model_version: immutable artifact version (annotation).
        model_sha256: artifact digest (annotation), when pinned.
        storage_class: the model store's StorageClass. Default: the cluster default (k3s local-path).
        image_pull_secret: a ``kubernetes.io/dockerconfigjson`` Secret in ``namespace`` (the private
            registry's pull-only token). Default: none (a registry the nodes can pull from anonymously).
        egress_cidrs: the registry endpoint's addresses as the site reaches them. Given (the model
            comes from the registry), the namespace's default-deny also covers egress and the pods may
            reach only cluster DNS and these CIDRs on 443; no internet. Default: egress unrestricted.
    """
    app = f"slm-{fleet_name}"
    labels = {"app.kubernetes.io/name": app, "app.kubernetes.io/component": "inference",
              "app.kubernetes.io/managed-by": "pulumi", "slm.io/fleet": fleet_name, **EDGE_TIER_LABEL}
    selector = {"app.kubernetes.io/name": app, "slm.io/fleet": fleet_name}
    model_annotations = {ANNOTATION_MODEL_ID: model_id, ANNOTATION_MODEL_VERSION: model_version}
    pod_annotations = dict(model_annotations)
    if spec.metrics_path is not None:
        # The fleet's own cluster (k3s / Arc) scrapes by annotation: no ServiceMonitor CRD is assumed there.
        pod_annotations |= {"prometheus.io/scrape": "true", "prometheus.io/port": str(spec.port),
                            "prometheus.io/path": spec.metrics_path}
    if model_sha256 is not None:
        model_annotations[ANNOTATION_MODEL_SHA256] = model_sha256
    annotations = {**model_annotations, "checkov.io/skip1": CKV_K8S_15_SKIP}
    if spec.metrics_path is None:
        annotations["slm.io/metrics"] = "none: the engine exposes no /metrics (ollama#3144, D4)"
    quantities = spec.resources.as_quantities()
    mounts = [{"name": v.name, "mountPath": v.mount_path} for v in (*spec.scratch_volumes, *spec.claim_volumes)]
    mount_paths = {m["name"]: m["mountPath"] for m in mounts}
    init_containers = [{
        "name": step.name, "image": step.image, "imagePullPolicy": "IfNotPresent",
        "command": list(step.command), "args": list(step.args), "env": _env(step.env, step.secret_env),
        "volumeMounts": [{"name": n, "mountPath": mount_paths[n]} for n in step.mounts],
        "resources": {"requests": quantities, "limits": quantities},
        "securityContext": _security_context(spec.run_as_user),
    } for step in spec.init_steps]
    gate = spec.auth_proxy
    # Gated (Ollama): the engine listens on loopback, declares no port, and is probed through the gate (by
    # number: a named port resolves among the probed container's own ports).
    probe_port: str | int = spec.port if gate is not None else "http"
    container: dict[str, Any] = {
        "name": "server", "image": spec.image, "imagePullPolicy": "IfNotPresent",
        "args": list(spec.args), "env": _env(spec.env, spec.secret_env),
        "ports": [{"name": "http", "containerPort": spec.port, "protocol": "TCP"}],
        "resources": {"requests": quantities, "limits": quantities},
        "startupProbe": _probe(spec.startup_probe, probe_port), "readinessProbe": _probe(spec.readiness_probe, probe_port),
        "livenessProbe": _probe(spec.liveness_probe, probe_port), "volumeMounts": mounts,
        "securityContext": _security_context(spec.run_as_user),
    }
    if gate is not None:
        del container["ports"]
    if spec.command:
        container["command"] = list(spec.command)
    containers = [container]
    config_name = f"{app}-auth-proxy"
    if gate is not None:
        gate_quantities = gate.resources.as_quantities()
        containers.append({
            "name": "auth-proxy", "image": gate.image, "imagePullPolicy": "IfNotPresent",
            "command": list(gate.command), "env": _env({}, (gate.key,)),
            "ports": [{"name": "http", "containerPort": gate.port, "protocol": "TCP"}],
            "resources": {"requests": gate_quantities, "limits": gate_quantities},
            "startupProbe": _probe(gate.probe), "readinessProbe": _probe(gate.probe),
            "livenessProbe": _probe(gate.liveness_probe),
            "volumeMounts": [{"name": "proxy-config", "mountPath": gate.template_dir, "readOnly": True},
                             {"name": gate.run_volume.name, "mountPath": gate.run_volume.mount_path}],
            "securityContext": _security_context(spec.run_as_user),
        })
    volumes: list[dict[str, Any]] = [
        {"name": v.name, "emptyDir": {"sizeLimit": f"{v.size_limit_gib:g}Gi",
                                      **({"medium": "Memory"} if v.in_memory else {})}}
        for v in spec.scratch_volumes
    ]
    if gate is not None:
        volumes += [{"name": "proxy-config", "configMap": {"name": config_name}},
                    {"name": gate.run_volume.name,
                     "emptyDir": {"medium": "Memory", "sizeLimit": f"{int(gate.run_volume.size_limit_gib * 1024)}Mi"}}]
    for claim in spec.claim_volumes:
        claim_spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"],
                                      "resources": {"requests": {"storage": f"{claim.size_gib}Gi"}}}
        if storage_class or claim.storage_class:
            claim_spec["storageClassName"] = storage_class or claim.storage_class
        volumes.append({"name": claim.name, "ephemeral": {"volumeClaimTemplate": {
            "metadata": {"labels": labels}, "spec": claim_spec}}})
    affinity: dict[str, Any] = {}
    if devices:
        affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In",
                                   "values": sorted(devices)}]}]}}}
    pod_spec: dict[str, Any] = {
        "serviceAccountName": app, "automountServiceAccountToken": False,
        "enableServiceLinks": False, "hostNetwork": False, "hostPID": False, "hostIPC": False,
        "securityContext": _pod_security(spec.run_as_user),
        "nodeSelector": {"kubernetes.io/os": "linux", "kubernetes.io/arch": architecture,
                         **dict(sorted(node_selector.items()))},
        "initContainers": init_containers, "containers": containers, "volumes": volumes,
        "terminationGracePeriodSeconds": 30,
    }
    if affinity:
        pod_spec["affinity"] = affinity
    if image_pull_secret is not None:
        pod_spec["imagePullSecrets"] = [{"name": image_pull_secret}]
    meta = {"namespace": namespace, "labels": labels}
    return EdgeObjects(
        namespace={"metadata": {"name": namespace,
                                "labels": namespace_labels("restricted", extra=EDGE_TIER_LABEL)}},
        service_account={"metadata": {"name": app, **meta}, "automountServiceAccountToken": False},
        daemon_set={
            "metadata": {"name": app, **meta, "annotations": annotations},
            "spec": {"selector": {"matchLabels": selector},
                     "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
                     "template": {"metadata": {"labels": labels, "annotations": pod_annotations},
                                  "spec": pod_spec}},
        },
        service={"metadata": {"name": app, **meta},
                 "spec": {"type": "ClusterIP", "selector": selector, "internalTrafficPolicy": "Local",
                          "ports": [{"name": "http", "port": spec.port, "targetPort": "http"}]}},
        deny_all={"metadata": {"name": f"{app}-default-deny", **meta},
                  "spec": {"podSelector": {}, "policyTypes": ["Ingress"] if egress_cidrs is None
                           else ["Ingress", "Egress"]}},
        allow_serving={"metadata": {"name": f"{app}-serving", **meta},
                       "spec": {"podSelector": {"matchLabels": selector}, "policyTypes": ["Ingress"],
                                "ingress": [{"ports": [{"port": spec.port, "protocol": "TCP"}]}]}},
        allow_egress=None if egress_cidrs is None else {
            "metadata": {"name": f"{app}-registry-egress", **meta},
            "spec": {"podSelector": {"matchLabels": selector}, "policyTypes": ["Egress"], "egress": [
                {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}],
                 "ports": [dict(p) for p in DNS_PORTS]},
                {"to": [{"ipBlock": {"cidr": cidr}} for cidr in egress_cidrs],
                 "ports": [{"port": 443, "protocol": "TCP"}]}]}},
        auth_proxy_config=None if gate is None else {
            "metadata": {"name": config_name, **meta}, "data": {gate.template_name: gate.config_template}},
    )
