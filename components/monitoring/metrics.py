"""The metric names each serving engine (and the GPU exporter) is known to expose.

Every rule and dashboard panel is checked against these lists (``tests/monitoring``), so a typo or
a metric an engine no longer exports fails a test instead of producing an alert that never fires.

The serving engines' series and roles are part of each engine's registration
(``components.domain.engines``, data in ``components.domain.metrics``); ``ENGINE_METRICS`` and
``KNOWN_METRICS`` are derived from the registrations. Defined here: the DCGM exporter's
``etc/default-counters.csv`` (FIELD.md 5.3), kube-state-metrics, and the deprecated vLLM names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from components.domain.engines import CLUSTER_ENGINES
from components.domain.metrics import (
    OLLAMA,
    ONNX_GENAI,
    ONNX_SERVER_METRICS,
    VLLM,
    VLLM_METRICS,
    EngineMetrics,
    MetricKind,
)

__all__ = [
    "DCGM_METRICS", "ENGINE_METRICS", "KNOWN_METRICS", "KUBE_STATE_METRICS", "OLLAMA", "ONNX_GENAI",
    "ONNX_SERVER_METRICS", "VLLM", "VLLM_DEPRECATED", "VLLM_METRICS", "EngineMetrics", "MetricKind",
    "known_series", "metric_names_in", "series_names",
]

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

ENGINE_METRICS: Final[Mapping[str, EngineMetrics]] = {
    e.name: e.metrics for e in CLUSTER_ENGINES if e.metrics is not None}
"""Cluster engine -> its metric names by role (from the registrations, ``components.domain.engines``)."""

KNOWN_METRICS: Final[Mapping[str, Mapping[str, MetricKind]]] = {
    **{e.name: e.series for e in CLUSTER_ENGINES},
    "dcgm": DCGM_METRICS,
    "kube-state-metrics": KUBE_STATE_METRICS,
}
"""Every metric source a rule or panel may target, with its known series (each registered cluster engine,
the GPU exporter, kube-state-metrics)."""

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
