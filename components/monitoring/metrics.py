"""The metric names each serving engine (and the GPU exporter) is known to expose.

Every rule and dashboard panel is checked against these lists (``tests/monitoring``), so a typo or
a metric an engine no longer exports fails a test instead of producing an alert that never fires.

Sources: vLLM V1 ``vllm/v1/metrics/loggers.py`` (FIELD.md 5.1), the DCGM exporter's
``etc/default-counters.csv`` (FIELD.md 5.3), kube-state-metrics, and — for the ONNX Runtime GenAI
server in ``components/engines/onnx_server`` — the contract defined here (``ONNX_SERVER_METRICS``).
Ollama exposes no Prometheus endpoint at all (ollama/ollama#3144, seed defect D4).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

Engine = Literal["vllm", "ollama", "onnx-genai"]
MetricKind = Literal["counter", "gauge", "histogram", "info"]


@dataclass(frozen=True, kw_only=True)
class EngineMetrics:
    """The metric names one serving engine exposes, by role, as rules and panels need them.

    ``None`` for a role means the engine has no such metric and the rules that need it are not
    generated for that engine (for example KV-cache saturation on the ONNX server).
    """

    engine: Engine
    running: str | None
    """Gauge: requests being generated right now."""
    waiting: str | None
    """Gauge: requests queued (the KEDA scale signal)."""
    ttft_histogram: str | None
    """Histogram base name (without ``_bucket``): time to first token, seconds."""
    itl_histogram: str | None
    """Histogram base name: inter-token latency, seconds."""
    generation_tokens: str | None
    """Counter (with ``_total``): generated tokens."""
    prompt_tokens: str | None
    """Counter: prompt tokens processed."""
    finished_requests: str | None
    """Counter with label ``finished_reason`` (``stop``, ``length``, ``abort``)."""
    kv_cache_usage: str | None = None
    """Gauge 0..1: KV-cache usage."""
    preemptions: str | None = None
    """Counter: sequences preempted because the KV cache ran out."""
    e2e_histogram: str | None = None
    """Histogram base name: end-to-end request latency, seconds."""
    prefix_cache_queries: str | None = None
    prefix_cache_hits: str | None = None
    http_requests: str | None = None
    """Counter with labels ``model_name`` and ``status``: finished HTTP requests."""

    @property
    def has_metrics(self) -> bool:
        """False for engines without a Prometheus endpoint (Ollama)."""
        return self.running is not None


VLLM_METRICS: Final[Mapping[str, MetricKind]] = {
    "vllm:num_requests_running": "gauge",
    "vllm:num_requests_waiting": "gauge",
    "vllm:kv_cache_usage_perc": "gauge",
    "vllm:engine_sleep_state": "gauge",
    "vllm:cache_config_info": "info",
    "vllm:lora_requests_info": "info",
    "vllm:prompt_tokens_total": "counter",
    "vllm:generation_tokens_total": "counter",
    "vllm:request_success_total": "counter",
    "vllm:num_preemptions_total": "counter",
    "vllm:prefix_cache_queries_total": "counter",
    "vllm:prefix_cache_hits_total": "counter",
    "vllm:external_prefix_cache_queries_total": "counter",
    "vllm:external_prefix_cache_hits_total": "counter",
    "vllm:mm_cache_queries_total": "counter",
    "vllm:mm_cache_hits_total": "counter",
    "vllm:corrupted_requests_total": "counter",
    "vllm:spec_decode_num_draft_tokens_total": "counter",
    "vllm:spec_decode_num_accepted_tokens_total": "counter",
    "vllm:time_to_first_token_seconds": "histogram",
    "vllm:inter_token_latency_seconds": "histogram",
    "vllm:request_time_per_output_token_seconds": "histogram",
    "vllm:e2e_request_latency_seconds": "histogram",
    "vllm:request_queue_time_seconds": "histogram",
    "vllm:request_inference_time_seconds": "histogram",
    "vllm:request_prefill_time_seconds": "histogram",
    "vllm:request_decode_time_seconds": "histogram",
    "vllm:request_prompt_tokens": "histogram",
    "vllm:request_generation_tokens": "histogram",
    "vllm:request_max_num_generation_tokens": "histogram",
    "vllm:request_params_n": "histogram",
    "vllm:request_params_max_tokens": "histogram",
    "vllm:iteration_tokens_total": "histogram",
}
"""vLLM V1 ``/metrics`` (labels ``model_name`` = ``--served-model-name``, ``engine`` = DP rank)."""

VLLM_DEPRECATED: Final[frozenset[str]] = frozenset({
    "vllm:gpu_cache_usage_perc",
    "vllm:cpu_cache_usage_perc",
    "vllm:gpu_prefix_cache_queries",
    "vllm:gpu_prefix_cache_hits",
    "vllm:gpu_prefix_cache_queries_total",
    "vllm:gpu_prefix_cache_hits_total",
    "vllm:gpu_prefix_cache_hit_rate",
    "vllm:time_per_output_token_seconds",
    "vllm:num_requests_swapped",
    "vllm:avg_prompt_throughput_toks_per_s",
    "vllm:avg_generation_throughput_toks_per_s",
})
"""Deprecated or removed vLLM names: never build a rule or a panel on them (SLM_FACTS)."""

ONNX_SERVER_METRICS: Final[Mapping[str, MetricKind]] = {
    "onnxgenai_requests_total": "counter",
    "onnxgenai_prompt_tokens_total": "counter",
    "onnxgenai_generation_tokens_total": "counter",
    "onnxgenai_requests_running": "gauge",
    "onnxgenai_requests_waiting": "gauge",
    "onnxgenai_e2e_request_latency_seconds": "histogram",
}
"""What this repo's ONNX Runtime GenAI server exposes (``components/engines/onnx_server/server.py``,
``Metrics.render``), every series labelled ``model_name`` (= ``--served-model-name``, the deployment
name); ``onnxgenai_requests_total`` also carries ``route`` and ``status``.

