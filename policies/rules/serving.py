"""Model-serving lints: the seed's defects (SLM_FACTS.md D1-D13) as rules over workload inputs."""

# Every rule takes (type, props, config) so the pack can adapt them uniformly; not all use all three.
# ruff: noqa: ARG001

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from policies.rules.catalog import VALID_TOOL_CALL_PARSERS
from policies.rules.memory_fit import SHAPE_ANNOTATIONS, declares_shape, estimate, shape_from_annotations
from policies.rules.tokens import HPA, SCALED_OBJECT
from policies.rules.wire import (
    WORKLOAD_TYPES,
    Container,
    Props,
    applies_to,
    get,
    items,
    mapping,
    number,
    pod_spec,
    show,
)

VALID_OLLAMA_VARS: Final = frozenset({
    "OLLAMA_HOST", "OLLAMA_NUM_PARALLEL", "OLLAMA_MAX_LOADED_MODELS", "OLLAMA_MAX_QUEUE", "OLLAMA_KEEP_ALIVE",
    "OLLAMA_FLASH_ATTENTION", "OLLAMA_KV_CACHE_TYPE", "OLLAMA_CONTEXT_LENGTH", "OLLAMA_MODELS", "OLLAMA_MAX_VRAM",
    "OLLAMA_ORIGINS", "OLLAMA_DEBUG", "OLLAMA_LOAD_TIMEOUT", "OLLAMA_NOPRUNE", "OLLAMA_SCHED_SPREAD",
    "OLLAMA_GPU_OVERHEAD", "OLLAMA_LLM_LIBRARY", "OLLAMA_NOHISTORY", "OLLAMA_MULTIUSER_CACHE",
})
"""Server variables documented by Ollama (SLM_FACTS.md); extend with ``extraOllamaVars``."""
QUANT_FLAGS: Final = ("awq", "awq_marlin", "gptq", "gptq_marlin")
GPU_UTIL_RE: Final = re.compile(r"DCGM_FI_DEV_GPU_UTIL|gpu_util", re.IGNORECASE)
MONITORS: Final = frozenset({"kubernetes:monitoring.coreos.com/v1:ServiceMonitor",
                             "kubernetes:monitoring.coreos.com/v1:PodMonitor",
                             "kubernetes:azmonitoring.coreos.com/v1:ServiceMonitor",
                             "kubernetes:azmonitoring.coreos.com/v1:PodMonitor"})
OLLAMA_PORT: Final = 11434


def _containers(type_: str, props: Props) -> list[Container]:
    pod = pod_spec(type_, props)
    return [] if pod is None else pod.containers()


def is_vllm(c: Container) -> bool:
    """A vLLM server container: the vLLM image, or ``vllm serve`` / the OpenAI entrypoint in its command."""
    args = " ".join(c.args())
    return "vllm" in c.image.lower() or "vllm serve" in args or "vllm.entrypoints" in args


def is_ollama(c: Container) -> bool:
    """An Ollama server container."""
    return "ollama" in c.image.lower() and "serve" in (c.args() or ["serve"])


def _vllm_model(c: Container) -> str:
    tokens = c.args()
    model = c.flag("--model")
    if model:
        return model
    if "serve" in tokens and tokens.index("serve") + 1 < len(tokens):
        return tokens[tokens.index("serve") + 1]
    return ""


