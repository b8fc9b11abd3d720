"""Edge device rules (catalogue group G: EDGE-01..EDGE-03, and EDGE-MODELS of issue 13)."""

# Every rule takes (type, props, config) so the pack can adapt them uniformly; not all use all three.

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Final

from policies.rules.tokens import DYNAMIC_RESOURCE, IOT_HUB
from policies.rules.wire import (
    WORKLOAD_TYPES,
    Props,
    applies_to,
    get,
    items,
    mapping,
    metadata_labels,
    number,
    pod_spec,
    show,
)
from policies.rules.workloads import registry_allowed

EDGE_LABEL: Final = "slm.io/tier"
DEVICE_CLASS_LABEL: Final = "slm.io/device-class"
MODEL_DIGEST_KEY: Final = "slm.io/model-sha256"
MODEL_VERSION_KEY: Final = "slm.io/model-version"
GIT_PINNED_VERSION_RE: Final = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+@[0-9a-f]{40}(/.*)?$")
"""``<repo>@<40-hex commit>[/<variant>]``: an ONNX artifact pinned by its git commit, which names its content
(the settings accept it in prod for the same reason: stacks/settings.py, ``artifact_sha256``)."""
SHA256_RE: Final = re.compile(r"^(sha256:)?[0-9a-f]{64}$")
_UNITS: Final = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}


def quantity_bytes(value: Any) -> float | None:
    """A Kubernetes memory quantity (``8Gi``, ``512Mi``, ``1e9``) in bytes."""
    if value is None:
        return None
    text = str(value)
    for suffix, factor in sorted(_UNITS.items(), key=lambda kv: -len(kv[0])):
        if text.endswith(suffix):
            n = number(text[: -len(suffix)])
            return None if n is None else n * factor
    return number(text)


def is_edge(type_: str, props: Props) -> bool:
    """A workload (or namespace) labelled ``slm.io/tier: edge``."""
    pod = pod_spec(type_, props)
    labels = {**metadata_labels(props), **(pod.labels if pod else {})}
    return labels.get(EDGE_LABEL) == "edge"


