"""The metric catalogue: the expression scanner, deprecated names, and the ONNX server contract."""

from __future__ import annotations

import re

from components.engines.onnx_server.server import Metrics
from components.monitoring.metrics import (
    ENGINE_METRICS,
    ONNX_SERVER_METRICS,
    VLLM_DEPRECATED,
    VLLM_METRICS,
    known_series,
    metric_names_in,
    series_names,
)


def test_scanner_finds_metrics_and_ignores_functions_labels_and_numbers() -> None:
    expr = ('sum by (model_name) (rate(vllm:request_success_total{model_name="x",finished_reason="abort"}[5m])) '
            '/ clamp_min(sum(rate(vllm:request_success_total[5m])), 1e-9) > 0.05 and on() '
            '(sum(kube_deployment_spec_replicas{deployment="x"}) > 0)')
    assert metric_names_in(expr) == {"vllm:request_success_total", "kube_deployment_spec_replicas"}


def test_scanner_sees_histogram_buckets_and_grafana_variables_are_not_metrics() -> None:
    expr = 'histogram_quantile(0.95, sum by (le) (rate(vllm:inter_token_latency_seconds_bucket{model_name=~"$model_name"}[$__rate_interval])))'
    assert metric_names_in(expr) == {"vllm:inter_token_latency_seconds_bucket"}


def test_no_known_vllm_metric_is_deprecated() -> None:
    assert not set(VLLM_METRICS) & VLLM_DEPRECATED
    assert not series_names(VLLM_METRICS) & VLLM_DEPRECATED


def test_engine_roles_name_known_series() -> None:
    sources = {"vllm": "vllm", "onnx-genai": "onnx-genai", "ollama": "ollama"}
    for engine, m in ENGINE_METRICS.items():
        known = known_series(sources[engine])
        for role in ("running", "waiting", "generation_tokens", "prompt_tokens", "finished_requests",
                     "kv_cache_usage", "preemptions", "prefix_cache_queries", "prefix_cache_hits", "http_requests"):
            name = getattr(m, role)
            assert name is None or name in known, (engine, role, name)
        for role in ("ttft_histogram", "itl_histogram", "e2e_histogram"):
            name = getattr(m, role)
            assert name is None or f"{name}_bucket" in known, (engine, role, name)


def test_ollama_has_no_metrics() -> None:
    assert not ENGINE_METRICS["ollama"].has_metrics
    assert known_series("ollama") == frozenset()


def test_onnx_contract_matches_what_the_server_exposes() -> None:
    metrics = Metrics(model_name="phi-onnx")
    metrics.count_request("/v1/chat/completions", 200)
    metrics.observe(seconds=0.3, prompt_tokens=5, generation_tokens=7)
    text = metrics.render()
    typed = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, flags=re.MULTILINE))
    assert typed == dict(ONNX_SERVER_METRICS)
    exposed = {line.split("{")[0] for line in text.splitlines() if line and not line.startswith("#")}
    assert exposed <= known_series("onnx-genai")
    assert all('model_name="phi-onnx"' in line for line in text.splitlines() if line and not line.startswith("#"))
