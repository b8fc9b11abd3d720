"""The metric names each serving engine exposes, by role (what an engine registration carries).

Sources: vLLM V1 ``vllm/v1/metrics/loggers.py`` (FIELD.md 5.1) and, for the ONNX Runtime GenAI server in
``components/engines/onnx_server``, the contract defined here (``ONNX_SERVER_METRICS``). Ollama exposes no
Prometheus endpoint at all (ollama/ollama#3144, seed defect D4). Plain data: the alert rules and dashboards
(``components/monitoring``) are generated from these.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

MetricKind = Literal["counter", "gauge", "histogram", "info"]


@dataclass(frozen=True, kw_only=True)
class EngineMetrics:
    """The metric names one serving engine exposes, by role, as rules and panels need them.

    ``None`` for a role means the engine has no such metric and the rules that need it are not
    generated for that engine (for example KV-cache saturation on the ONNX server).
    """

    engine: str
    """The registered engine name (``components.domain.engines.ENGINES``)."""
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