@applies_to(WORKLOAD_TYPES)
def artifact_pinned(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """EDGE-01: edge images by digest from the edge registry, IfNotPresent, model sha256 recorded."""
    pod = pod_spec(type_, props)
    if pod is None or not is_edge(type_, props):
        return []
    registries = [*(str(r) for r in cfg.get("edgeRegistries", [])), *(str(r) for r in cfg.get("stackRegistries", []))]
    out = []
    for c in pod.containers():
        if "@sha256:" not in c.image:
            out.append(f"{c.path}.image: found {show(c.image)}; edge images are pinned by @sha256 digest.")
        if not registry_allowed(c.image, registries):
            where = ", ".join(registries) or "the stack's own ACR"
            out.append(f"{c.path}.image: found {show(c.image)}; pull from the edge registry ({where}).")
        if c.spec.get("imagePullPolicy") != "IfNotPresent":
            out.append(f"{c.path}.imagePullPolicy: found {show(c.spec.get('imagePullPolicy'))}; use 'IfNotPresent' "
                       "so devices start offline (documented deviation from CKV_K8S_15).")
    digests = [pod.annotations.get(MODEL_DIGEST_KEY), metadata_labels(props).get(MODEL_DIGEST_KEY),
               mapping(get(props, "metadata.annotations")).get(MODEL_DIGEST_KEY)]
    digests += [str(e.get("value")) for c in pod.containers() for e in c.env()
                if "SHA256" in str(e.get("name", "")).upper()]
    versions = [pod.annotations.get(MODEL_VERSION_KEY), mapping(get(props, "metadata.annotations")).get(MODEL_VERSION_KEY)]
    git_pinned = any(v and GIT_PINNED_VERSION_RE.match(str(v)) for v in versions)
    if not git_pinned and not any(d and SHA256_RE.match(str(d)) for d in digests):
        out.append(f"{pod.path}: found no model sha256; annotate the pod template '{MODEL_DIGEST_KEY}' with the "
                   "model artifact digest so devices verify what they load.")
    return out


@applies_to("kubernetes:core/v1:Namespace", WORKLOAD_TYPES)
def device_envelope(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """EDGE-02: limits within the device class; host paths only allow-listed; no host network."""
    if type_ == "kubernetes:core/v1:Namespace":
        if not is_edge(type_, props):
            return []
        name = str(get(props, "metadata.name") or "")
        want = "baseline" if name in [str(n) for n in cfg.get("devicePluginNamespaces", [])] else "restricted"
        found = metadata_labels(props).get("pod-security.kubernetes.io/enforce")
        return [] if found == want else [f"metadata.labels['pod-security.kubernetes.io/enforce']: found {show(found)};"
                                         f" set '{want}' on this edge namespace."]
    pod = pod_spec(type_, props)
    if pod is None or not is_edge(type_, props):
        return []
    out = []
    if pod.spec.get("hostNetwork") is True:
        out.append(f"{pod.path}.hostNetwork: found true; edge pods use the pod network.")
    allowed_paths = [str(p) for p in cfg.get("allowedHostPaths", ["/dev/dri"])]
    for i, v in enumerate(items(pod.spec.get("volumes"))):
        path = get(v, "hostPath.path")
        if path is None:
            continue
        if path not in allowed_paths or type_ != "kubernetes:apps/v1:DaemonSet":
            out.append(f"{pod.path}.volumes[{i}].hostPath.path: found {show(path)}; only {', '.join(allowed_paths)} "
                       "on device-plugin DaemonSets.")
    classes = mapping(cfg.get("deviceClasses"))
    device_class = pod.labels.get(DEVICE_CLASS_LABEL) or metadata_labels(props).get(DEVICE_CLASS_LABEL)
    profile = mapping(classes.get(device_class)) if device_class else {}
    if device_class and not profile:
        out.append(f"{pod.path}: found device class {device_class!r} with no profile in deviceClasses; add it.")
    budget = number(profile.get("memoryGiB"))
    if budget is not None:
        total = sum(quantity_bytes(get(c.spec, "resources.limits.memory")) or 0 for c in pod.containers())
        if total > budget * 2**30:
            out.append(f"{pod.path}.containers[*].resources.limits.memory: found {total / 2**30:.1f} GiB in total; "
                       f"device class {device_class!r} offers {show(budget)} GiB. Use a smaller quantization or "
                       "context.")
    return out


@applies_to(IOT_HUB)
def iot_hub(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:  # noqa: ARG001
    """EDGE-03: IoT Hub with Entra-only auth, TLS 1.2 and (where required) no public access."""
    out = []
    if get(props, "properties.disableLocalAuth") is not True:
        out.append(f"properties.disableLocalAuth: found {show(get(props, 'properties.disableLocalAuth'))}; set it "
                   "to true (devices use X.509, services use Entra ID).")
    if get(props, "properties.minTlsVersion") != "1.2":
        out.append(f"properties.minTlsVersion: found {show(get(props, 'properties.minTlsVersion'))}; set '1.2'.")
    if cfg.get("requirePrivate", False) and get(props, "properties.publicNetworkAccess") != "Disabled":
        out.append(f"properties.publicNetworkAccess: found {show(get(props, 'properties.publicNetworkAccess'))}; set "
                   "'Disabled' and connect devices through a private endpoint.")
    return out




PUBLIC_HUB_MARKERS: Final = ("huggingface.co", "hf.co/", "registry.ollama.ai", "ollama pull", "/app/download.py",
                             "hf_hub_download", "snapshot_download")
"""What a model download from a public hub looks like in a command line (Hub host, Ollama library, the
ONNX server's Hub downloader)."""
PUBLIC_HUB_ENVS: Final = frozenset({"HF_ENDPOINT", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_ENABLE_HF_TRANSFER"})
FILL_REGISTRY_FLAG: Final = "--registry"
IOT_CONFIGURATION_KEYS: Final = ("hubHostName", "content")


def _hub_reference(words: list[str], env: Mapping[str, Any]) -> str | None:
    """The first public-hub reference in a command line or an env, shown without values (never secrets)."""
    for word in words:
        hit = next((m for m in PUBLIC_HUB_MARKERS if m in word), None)
        if hit is not None:
            return f"a command that runs {hit!r}"
    for name in sorted(env):
        if name in PUBLIC_HUB_ENVS:
            return f"env {name}"
    return None


def _iot_modules(content: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The ``$edgeAgent`` modules of an IoT Edge deployment, full form or layered path form."""
    agent = mapping(mapping(content.get("modulesContent")).get("$edgeAgent"))
    modules = dict(mapping(mapping(agent.get("properties.desired")).get("modules")))
    prefix = "properties.desired.modules."
    modules |= {k.removeprefix(prefix): v for k, v in agent.items() if k.startswith(prefix)}
    return {k: mapping(v) for k, v in modules.items()}


def _module_words(module: Mapping[str, Any]) -> tuple[list[str], dict[str, Any]]:
    settings = mapping(module.get("settings"))
    keys = ["createOptions", *sorted(k for k in settings if str(k).startswith("createOptions0"))]
    text = "".join(str(settings[k]) for k in keys if k in settings)
    try:
        options = mapping(json.loads(text)) if text else {}
    except ValueError:
        options = {}
    words = [str(w) for w in [*items(options.get("Entrypoint")), *items(options.get("Cmd"))]]
    words = [part for w in words for part in w.split()]
    return words, dict(mapping(module.get("env")))


@applies_to(DYNAMIC_RESOURCE, WORKLOAD_TYPES)
def models_from_registry(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:  # noqa: ARG001
    """EDGE-MODELS: edge workloads load the model from the registry (the fill step), never from a public hub."""
    out: list[str] = []
    if type_ == DYNAMIC_RESOURCE and all(get(props, k) is not None for k in IOT_CONFIGURATION_KEYS):
        modules = _iot_modules(mapping(get(props, "content")))
        if not modules:
            return []  # a base deployment: runtime and system modules only
        filled = False
        for name, module in sorted(modules.items()):
            words, env = _module_words(module)
            filled = filled or FILL_REGISTRY_FLAG in words
            hit = _hub_reference(words, env)
            if hit is not None:
                out.append(f"content.modulesContent.$edgeAgent.modules.{name}: found {hit}; edge devices load models "
                           "only from the registry here. Pull models/<model>:<revision> with the fill step "
                           "(--registry) and the fleet's pull token.")
        if not filled:
            out.append("content.modulesContent.$edgeAgent: found no module that fills the model from the registry "
                       "(--registry); add the fill-model module so devices verify the model against its manifest.")
        return out
    pod = pod_spec(type_, props)
    if pod is None or not is_edge(type_, props):
        return []
    filled = False
    for c in pod.containers():
        words = c.args()
        filled = filled or (c.init and FILL_REGISTRY_FLAG in words)
        hit = _hub_reference(words, {str(e.get("name", "")): None for e in c.env()})
        if hit is not None:
            out.append(f"{c.path}: found {hit}; edge devices load models only from the registry here. Use the "
                       "registry fill init container (--registry) with the fleet's pull token.")
    if not filled:
        out.append(f"{pod.path}.initContainers: found no registry fill step (--registry); add it so the pod loads "
                   "the model from the registry and refuses a hash mismatch.")
    return out