It has no time-to-first-token or inter-token histogram and no ``finished_reason`` counter, so the
TTFT, ITL and abort-ratio SLO rules are not generated for it (documented gap); it has no paged KV
cache and no preemption either. When the server grows those series, set the matching
``EngineMetrics`` fields of ``ONNX_GENAI`` and the rules, tests and panels follow.
"""

_DCGM_GAUGES: Final = (
    "DCGM_FI_DEV_SM_CLOCK", "DCGM_FI_DEV_MEM_CLOCK", "DCGM_FI_DEV_MEMORY_TEMP",
    "DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_DEV_GPU_UTIL",
    "DCGM_FI_DEV_MEM_COPY_UTIL", "DCGM_FI_DEV_ENC_UTIL", "DCGM_FI_DEV_DEC_UTIL",
    "DCGM_FI_DEV_XID_ERRORS", "DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_FB_USED",
    "DCGM_FI_DEV_FB_RESERVED", "DCGM_FI_DEV_VGPU_LICENSE_STATUS",
    "DCGM_FI_DEV_ROW_REMAP_FAILURE", "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
    "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "DCGM_FI_PROF_DRAM_ACTIVE",
)
_DCGM_COUNTERS: Final = (
    "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "DCGM_FI_DEV_PCIE_REPLAY_COUNTER",
    "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL", "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS",
    "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", "DCGM_FI_PROF_PCIE_TX_BYTES",
    "DCGM_FI_PROF_PCIE_RX_BYTES",
)
DCGM_METRICS: Final[Mapping[str, MetricKind]] = {
    **dict[str, MetricKind].fromkeys(_DCGM_GAUGES, "gauge"),
    **dict[str, MetricKind].fromkeys(_DCGM_COUNTERS, "counter"),
}
"""DCGM exporter default counters (labels ``gpu``, ``UUID``, ``Hostname``, ``modelName``)."""

KUBE_STATE_METRICS: Final[Mapping[str, MetricKind]] = {
    "kube_deployment_spec_replicas": "gauge",
    "kube_deployment_status_replicas_available": "gauge",
    "kube_pod_container_status_restarts_total": "counter",
}
"""The kube-state-metrics series the availability rules use (every engine, Ollama included)."""

VLLM: Final = EngineMetrics(
    engine="vllm",
    running="vllm:num_requests_running",
    waiting="vllm:num_requests_waiting",
    ttft_histogram="vllm:time_to_first_token_seconds",
    itl_histogram="vllm:inter_token_latency_seconds",
    generation_tokens="vllm:generation_tokens_total",
    prompt_tokens="vllm:prompt_tokens_total",
    finished_requests="vllm:request_success_total",
    kv_cache_usage="vllm:kv_cache_usage_perc",
    preemptions="vllm:num_preemptions_total",
    e2e_histogram="vllm:e2e_request_latency_seconds",
    prefix_cache_queries="vllm:prefix_cache_queries_total",
    prefix_cache_hits="vllm:prefix_cache_hits_total",
)
ONNX_GENAI: Final = EngineMetrics(
    engine="onnx-genai",
    running="onnxgenai_requests_running",
    waiting="onnxgenai_requests_waiting",
    ttft_histogram=None,
    itl_histogram=None,
    generation_tokens="onnxgenai_generation_tokens_total",
    prompt_tokens="onnxgenai_prompt_tokens_total",
    finished_requests=None,
    e2e_histogram="onnxgenai_e2e_request_latency_seconds",
    http_requests="onnxgenai_requests_total",
)
OLLAMA: Final = EngineMetrics(
    engine="ollama", running=None, waiting=None, ttft_histogram=None, itl_histogram=None,
    generation_tokens=None, prompt_tokens=None, finished_requests=None,
)
"""Ollama: no ``/metrics`` (ollama#3144). Only kube-state-metrics availability is monitored."""

ENGINE_METRICS: Final[Mapping[Engine, EngineMetrics]] = {"vllm": VLLM, "onnx-genai": ONNX_GENAI,
                                                          "ollama": OLLAMA}

KNOWN_METRICS: Final[Mapping[str, Mapping[str, MetricKind]]] = {
    "vllm": VLLM_METRICS,
    "onnx-genai": ONNX_SERVER_METRICS,
    "ollama": {},
    "dcgm": DCGM_METRICS,
    "kube-state-metrics": KUBE_STATE_METRICS,
}
"""Every metric source a rule or panel may target, with its known series."""

_HISTOGRAM_SUFFIXES: Final = ("_bucket", "_sum", "_count")
_METRIC_TOKEN: Final = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_NOT_METRICS: Final = frozenset({
    # PromQL functions, aggregations, keywords and the label names our expressions use.
    "sum", "max", "min", "avg", "count", "rate", "increase", "irate", "histogram_quantile",
    "clamp_min", "clamp_max", "absent", "by", "without", "on", "ignoring", "group_left",
    "group_right", "and", "or", "unless", "le", "model_name", "finished_reason", "deployment",
    "pod", "namespace", "vector", "scalar", "bool", "label_values", "offset", "time",
    "serving_engine", "gpu", "Hostname", "UUID", "modelName", "topk", "bottomk", "route", "status",
})


def series_names(kind_map: Mapping[str, MetricKind]) -> frozenset[str]:
    """All series names a metric map produces (histograms expand to _bucket/_sum/_count)."""
    names: set[str] = set()
    for name, kind in kind_map.items():
        if kind == "histogram":
            names.update(f"{name}{suffix}" for suffix in _HISTOGRAM_SUFFIXES)
        else:
            names.add(name)
    return frozenset(names)


def metric_names_in(expr: str) -> frozenset[str]:
    """The metric names a PromQL expression references (a lexical scan, good enough for ours).

    Strips string literals, label matchers, ``[5m]`` ranges and numbers, then keeps identifiers
    that are not PromQL keywords/functions or label names. Recording-rule outputs (``a:b:c``
    names this package defines) are returned too; callers decide what counts as known.
    """
    text = re.sub(r'"(?:[^"\\]|\\.)*"', " ", expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\$\{?[A-Za-z_]+\}?", " ", text)
    found: set[str] = set()
    for match in _METRIC_TOKEN.finditer(text):
        token = match.group(0)
        start = match.start()
        if start > 0 and (text[start - 1].isdigit() or text[start - 1] == "."):
            continue  # the tail of a number like 1e-9
        if token in _NOT_METRICS or re.fullmatch(r"e\d*", token):
            continue
        rest = text[match.end():].lstrip()
        if rest.startswith("(") and ":" not in token:
            continue  # a function call
        found.add(token)
    return frozenset(found)


def known_series(*sources: str) -> frozenset[str]:
    """The union of series names of the given sources (keys of ``KNOWN_METRICS``)."""
    out: set[str] = set()
    for source in sources:
        out |= series_names(KNOWN_METRICS[source])
    return frozenset(out)