@applies_to(WORKLOAD_TYPES)
def tool_call_parser(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """D1: ``--enable-auto-tool-choice`` needs a known ``--tool-call-parser``."""
    out = []
    for c in _containers(type_, props):
        if not is_vllm(c) or c.flag("--enable-auto-tool-choice") is None:
            continue
        parser = c.flag("--tool-call-parser")
        if not parser:
            out.append(f"{c.path}.args: found --enable-auto-tool-choice without --tool-call-parser; vLLM answers "
                       "tool calls with HTTP 400. Add the family's parser (Phi-4-mini 'phi4_mini_json', Qwen3 "
                       "'hermes', Gemma 3 'pythonic').")
        elif parser not in VALID_TOOL_CALL_PARSERS:
            out.append(f"{c.path}.args: found --tool-call-parser {show(parser)}; use one of "
                       f"{', '.join(sorted(VALID_TOOL_CALL_PARSERS))}.")
    return out


@applies_to(WORKLOAD_TYPES)
def quantization_flag(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """D2: ``--quantization awq/gptq`` only with a checkpoint quantized that way."""
    out = []
    for c in _containers(type_, props):
        quant = c.flag("--quantization")
        if not is_vllm(c) or quant not in QUANT_FLAGS:
            continue
        model = _vllm_model(c)
        if quant.split("_")[0] not in model.lower():
            out.append(f"{c.path}.args: found --quantization {quant} for {show(model)}, which is not an "
                       f"{quant.split('_')[0].upper()} checkpoint; serve a pre-quantized repo and drop the flag "
                       "(vLLM detects quantization from the checkpoint config).")
    return out


@applies_to(WORKLOAD_TYPES)
def cuda_image_on_cpu(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """D3: the vLLM CUDA image needs a GPU."""
    return [f"{c.path}.image: found {show(c.image)} without resources.limits['nvidia.com/gpu']; that image is "
            "CUDA-only. Give it a GPU, or serve on CPU with Ollama or ONNX Runtime GenAI."
            for c in _containers(type_, props)
            if "vllm/vllm-openai" in c.image and "cpu" not in c.image.lower() and c.gpu_limit() == 0]


@applies_to(MONITORS, WORKLOAD_TYPES)
def ollama_metrics(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """D4: Ollama has no /metrics endpoint (ollama#3144); do not scrape it."""
    if type_ in MONITORS:
        endpoints = items(get(props, "spec.endpoints")) or items(get(props, "spec.podMetricsEndpoints"))
        labels = mapping(get(props, "spec.selector.matchLabels"))
        targets_ollama = any("ollama" in str(v).lower() for v in labels.values())
        out = []
        for i, ep in enumerate(endpoints):
            e = mapping(ep)
            port = str(e.get("port") or e.get("targetPort") or "")
            if port == str(OLLAMA_PORT) or "ollama" in port.lower() or (targets_ollama and e.get("path", "/metrics")):
                out.append(f"spec.endpoints[{i}]: found a scrape of Ollama (port {show(port)}); Ollama serves no "
                           "/metrics. Scrape the gateway or a sidecar exporter instead.")
        return out
    pod = pod_spec(type_, props)
    if pod is None:
        return []
    ann = pod.annotations
    if str(ann.get("prometheus.io/scrape", "")).lower() == "true" and (
            ann.get("prometheus.io/port") == str(OLLAMA_PORT) or (any(is_ollama(c) for c in pod.containers())
            and len(pod.containers(include_init=False)) == 1)):
        return ["spec.template.metadata.annotations['prometheus.io/scrape']: found 'true' on an Ollama pod; Ollama "
                "serves no /metrics."]
    return []


@applies_to(WORKLOAD_TYPES)
def ollama_probes(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """D5: Ollama probes use HTTP on ``/`` or ``/api/version`` (no curl in the image, no /api/health)."""
    out = []
    for c in _containers(type_, props):
        if not is_ollama(c):
            continue
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            command = " ".join(str(x) for x in items(get(c.spec, f"{probe}.exec.command")))
            path = get(c.spec, f"{probe}.httpGet.path")
            if "curl" in command or path == "/api/health":
                out.append(f"{c.path}.{probe}: found {'an exec curl' if 'curl' in command else 'path /api/health'};"
                           " use httpGet on '/api/version' (the image has no curl and no /api/health route).")
    return out


@applies_to(WORKLOAD_TYPES)
def ollama_env(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """D7: only real Ollama server variables; ``OLLAMA_MAX_VRAM`` in bytes."""
    valid = VALID_OLLAMA_VARS | {str(v) for v in cfg.get("extraOllamaVars", [])}
    out = []
    for c in _containers(type_, props):
        for i, e in enumerate(c.env()):
            name = str(e.get("name", ""))
            if name.startswith("OLLAMA_") and name not in valid:
                out.append(f"{c.path}.env[{i}].name: found {name!r}, which Ollama does not read; use "
                           "OLLAMA_NUM_PARALLEL / OLLAMA_CONTEXT_LENGTH / Modelfile 'PARAMETER num_ctx' instead.")
            if name == "OLLAMA_MAX_VRAM" and isinstance(e.get("value"), str) and not str(e["value"]).isdigit():
                out.append(f"{c.path}.env[{i}].value: found OLLAMA_MAX_VRAM={show(e['value'])}; give bytes, e.g. "
                           "'8589934592'.")
    return out


@applies_to(WORKLOAD_TYPES)
def no_foundry_local_container(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """D8: Foundry Local is a desktop runtime with no container image; never a Kubernetes workload."""
    return [f"{c.path}.image: found {show(c.image)}; Foundry Local has no container (CLI 'foundry', Windows/macOS "
            "only). Serve with Ollama or ONNX Runtime GenAI, or deliver Foundry Local as a device bootstrap script."
            for c in _containers(type_, props)
            if "foundry-local" in c.image.lower() or "foundry-local" in " ".join(c.args())]


CPU_SCALED_ENGINES: Final = frozenset({"ollama", "llamacpp"})
"""Engines without a queue metric whose CPU utilization does track load (components/engines/scaling.py)."""


def _scale_target(props: Props) -> str:
    return str(get(props, "spec.scaleTargetRef.name") or "")


@applies_to(HPA, SCALED_OBJECT)
def autoscaling_metric(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """D11: inference scales on queue depth, not CPU/GPU utilization."""
    if type_ not in (HPA, SCALED_OBJECT):
        return []  # its labels are not read for other kinds (an unknown one would "cannot verify")
    pattern = re.compile(str(cfg.get("inferenceTargetPattern", "vllm|ollama|onnx|llm|slm|inference")))
    # Ollama / llama.cpp serve no queue metric (D4) and are CPU-bound: their CPU use is the load signal.
    cpu_engine = str(mapping(get(props, "metadata.labels")).get("slm.io/engine", "")) in CPU_SCALED_ENGINES \
        and "vllm" not in _scale_target(props)
    inference = bool(pattern.search(_scale_target(props))) and not cpu_engine
    out = []
    if type_ == HPA:
        for i, m in enumerate(items(get(props, "spec.metrics"))):
            mm = mapping(m)
            res = get(mm, "resource.name") or get(mm, "containerResource.name")
            name = str(get(mm, "external.metric.name") or get(mm, "pods.metric.name") or "")
            if GPU_UTIL_RE.search(name) or (inference and res in ("cpu", "memory")):
                out.append(f"spec.metrics[{i}]: found scaling on {show(res or name)} utilization; GPU utilization "
                           "sits near 100% while batching. Scale on vllm:num_requests_waiting (queue depth).")
    elif type_ == SCALED_OBJECT:
        for i, t in enumerate(items(get(props, "spec.triggers"))):
            tt = mapping(t)
            query = str(get(tt, "metadata.query") or "")
            if GPU_UTIL_RE.search(query) or (inference and tt.get("type") in ("cpu", "memory")):
                out.append(f"spec.triggers[{i}]: found a {show(tt.get('type'))} utilization trigger; scale on "
                           "vllm:num_requests_waiting (queue depth) instead.")
    return out


@applies_to(WORKLOAD_TYPES)
def trust_remote_code(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """D13: ``--trust-remote-code`` only for allow-listed models."""
    allowed = {str(m) for m in cfg.get("allowTrustRemoteCode", [])}
    out = [f"{c.path}.args: found --trust-remote-code for {show(_vllm_model(c))}; it runs the repo's Python in the "
           "server. Remove it, or allow-list the model in allowTrustRemoteCode after review."
           for c in _containers(type_, props)
           if c.flag("--trust-remote-code") is not None and _vllm_model(c) not in allowed]
    out += [f"{c.path}.args: found --config {show(c.flag('--config'))}; options in a file (a ConfigMap) are not "
            "visible to the pack, so --trust-remote-code there cannot be ruled out. Pass vLLM's options as args."
            for c in _containers(type_, props) if is_vllm(c) and c.flag("--config") is not None]
    return out


@applies_to(WORKLOAD_TYPES)
def dev_mode(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """vLLM: never ``VLLM_SERVER_DEV_MODE`` (it opens debug endpoints)."""
    out = [f"{c.path}.env: found VLLM_SERVER_DEV_MODE; remove it, it exposes development endpoints."
           for c in _containers(type_, props) if "VLLM_SERVER_DEV_MODE" in c.env_names()]
    out += [f"{c.path}.envFrom: found {', '.join(c.env_from())}; a vLLM container imports whole ConfigMaps/Secrets "
            "the pack cannot see, so VLLM_SERVER_DEV_MODE cannot be ruled out. List its env explicitly."
            for c in _containers(type_, props) if is_vllm(c) and c.env_from()]
    return out


@applies_to(WORKLOAD_TYPES)
def log_stats(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """vLLM: keep stats logging (``--disable-log-stats`` makes the metrics vanish)."""
    return [f"{c.path}.args: found --disable-log-stats; remove it or the vllm:* metrics disappear."
            for c in _containers(type_, props) if is_vllm(c) and c.flag("--disable-log-stats") is not None]


@applies_to(WORKLOAD_TYPES)
def bounded_context(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """vLLM: ``--max-model-len`` always bounded (checked at start against the KV cache)."""
    return [f"{c.path}.args: found no --max-model-len; bound it (e.g. 16384) so the server starts on its GPU."
            for c in _containers(type_, props) if is_vllm(c) and not c.flag("--max-model-len")]


@applies_to(WORKLOAD_TYPES)
def shared_memory(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """vLLM: a memory-backed, size-limited ``/dev/shm``."""
    pod = pod_spec(type_, props)
    if pod is None:
        return []
    volumes = {str(mapping(v).get("name")): mapping(v) for v in items(pod.spec.get("volumes"))}
    out = []
    for c in pod.containers(include_init=False):
        if not is_vllm(c):
            continue
        mounts = [mapping(m) for m in items(c.spec.get("volumeMounts")) if mapping(m).get("mountPath") == "/dev/shm"]  # noqa: S108
        vol = volumes.get(str(mounts[0].get("name"))) if mounts else None
        if vol is None or get(vol, "emptyDir.medium") != "Memory" or not get(vol, "emptyDir.sizeLimit"):
            out.append(f"{c.path}.volumeMounts: found no memory-backed /dev/shm; mount an emptyDir with medium "
                       "'Memory' and a sizeLimit at /dev/shm.")
    return out


@applies_to(WORKLOAD_TYPES)
def memory_fit(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """vLLM's ``--max-model-len`` fits the GPU after the weights, else the server fails at start.

    Runs the same estimate as the settings (``policies.rules.memory_fit``) on the shape the workload
    declares in its ``slm.io/model-*`` and ``slm.io/gpu-memory-gib`` annotations; silent without them.
    """
    containers = _containers(type_, props)
    if not containers:
        return []  # nothing served here: its annotations are not read (an unknown one would "cannot verify")
    annotations = dict(mapping(get(props, "metadata.annotations")))
    declared = shape_from_annotations(annotations)
    if declared is None:
        if declares_shape(annotations) and any(is_vllm(c) for c in containers):
            return [f"metadata.annotations: found an incomplete or invalid model shape; set every slm.io/"
                    f"{', slm.io/'.join(SHAPE_ANNOTATIONS)} to a positive number (quantization: a known dtype)."]
        return []
    shape, gpu_memory_gib = declared
    out = []
    for c in containers:
        if not is_vllm(c) or c.init:
            continue
        context = number(c.flag("--max-model-len"))
        if context is None:
            continue  # slm-serving-bounded-context reports it
        utilization = number(c.flag("--gpu-memory-utilization")) or 0.9
        kv_bytes = 1.0 if (c.flag("--kv-cache-dtype") or "").startswith("fp8") else 2.0
        fit = estimate(shape, memory_gib=gpu_memory_gib, context_tokens=int(context), utilization=utilization,
                       kv_cache_bytes=kv_bytes)
        if not fit.fits:
            out.append(f"{c.path}.args: found --max-model-len {int(context)}, which needs "
                       f"{fit.kv_per_sequence_gib} GiB of KV cache after {fit.weights_gib} GiB of weights on a "
                       f"{gpu_memory_gib:g} GiB GPU; vLLM would fail at start. Lower it to at most "
                       f"{fit.max_context_tokens_one_sequence} or use a larger GPU.")
    return out


LOOPBACK_HOSTS: Final = ("127.0.0.1", "localhost", "[::1]")
GATE_KEY_ENV: Final = "ENGINE_API_KEY"
"""What the API-key gate in front of Ollama reads its key from (components/engines/auth_proxy.py)."""


def _key_from_secret(c: Container, names: tuple[str, ...]) -> bool:
    """Whether one of ``names`` is set from a Secret (a literal is a finding of slm-k8s-no-plaintext-secrets)."""
    return any(str(e.get("name")) in names and (get(e, "valueFrom.secretKeyRef") or e.get("value"))
               for e in c.env())


def _gate(containers: list[Container]) -> Container | None:
    """The API-key gate container of a pod: a non-engine container with a key from a Secret and a port."""
    for c in containers:
        if is_ollama(c) or is_vllm(c):
            continue
        if get(c.spec, "env") and any(str(e.get("name")) == GATE_KEY_ENV and get(e, "valueFrom.secretKeyRef")
                                      for e in c.env()) and items(c.spec.get("ports")):
            return c
    return None


@applies_to(WORKLOAD_TYPES)
def api_key_gate(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """Every model server checks an API key itself (vLLM, llama.cpp, our ONNX server) or sits behind one.

    Ollama checks none: it must listen on loopback only (``OLLAMA_HOST``), declare no port, and share its
    pod with a gate container that reads ``ENGINE_API_KEY`` from a Secret and holds the pod's port.
    """
    pod = pod_spec(type_, props)
    if pod is None:
        return []
    main = pod.containers(include_init=False)
    out: list[str] = []
    for c in main:
        if is_ollama(c):
            host = next((str(e.get("value", "")) for e in c.env() if e.get("name") == "OLLAMA_HOST"), "")
            if not host.startswith(LOOPBACK_HOSTS):
                out.append(f"{c.path}.env.OLLAMA_HOST: found {show(host or 'unset')}, so Ollama (which checks no API "
                           "key) listens on the pod's address; set '127.0.0.1:11434' and put an API-key gate "
                           "(components/engines/auth_proxy.py) in front of it.")
            if items(c.spec.get("ports")):
                out.append(f"{c.path}.ports: found {show(c.spec.get('ports'))} on the Ollama container; declare the "
                           "port only on the API-key gate, the one way in.")
            if _gate(main) is None:
                out.append(f"{c.path}: found Ollama with no API-key gate in its pod; add a proxy container that reads "
                           f"{GATE_KEY_ENV} from a Secret (secretKeyRef) and holds the pod's serving port.")
        elif is_vllm(c):
            if c.flag("--api-key") is None and not _key_from_secret(c, ("VLLM_API_KEY",)):
                out.append(f"{c.path}: found vLLM without --api-key or VLLM_API_KEY; set VLLM_API_KEY from a Secret "
                           "(secretKeyRef) so /v1 answers 401 without it.")
        elif "llama.cpp" in c.image.lower() or "llama-server" in " ".join(c.args()):
            if c.flag("--api-key") is None and c.flag("--api-key-file") is None and \
                    not _key_from_secret(c, ("LLAMA_API_KEY",)):
                out.append(f"{c.path}: found llama.cpp's server without --api-key or LLAMA_API_KEY; set "
                           "LLAMA_API_KEY from a Secret (secretKeyRef).")
        elif ("/app/server.py" in " ".join(c.args()) or "onnx" in c.image.lower()) and \
                not _key_from_secret(c, (GATE_KEY_ENV,)):
            out.append(f"{c.path}: found the ONNX server without {GATE_KEY_ENV}; set it from a Secret "
                       "(secretKeyRef) so /v1 answers 401 without it.")
    return out
