"""Dashboards: built by grafana-foundation-sdk, data source is a variable, panels read known metrics."""

from __future__ import annotations

from typing import Any

from components.monitoring.dashboards import (
    DATASOURCE_VARIABLE,
    GPU_UID,
    SERVING_UID,
    build_dashboards,
    panel_specs,
)
from components.monitoring.metrics import VLLM_DEPRECATED, known_series, metric_names_in
from components.monitoring.rules import RECORDED_SERIES

SOURCES = {"vllm": ("vllm",), "onnx-genai": ("onnx-genai",), "dcgm": ("dcgm",), "recorded": ()}


def _targets(board: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in board["panels"] for t in p.get("targets", [])]


def test_gpu_dashboard_only_with_gpus() -> None:
    assert set(build_dashboards(gpu=True)) == {SERVING_UID, GPU_UID}
    assert set(build_dashboards(gpu=False)) == {SERVING_UID}


def test_datasource_is_a_variable_everywhere() -> None:
    for board in build_dashboards(gpu=True).values():
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert variables[DATASOURCE_VARIABLE]["type"] == "datasource"
        assert variables[DATASOURCE_VARIABLE]["query"] == "prometheus"
        for panel in board["panels"]:
            assert panel["datasource"] == {"type": "prometheus", "uid": f"${{{DATASOURCE_VARIABLE}}}"}, panel["title"]


def test_panels_have_unique_ids_titles_and_targets() -> None:
    for board in build_dashboards(gpu=True).values():
        titles = [p["title"] for p in board["panels"]]
        assert len(titles) == len(set(titles))
        for panel in board["panels"]:
            assert panel["targets"], panel["title"]
            ref_ids = [t["refId"] for t in panel["targets"]]
            assert len(ref_ids) == len(set(ref_ids))


def test_serving_dashboard_covers_the_required_views() -> None:
    titles = {p["title"] for p in build_dashboards(gpu=False)[SERVING_UID]["panels"]}
    assert {"Requests running", "Requests waiting (queue)", "Time to first token", "Inter-token latency",
            "Generated tokens per second", "KV-cache usage", "Preemptions per second", "Abort ratio",
            "Cost per 1M generated tokens (USD, list price)"} <= titles


def test_gpu_dashboard_covers_the_required_views() -> None:
    titles = {p["title"] for p in build_dashboards(gpu=True)[GPU_UID]["panels"]}
    assert {"GPU utilization", "Framebuffer used", "Temperature", "Power", "XID errors (last code)"} <= titles


def test_every_panel_query_reads_known_metrics_of_its_source() -> None:
    for spec in panel_specs(gpu=True):
        for query in spec.queries:
            used = metric_names_in(query.expr)
            assert used, query.expr
            allowed = known_series(*SOURCES[query.source]) | (RECORDED_SERIES if query.source == "recorded" else set())
            assert used <= allowed, (spec.title, sorted(used - allowed))


def test_no_deprecated_vllm_name_anywhere_in_the_json() -> None:
    for board in build_dashboards(gpu=True).values():
        for expr in _targets(board):
            assert not metric_names_in(expr) & VLLM_DEPRECATED
            assert "gpu_cache_usage_perc" not in expr
            assert "time_per_output_token_seconds" not in expr


def test_rendered_json_is_what_the_panel_specs_say() -> None:
    board = build_dashboards(gpu=True)[GPU_UID]
    specs = [s for s in panel_specs(gpu=True) if s.queries[0].source == "dcgm"]
    assert _targets(board) == [q.expr for s in specs for q in s.queries]
