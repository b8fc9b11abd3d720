"""Kubernetes workload rules (catalogue group D, K8S-01..K8S-16) and GPU scheduling (GPU-04).

Pod specs sit at ``spec.template.spec``, ``spec.jobTemplate.spec.template.spec`` or ``spec``;
"containers" means ``containers``, ``initContainers`` and ``ephemeralContainers``.
"""

# Every rule takes (type, props, config) so the pack can adapt them uniformly; not all use all three.
# ruff: noqa: ARG001

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from fnmatch import fnmatch
from typing import Any, Final

from policies.rules.tokens import HELM_RELEASE, SERVICE
from policies.rules.wire import (
    WORKLOAD_TYPES,
    Container,
    PodSpec,
    Props,
    applies_to,
    get,
    is_inference,
    items,
    mapping,
    metadata_labels,
    namespace_of,
    number,
    parse_image,
    pod_spec,
    show,
)

SAFE_SYSCTLS: Final = frozenset({
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
})
"""The Pod Security Standards Baseline safe sysctls."""
SELINUX_TYPES: Final = frozenset({"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"})
ALLOWED_VOLUMES: Final = frozenset({"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                                    "persistentVolumeClaim", "projected", "secret"})
DEFAULT_REGISTRIES: Final = ("docker.io/vllm", "docker.io/ollama", "docker.io/library/nginx", "ghcr.io/ggml-org",
                             "mcr.microsoft.com", "nvcr.io/nvidia")
"""Public upstreams (``docker.io/library/nginx``: the official image of Ollama's API-key gate); the stack's own ACR (``stackRegistries``, set by the pack) is added, never ``*.azurecr.io``
(any tenant can create a registry under that suffix)."""
STACK_REGISTRIES_KEY: Final = "stackRegistries"
SECRET_WORDS: Final = frozenset({"TOKEN", "PASSWORD", "PASSWD", "PASS", "PWD", "SECRET", "SECRETS", "CREDENTIAL",
                                 "CREDENTIALS", "APIKEY", "SAS", "PAT", "PASSPHRASE"})
"""Words that make a name secret (``HF_TOKEN``, ``DB_PASS``, ``APIKEY``); plurals such as TOKENS count things."""
SECRET_VALUE_RE: Final = re.compile(
    r"(\bhf_[A-Za-z0-9]{20,}|\bsk-[A-Za-z0-9_-]{20,}|-----BEGIN [A-Z ]*PRIVATE KEY-----|AccountKey=|"
    r"\bgh[pousr]_[A-Za-z0-9]{30,}|SharedAccessSignature=|\beyJ[A-Za-z0-9_-]{20,}\.|[?&]sig=[A-Za-z0-9%+/=]{16,})")
"""Token shapes: Hugging Face, OpenAI-style, PEM keys, Azure connection strings and SAS, GitHub, JWTs."""
_ASSIGNMENT_RE: Final = re.compile(r"""^\s*["']?([A-Za-z][\w.-]*)["']?\s*[:=]\s*["']?([^"'\s,}]+)""")
MODEL_SERVER_IMAGES: Final = ("vllm", "ollama", "llama.cpp", "llama-cpp", "onnx", "text-generation-inference")
CORE_GROUP_RE: Final = re.compile(r"^kubernetes:(?:(?P<group>[a-z0-9.-]+)/)?(?P<version>v\d+(?:alpha|beta)\d*):")


def _pod(type_: str, props: Props) -> PodSpec | None:
    return pod_spec(type_, props)


def _ctx(c: Container) -> dict[str, Any]:
    return mapping(c.spec.get("securityContext"))


@applies_to(WORKLOAD_TYPES)
def pss_baseline(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """K8S-01: the Pod Security Standards Baseline profile."""
    pod = _pod(type_, props)
    if pod is None:
        return []
    out = []
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.spec.get(field) is True:
            out.append(f"{pod.path}.{field}: found true; pods must not share the node's namespaces.")
    psc = mapping(pod.spec.get("securityContext"))
    for i, s in enumerate(items(psc.get("sysctls"))):
        name = str(mapping(s).get("name"))
        if name not in SAFE_SYSCTLS:
            out.append(f"{pod.path}.securityContext.sysctls[{i}].name: found {show(name)}; only the PSS safe "
                       "sysctls are allowed.")
    out.extend(_host_process_apparmor_selinux(f"{pod.path}.securityContext", psc))
    for c in pod.containers():
        sc = _ctx(c)
        if sc.get("privileged") is True:
            out.append(f"{c.path}.securityContext.privileged: found true; remove it (GPU access comes from the "
                       "device plugin, not privilege).")
        if sc.get("procMount") not in (None, "Default"):
            out.append(f"{c.path}.securityContext.procMount: found {show(sc.get('procMount'))}; use 'Default'.")
        out.extend(_host_process_apparmor_selinux(f"{c.path}.securityContext", sc))
        for j, port in enumerate(items(c.spec.get("ports"))):
            if number(mapping(port).get("hostPort")):
                out.append(f"{c.path}.ports[{j}].hostPort: found {show(mapping(port).get('hostPort'))}; expose "
                           "the port through a Service instead.")
        for probe in ("livenessProbe", "readinessProbe", "startupProbe", "lifecycle.postStart", "lifecycle.preStop"):
            for handler in ("httpGet", "tcpSocket"):
                if get(c.spec, f"{probe}.{handler}.host"):
                    out.append(f"{c.path}.{probe}.{handler}.host: found a host; probes and hooks target the pod.")
    return out


def _host_process_apparmor_selinux(path: str, sc: Mapping[str, Any]) -> list[str]:
    out = []
    if get(sc, "windowsOptions.hostProcess") is True:
        out.append(f"{path}.windowsOptions.hostProcess: found true; host processes are not allowed.")
    if get(sc, "appArmorProfile.type") == "Unconfined":
        out.append(f"{path}.appArmorProfile.type: found 'Unconfined'; use 'RuntimeDefault'.")
    se = mapping(sc.get("seLinuxOptions"))
    if str(se.get("type") or "") not in SELINUX_TYPES or se.get("user") or se.get("role"):
        out.append(f"{path}.seLinuxOptions: found a custom SELinux type/user/role; leave them unset.")
    return out


@applies_to(WORKLOAD_TYPES)
def no_privilege_escalation(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """K8S-02: ``allowPrivilegeEscalation: false`` set explicitly on every container."""
    pod = _pod(type_, props)
    return [] if pod is None else [
        f"{c.path}.securityContext.allowPrivilegeEscalation: found {show(_ctx(c).get('allowPrivilegeEscalation'))}; "
        "set it to false." for c in pod.containers() if _ctx(c).get("allowPrivilegeEscalation") is not False]


def _effective(pod: PodSpec, c: Container, key: str) -> Any:
    """The container's ``securityContext.<key>``, else the pod's: what the kubelet applies."""
    own = get(_ctx(c), key)
    return own if own is not None else get(pod.spec, f"securityContext.{key}")


@applies_to(WORKLOAD_TYPES)
def run_as_non_root(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """K8S-03: every container's effective ``runAsNonRoot`` is true and no effective ``runAsUser`` is 0."""
    pod = _pod(type_, props)
    if pod is None:
        return []
    out = []
    psc = mapping(pod.spec.get("securityContext"))
    for c in pod.containers():
        own = _ctx(c).get("runAsNonRoot")
        if own is False:
            out.append(f"{c.path}.securityContext.runAsNonRoot: found false, which overrides the pod; remove it or "
                       "set it to true.")
        elif own is not True and psc.get("runAsNonRoot") is not True:
            out.append(f"{c.path}.securityContext.runAsNonRoot: found {show(own)} and the pod does not set it; set "
                       "spec.securityContext.runAsNonRoot to true (use an image with a non-root USER).")
    if number(psc.get("runAsUser")) == 0:
        out.append(f"{pod.path}.securityContext.runAsUser: found 0; do not run as root.")
    out.extend(f"{c.path}.securityContext.runAsUser: found 0; do not run as root." for c in pod.containers()
               if number(_ctx(c).get("runAsUser")) == 0)
    return out


@applies_to(WORKLOAD_TYPES)
def drop_capabilities(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """K8S-04: drop ALL capabilities; add at most NET_BIND_SERVICE."""
    pod = _pod(type_, props)
    if pod is None:
        return []
    out = []
    for c in pod.containers():
        caps = mapping(_ctx(c).get("capabilities"))
        if "ALL" not in [str(x) for x in items(caps.get("drop"))]:
            out.append(f"{c.path}.securityContext.capabilities.drop: found {show(caps.get('drop'))}; drop 'ALL'.")
        extra = [str(x) for x in items(caps.get("add")) if str(x) != "NET_BIND_SERVICE"]
        if extra:
            out.append(f"{c.path}.securityContext.capabilities.add: found {show(extra)}; only NET_BIND_SERVICE "
                       "may be added.")
    return out


@applies_to(WORKLOAD_TYPES)
def seccomp(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """K8S-05: every container's effective seccomp profile is RuntimeDefault or Localhost (a container's
    ``Unconfined`` overrides a RuntimeDefault pod)."""
    pod = _pod(type_, props)
    if pod is None:
        return []
    ok = ("RuntimeDefault", "Localhost")
    pod_type = get(pod.spec, "securityContext.seccompProfile.type")
    return [f"{c.path}.securityContext.seccompProfile.type: found {show(get(_ctx(c), 'seccompProfile.type'))} and "
            f"the pod has {show(pod_type)}; set spec.securityContext.seccompProfile.type to 'RuntimeDefault'."
            for c in pod.containers() if _effective(pod, c, "seccompProfile.type") not in ok]


@applies_to(WORKLOAD_TYPES, "kubernetes:core/v1:PersistentVolume")
def volume_types(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """K8S-06: only the PSS Restricted volume types (hostPath only through an exemption), also through a
    PersistentVolume (a PVC is allowed, so a hostPath PV is the same host mount one step removed)."""
    if type_ == "kubernetes:core/v1:PersistentVolume":
        kinds = [k for k in ("hostPath", "local") if get(props, f"spec.{k}")]
        return [f"spec.{k}: found a {k} PersistentVolume; pods claiming it mount the node's filesystem. Use a CSI "
                "volume (Azure Disk / Files / Blob)." for k in kinds]
    pod = _pod(type_, props)
    if pod is None:
        return []
    out = []
    for i, v in enumerate(items(pod.spec.get("volumes"))):
        kinds = [k for k in mapping(v) if k != "name"]
        bad = [k for k in kinds if k not in ALLOWED_VOLUMES]
        if bad:
            out.append(f"{pod.path}.volumes[{i}]: found {', '.join(bad)} volume {show(mapping(v).get('name'))}; use "
                       "a PVC, emptyDir or CSI volume (hostPath needs a written exemption).")
    return out


@applies_to(WORKLOAD_TYPES)
def read_only_root(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """K8S-06: read-only root filesystem with emptyDir mounts for /tmp, caches and /dev/shm."""
    pod = _pod(type_, props)
    return [] if pod is None else [
        f"{c.path}.securityContext.readOnlyRootFilesystem: found {show(_ctx(c).get('readOnlyRootFilesystem'))}; set "
        "it to true and mount emptyDir volumes at the paths the engine writes (/tmp, caches, /dev/shm)."
        for c in pod.containers() if _ctx(c).get("readOnlyRootFilesystem") is not True]


@applies_to(WORKLOAD_TYPES)
def resources(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """K8S-07: requests and limits for cpu, memory and ephemeral-storage."""
    pod = _pod(type_, props)
    if pod is None:
        return []
    wanted = [str(r) for r in cfg.get("resources", ["cpu", "memory", "ephemeral-storage"])]
    out = []
    for c in pod.containers():
        for kind in ("requests", "limits"):
            have = mapping(get(c.spec, f"resources.{kind}"))
            missing = [r for r in wanted if r not in have]
            if missing:
                out.append(f"{c.path}.resources.{kind}: found no {', '.join(missing)}; set them so the scheduler "
                           "and the kubelet can protect the node.")
    return out


def registry_allowed(image: str, allowed: list[str]) -> bool:
    """Whether ``image`` comes from an allowed registry (``*.azurecr.io``) or repository prefix (``docker.io/vllm``)."""
    ref = parse_image(image)
    if ref is None:
        return False
    for pattern in allowed:
        p = pattern.rstrip("/")
        if "/" not in p and fnmatch(ref.registry, p):
            return True
        if ref.qualified == p or ref.qualified.startswith(p + "/") or fnmatch(ref.qualified, p):
            return True
    return False


@applies_to(WORKLOAD_TYPES)
def image_provenance(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """K8S-08: images from allowed registries with an explicit, non-latest tag or a digest."""
    pod = _pod(type_, props)
    if pod is None:
        return []
    allowed = [*(str(r) for r in cfg.get("allowedRegistries", DEFAULT_REGISTRIES)),
               *(str(r) for r in cfg.get(STACK_REGISTRIES_KEY, []))]
    out = []
    for c in pod.containers():
        if c.image_unknown:  # reported as "cannot verify", not as an empty reference
            continue
        ref = parse_image(c.image)
        if ref is None:
            out.append(f"{c.path}.image: found {show(c.image)}; set a full image reference.")
            continue
        if not registry_allowed(c.image, allowed):
            out.append(f"{c.path}.image: found registry {ref.qualified!r}; pull from {', '.join(allowed)} "
                       "(or add the registry to allowedRegistries).")
        if ref.digest is None and ref.tag in (None, "latest"):
            out.append(f"{c.path}.image: found {show(c.image)} (tag {ref.tag or 'unset'}); pin a version tag "
                       "and preferably a @sha256 digest.")
    return out


@applies_to(WORKLOAD_TYPES)
def image_digest(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """K8S-08: images pinned by ``@sha256:`` digest."""
    pod = _pod(type_, props)
    return [] if pod is None else [
        f"{c.path}.image: found {show(c.image)} without a digest; pin it as 'repo:tag@sha256:<digest>'."
        for c in pod.containers() if not c.image_unknown and "@sha256:" not in c.image]


def _is_model_server(c: Container) -> bool:
    return any(k in c.image.lower() for k in MODEL_SERVER_IMAGES)


@applies_to(WORKLOAD_TYPES)
def probes(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """K8S-09: readiness and liveness probes (not identical), a startupProbe for model servers."""
    pod = _pod(type_, props)
    if pod is None or type_ in ("kubernetes:batch/v1:Job", "kubernetes:batch/v1:CronJob"):
        return []
    out = []
    for c in pod.containers(include_init=False):
        missing = [p for p in ("readinessProbe", "livenessProbe") if not c.spec.get(p)]
        if missing:
            out.append(f"{c.path}: found no {' and no '.join(missing)}; add them so traffic and restarts follow "
                       "the server's health.")
        elif mapping(c.spec.get("readinessProbe")) == mapping(c.spec.get("livenessProbe")):
            out.append(f"{c.path}.livenessProbe: found identical to readinessProbe; a slow model would be killed "
                       "instead of taken out of rotation. Make liveness more tolerant.")
        if (_is_model_server(c) or is_inference(type_, props)) and not c.spec.get("startupProbe"):
            out.append(f"{c.path}.startupProbe: found unset; model servers load weights for minutes, add a "
                       "startupProbe with a generous failureThreshold.")
    return out


@applies_to(WORKLOAD_TYPES)
def service_account(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """K8S-10: a dedicated service account; no token mount unless it uses workload identity."""
    pod = _pod(type_, props)
    if pod is None:
        return []
    out = []
    sa = pod.spec.get("serviceAccountName") or pod.spec.get("serviceAccount")
    if not sa or sa == "default":
        out.append(f"{pod.path}.serviceAccountName: found {show(sa)}; give the workload its own service account.")
    # Workload identity does not need the automounted token (its webhook projects its own), so the
    # azure.workload.identity/use label is no reason to keep it.
    if pod.spec.get("automountServiceAccountToken") is not False:
        out.append(f"{pod.path}.automountServiceAccountToken: found "
                   f"{show(pod.spec.get('automountServiceAccountToken'))}; set it to false (workload identity "
                   "projects its own token; it does not need this one).")
    return out


def rbac_least_privilege(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """K8S-10: no wildcard RBAC, no pods/exec or pods/attach, no cluster-admin for service accounts."""
    kind = type_.rsplit(":", 1)[-1]
    if type_.startswith("kubernetes:rbac.authorization.k8s.io/") and kind in ("Role", "ClusterRole"):
        out = []
        for i, rule in enumerate(items(get(props, "rules"))):
            r = mapping(rule)
            verbs, res = [str(v) for v in items(r.get("verbs"))], [str(v) for v in items(r.get("resources"))]
            if "*" in verbs or "*" in res:
                out.append(f"rules[{i}]: found a '*' verb or resource; list the verbs and resources it needs.")
            risky = [x for x in res if x in ("pods/exec", "pods/attach")]
            if risky:
                out.append(f"rules[{i}].resources: found {show(risky)}; workloads must not exec into pods.")
            escalating = sorted(set(verbs) & ESCALATING_VERBS)
            if escalating:
                out.append(f"rules[{i}].verbs: found {show(escalating)}; these grant more than the role holds "
                           "(privilege escalation). Remove them.")
            names = items(r.get("resourceNames"))
            if kind == "ClusterRole" and "secrets" in res and set(verbs) & {"get", "list", "watch"} and not names:
                out.append(f"rules[{i}]: found cluster-wide read of secrets; grant it with a namespaced Role (and "
                           "resourceNames) instead.")
        return out
    if type_.startswith("kubernetes:rbac.authorization.k8s.io/") and kind in ("RoleBinding", "ClusterRoleBinding") \
            and get(props, "roleRef.name") in ("cluster-admin", "admin", "edit") and any(
                _workload_subject(mapping(s)) for s in items(get(props, "subjects"))):
        return [f"roleRef.name: found {show(get(props, 'roleRef.name'))} bound to a service account or a group of "
                "them; bind a namespaced Role with the verbs it needs."]
    return []


ESCALATING_VERBS: Final = frozenset({"escalate", "bind", "impersonate"})


def _workload_subject(subject: Mapping[str, Any]) -> bool:
    """A ServiceAccount, a ``system:serviceaccount:...`` User, or a ``system:serviceaccounts[:ns]`` /
    ``system:authenticated`` / ``system:unauthenticated`` Group (every workload, or everyone)."""
    kind, name = str(subject.get("kind") or ""), str(subject.get("name") or "").lower()
    if kind == "ServiceAccount":
        return True
    if kind == "User":
        return name.startswith("system:serviceaccount:") or name == "system:anonymous"
    return kind == "Group" and (name.startswith("system:serviceaccounts") or name in (
        "system:authenticated", "system:unauthenticated"))


@applies_to(WORKLOAD_TYPES, "kubernetes:core/v1:Namespace")
def namespaces(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """K8S-11: workloads outside ``default``; namespaces enforce the restricted Pod Security level."""
    if type_ in WORKLOAD_TYPES and namespace_of(props) == "default":
        return [f"metadata.namespace: found {show(get(props, 'metadata.namespace'))}; deploy into a dedicated "
                "namespace, never 'default'."]
    if type_ != "kubernetes:core/v1:Namespace":
        return []
    labels = metadata_labels(props)
    name = str(get(props, "metadata.name") or "")
    want = "baseline" if name in [str(n) for n in cfg.get("baselineNamespaces", [])] else "restricted"
    out = []
    if labels.get("pod-security.kubernetes.io/enforce") not in (want, "restricted"):
        out.append(f"metadata.labels['pod-security.kubernetes.io/enforce']: found "
                   f"{show(labels.get('pod-security.kubernetes.io/enforce'))}; set '{want}'.")
    if "pod-security.kubernetes.io/enforce-version" not in labels:
        out.append("metadata.labels['pod-security.kubernetes.io/enforce-version']: found unset; pin it, e.g. 'v1.33'.")
    return out


@applies_to(SERVICE, "kubernetes:networking.k8s.io/v1:Ingress")
def service_exposure(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """K8S-13: no NodePort; internal load balancers only; TLS on every Ingress."""
    if type_ == "kubernetes:core/v1:Service":
        kind = get(props, "spec.type")
        if kind == "NodePort":
            return ["spec.type: found 'NodePort'; use ClusterIP behind the gateway."]
        internal = mapping(get(props, "metadata.annotations")).get(
            "service.beta.kubernetes.io/azure-load-balancer-internal")
        if kind == "LoadBalancer" and str(internal).lower() != "true":
            return ["spec.type: found a public 'LoadBalancer'; annotate it "
                    "service.beta.kubernetes.io/azure-load-balancer-internal: 'true' or use the gateway."]
    if type_ == "kubernetes:networking.k8s.io/v1:Ingress" and not items(get(props, "spec.tls")):
        return ["spec.tls: found empty; terminate TLS on every Ingress."]
    return []


@applies_to("kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet")
def replicas_spread(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """K8S-14: enough replicas, spread over nodes/zones."""
    if type_ not in ("kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet"):
        return []
    pod = _pod(type_, props)
    assert pod is not None  # noqa: S101 (both types carry a pod template)
    minimum = number(cfg.get("minReplicas", 2)) or 0
    replicas = number(get(props, "spec.replicas"))
    out = []
    if replicas is not None and replicas < minimum:
        out.append(f"spec.replicas: found {show(replicas)}; run at least {show(minimum)} replicas here.")
    if minimum >= 2 and not items(pod.spec.get("topologySpreadConstraints")) and \
            not get(pod.spec, "affinity.podAntiAffinity"):
        out.append(f"{pod.path}.topologySpreadConstraints: found none and no podAntiAffinity; spread replicas "
                   "across nodes and zones.")
    return out


def secret_name(name: str) -> bool:
    """``HF_TOKEN``, ``DB_PASS``, ``apiKey``, ``AZURE_STORAGE_KEY``, ``CONNECTION_STRING``: yes; ``CONTEXT_TOKENS``: no."""
    words = [w.upper() for w in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", name)]
    if any(w in SECRET_WORDS for w in words):
        return True
    joined = "_".join(words)
    return bool(words) and (words[-1] == "KEY" or "API_KEY" in joined or "CONNECTION_STRING" in joined)


def _literal(value: Any) -> bool:
    """A non-empty literal (not a ``$(VAR)`` / ``${VAR}`` reference)."""
    return isinstance(value, str) and bool(value.strip()) and not value.strip().startswith("$")


def text_secrets(text: str) -> bool:
    """A token shape anywhere, or a ``name: value`` / ``"name": "value"`` line or JSON member with a secret name."""
    if SECRET_VALUE_RE.search(text):
        return True
    try:
        doc = json.loads(text) if text.lstrip()[:1] in "{[" else None
    except ValueError:
        doc = None
    if doc is not None and _json_secrets(doc):
        return True
    return any((m := _ASSIGNMENT_RE.match(line)) is not None and secret_name(m[1]) and _literal(m[2])
               for line in text.splitlines())


def _json_secrets(doc: Any) -> bool:
    if isinstance(doc, dict):
        return any((secret_name(str(k)) and _literal(v)) or _json_secrets(v) for k, v in doc.items())
    if isinstance(doc, list):
        return any(_json_secrets(v) for v in doc)
    return False


def _secret_args(c: Container) -> list[str]:
    tokens = c.args()
    out = []
    for i, token in enumerate(tokens):
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
        flagged = token.startswith("--") and secret_name(token[2:].replace("-", "_")) and _literal(nxt) \
            and not nxt.startswith("--")
        if flagged or SECRET_VALUE_RE.search(token):
            out.append(f"{c.path}.args: found a literal secret for {token if flagged else 'an argument'} (value not "
                       "shown); pass it from a Secret through an env var ($(VAR)) or a mounted file.")
    return out


def _secret_env(c: Container) -> list[str]:
    out = []
    for i, e in enumerate(c.env()):
        value = e.get("value")
        if not isinstance(value, str) or not value:
            continue
        name = str(e.get("name", ""))
        if secret_name(name) or SECRET_VALUE_RE.search(value):
            out.append(f"{c.path}.env[{i}].value: found a literal value for {name!r} (value not shown); move it to a "
                       "Secret (valueFrom.secretKeyRef) or a Key Vault CSI mount.")
    return out


@applies_to(WORKLOAD_TYPES, "kubernetes:core/v1:ConfigMap")
def no_secrets_in_env(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """K8S-15 / seed D10: no secret-looking literal env values or ConfigMap data."""
    if type_ == "kubernetes:core/v1:ConfigMap":
        out = []
        for field_name, decode in (("data", str), ("binaryData", _b64)):
            for key, raw in sorted(mapping(get(props, field_name)).items()):
                value = decode(raw) if isinstance(raw, str) else ""
                if (secret_name(key) and _literal(value) and "\n" not in value) or text_secrets(value):
                    out.append(f"{field_name}.{key}: found a secret-looking value (not shown); store it in a Secret "
                               "or Key Vault.")
        return out
    pod = _pod(type_, props)
    return [] if pod is None else [m for c in pod.containers() for m in (*_secret_env(c), *_secret_args(c))]


def _b64(value: str) -> str:
    try:
        return base64.b64decode(value, validate=False).decode("utf-8", errors="replace")
    except ValueError:
        return ""


def stable_api(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """K8S-16: no bare Pods and no alpha/beta versions of built-in Kubernetes APIs."""
    if type_ == "kubernetes:core/v1:Pod":
        return ["kind: found a bare Pod; wrap it in a Deployment, StatefulSet or Job so it is rescheduled."]
    m = CORE_GROUP_RE.match(type_)
    if m is None:
        return []
    group = m.group("group") or "core"
    builtin = "." not in group or group.endswith(".k8s.io")
    if builtin:
        return [f"type: found {m.group('version')} API {type_!r}; use the stable (v1/v2) version."]
    return []


@applies_to(HELM_RELEASE)
def helm_release_opaque(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """K8S-16: a Helm Release is opaque to these policies (pulumi/pulumi#10055)."""
    return [f"chart: found Helm Release of {show(get(props, 'chart'))}; its rendered objects are not checked by "
            "this pack. Review the chart values, or exempt it with a written reason."]


# --------------------------------------------------------------------------- GPU scheduling (GPU-04)


def _tolerates(pod: PodSpec, taint: str) -> bool:
    key, _, rest = taint.partition("=")
    value, _, effect = rest.partition(":")
    for t in items(pod.spec.get("tolerations")):
        tt = mapping(t)
        if tt.get("operator") == "Exists" and not tt.get("key"):
            return True
        if tt.get("key") == key and tt.get("effect") in (None, "", effect) and (
                tt.get("operator") == "Exists" or tt.get("value") == value):
            return True
    return False


@applies_to(WORKLOAD_TYPES)
def gpu_scheduling(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """GPU-04: GPU limits within bounds, requests equal limits, tolerations and node selection."""
    pod = _pod(type_, props)
    if pod is None or not pod.uses_gpu:
        return []
    taint = str(cfg.get("gpuTaint", "sku=gpu:NoSchedule"))
    max_gpus = number(cfg.get("maxGpusPerPod", 1)) or 1
    out = []
    for c in pod.containers():
        gpus = c.gpu_limit()
        if gpus == 0:
            continue
        if gpus > max_gpus or gpus != int(gpus):
            out.append(f"{c.path}.resources.limits['nvidia.com/gpu']: found {show(gpus)}; use 1..{show(max_gpus)} "
                       "whole GPUs.")
        req = mapping(get(c.spec, "resources.requests")).get("nvidia.com/gpu")
        if req is not None and number(req) != gpus:
            out.append(f"{c.path}.resources.requests['nvidia.com/gpu']: found {show(req)}, limit {show(gpus)}; "
                       "GPU requests must equal limits.")
    if not _tolerates(pod, taint):
        out.append(f"{pod.path}.tolerations: found no toleration for '{taint}'; GPU pods must tolerate the GPU "
                   "pool taint.")
    if not mapping(pod.spec.get("nodeSelector")) and not get(pod.spec, "affinity.nodeAffinity"):
        out.append(f"{pod.path}.nodeSelector: found unset; select the GPU pool (e.g. kubernetes.azure.com/agentpool).")
    return out


@applies_to(WORKLOAD_TYPES)
def non_gpu_tolerations(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """GPU-04: pods without GPUs do not tolerate the GPU taint (they would occupy GPU nodes)."""
    pod = _pod(type_, props)
    taint = str(cfg.get("gpuTaint", "sku=gpu:NoSchedule"))
    if pod is None or pod.uses_gpu or type_ == "kubernetes:apps/v1:DaemonSet" or not _tolerates(pod, taint):
        return []
    return [f"{pod.path}.tolerations: found a toleration for '{taint}' on a pod without GPUs; remove it so CPU "
            "pods do not hold GPU nodes."]
