"""Grafana dashboards for model serving and GPUs, built with grafana-foundation-sdk (no JSON by hand).

Two dashboards: *SLM serving* (requests running/waiting, TTFT and inter-token latency p50/p95,
tokens/s, KV-cache usage, preemptions, finished/aborted requests, cost per 1M tokens) and *SLM GPUs*
(utilization, framebuffer, temperature, power, XID errors). Every panel reads the data source from
the ``datasource`` variable, so the same JSON works against the in-cluster Prometheus and Azure
Managed Prometheus. Panels are built from each registered engine's ``metrics.ENGINE_METRICS`` names, and each
panel records which metric source it targets (``PanelSpec.source``) for the known-metrics test.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from grafana_foundation_sdk.builders import dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef

from components.monitoring.metrics import ENGINE_METRICS, EngineMetrics
from components.monitoring.rules import COST_PER_MILLION_RECORD, TOKENS_PER_SECOND_RECORD

DATASOURCE_VARIABLE: Final = "datasource"
DATASOURCE: Final = DataSourceRef(type_val="prometheus", uid=f"${{{DATASOURCE_VARIABLE}}}")
MODEL_FILTER: Final = 'model_name=~"$model_name"'
SERVING_UID: Final = "slm-serving"
GPU_UID: Final = "slm-gpu"
PanelKind = Literal["timeseries", "stat"]
Source = str
"""A registered engine with ``/metrics``, ``dcgm``, or ``recorded`` (our recording rules)."""


@dataclass(frozen=True, kw_only=True)
class Query:
    """One PromQL target of a panel."""

    expr: str
    legend: str
    source: Source
    """Which metric source the expression reads (``recorded`` = our recording rules)."""


@dataclass(frozen=True, kw_only=True)
class PanelSpec:
    """A panel before it becomes a Grafana builder."""

    title: str
    unit: str
    queries: tuple[Query, ...]
    kind: PanelKind = "timeseries"
    description: str = ""
    width: int = 12


def _engine_queries(m: EngineMetrics, source: Source) -> dict[str, list[Query]]:
    """Serving panel queries for one engine, keyed by panel title."""
    tag = f"{{{{model_name}}}} ({source})"
    q: dict[str, list[Query]] = {}

    def add(title: str, expr: str, legend: str) -> None:
        q.setdefault(title, []).append(Query(expr=expr, legend=legend, source=source))

    if m.running:
        add("Requests running", f"sum by (model_name) ({m.running}{{{MODEL_FILTER}}})", tag)
    if m.waiting:
        add("Requests waiting (queue)", f"sum by (model_name) ({m.waiting}{{{MODEL_FILTER}}})", tag)
    for title, hist in (("Time to first token", m.ttft_histogram),
                        ("Inter-token latency", m.itl_histogram),
                        ("End-to-end request latency", m.e2e_histogram)):
        if hist is None:
            continue
        for quantile in ("0.5", "0.95"):
            add(title, f"histogram_quantile({quantile}, sum by (le, model_name) "
                       f"(rate({hist}_bucket{{{MODEL_FILTER}}}[$__rate_interval])))",
                f"p{quantile[2:].ljust(2, '0')} {tag}")
    if m.finished_requests:
        add("Finished requests by reason",
            f"sum by (model_name, finished_reason) (rate({m.finished_requests}{{{MODEL_FILTER}}}"
            "[$__rate_interval]))", f"{{{{finished_reason}}}} {tag}")
        add("Abort ratio",
            f'sum by (model_name) (rate({m.finished_requests}{{{MODEL_FILTER},finished_reason="abort"}}'
            f"[$__rate_interval])) / clamp_min(sum by (model_name) (rate({m.finished_requests}"
            f"{{{MODEL_FILTER}}}[$__rate_interval])), 1e-9)", tag)
    if m.http_requests:
        add("HTTP errors per second",
            f'sum by (model_name, status) (rate({m.http_requests}{{{MODEL_FILTER},status=~"5.."}}'
            "[$__rate_interval]))", f"{{{{status}}}} {tag}")
    if m.prompt_tokens:
        add("Prompt tokens per second",
            f"sum by (model_name) (rate({m.prompt_tokens}{{{MODEL_FILTER}}}[$__rate_interval]))", tag)
    if m.kv_cache_usage:
        add("KV-cache usage", f"max by (model_name) ({m.kv_cache_usage}{{{MODEL_FILTER}}})", tag)
    if m.preemptions:
        add("Preemptions per second",
            f"sum by (model_name) (rate({m.preemptions}{{{MODEL_FILTER}}}[$__rate_interval]))", tag)
    if m.prefix_cache_hits and m.prefix_cache_queries:
        add("Prefix-cache hit ratio",
            f"sum by (model_name) (rate({m.prefix_cache_hits}{{{MODEL_FILTER}}}[$__rate_interval])) / "
            f"clamp_min(sum by (model_name) (rate({m.prefix_cache_queries}{{{MODEL_FILTER}}}"
            "[$__rate_interval])), 1e-9)", tag)
    return q


_UNITS: Final = {
    "Requests running": "short", "Requests waiting (queue)": "short", "Time to first token": "s",
    "Inter-token latency": "s", "End-to-end request latency": "s", "HTTP errors per second": "reqps",
    "Finished requests by reason": "reqps", "Abort ratio": "percentunit",
    "Prompt tokens per second": "short", "KV-cache usage": "percentunit",
    "Preemptions per second": "short", "Prefix-cache hit ratio": "percentunit",
}


def serving_panels() -> tuple[PanelSpec, ...]:
    """The serving-overview panels (vLLM and ONNX server series side by side)."""
    merged: dict[str, list[Query]] = {}
    for source, m in ENGINE_METRICS.items():
        if not m.has_metrics:
            continue
        for title, queries in _engine_queries(m, source).items():
            merged.setdefault(title, []).extend(queries)
    panels = [
        PanelSpec(title="Generated tokens per second", unit="short", queries=(Query(
            expr=f"sum by (model_name) ({TOKENS_PER_SECOND_RECORD}{{{MODEL_FILTER}}})",
            legend="{{model_name}}", source="recorded"),)),
        PanelSpec(title="Cost per 1M generated tokens (USD, list price)", unit="currencyUSD", kind="stat",
                  description="Node list price x replicas / tokens per hour (recording rule); no value "
                              "while a model is idle.",
                  queries=(Query(expr=f"max by (model_name) ({COST_PER_MILLION_RECORD}{{{MODEL_FILTER}}})",
                                 legend="{{model_name}}", source="recorded"),)),
    ]
    panels[1:1] = [PanelSpec(title=title, unit=_UNITS[title], queries=tuple(queries))
                   for title, queries in merged.items()]
    return tuple(panels)


def gpu_panels() -> tuple[PanelSpec, ...]:
    """DCGM exporter panels."""
    legend = "{{Hostname}} GPU {{gpu}}"

    def one(title: str, unit: str, expr: str, kind: PanelKind = "timeseries") -> PanelSpec:
        return PanelSpec(title=title, unit=unit, kind=kind,
                         queries=(Query(expr=expr, legend=legend, source="dcgm"),))

    return (
        one("GPU utilization", "percent", "max by (Hostname, gpu) (DCGM_FI_DEV_GPU_UTIL)"),
        one("Tensor core activity", "percentunit", "max by (Hostname, gpu) (DCGM_FI_PROF_PIPE_TENSOR_ACTIVE)"),
        one("Framebuffer used", "percentunit",
            "max by (Hostname, gpu) (DCGM_FI_DEV_FB_USED / clamp_min(DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE, 1))"),
        one("Framebuffer used (MiB)", "decmbytes", "max by (Hostname, gpu) (DCGM_FI_DEV_FB_USED)"),
        one("Temperature", "celsius", "max by (Hostname, gpu) (DCGM_FI_DEV_GPU_TEMP)"),
        one("Power", "watt", "max by (Hostname, gpu) (DCGM_FI_DEV_POWER_USAGE)"),
        one("XID errors (last code)", "none", "max by (Hostname, gpu) (DCGM_FI_DEV_XID_ERRORS)", "stat"),
        one("Row-remap failures", "none", "max by (Hostname, gpu) (DCGM_FI_DEV_ROW_REMAP_FAILURE)", "stat"),
    )


def _panel(spec: PanelSpec) -> Any:
    builder: Any = timeseries.Panel() if spec.kind == "timeseries" else stat.Panel()
    builder = builder.title(spec.title).datasource(DATASOURCE).unit(spec.unit).height(8).span(spec.width)
    if spec.description:
        builder = builder.description(spec.description)
    for i, query in enumerate(spec.queries):
        builder = builder.with_target(
            prometheus.Dataquery().expr(query.expr).legend_format(query.legend).ref_id(chr(ord("A") + i)))
    return builder


def _datasource_variable() -> Any:
    return dashboard.DatasourceVariable(DATASOURCE_VARIABLE).label("Data source").type("prometheus")


def _dashboard(*, uid: str, title: str, description: str, panels: Sequence[PanelSpec],
               model_variable: bool) -> dict[str, Any]:
    builder = (
        dashboard.Dashboard(title).uid(uid).description(description).tags(["slm-platform"])
        .refresh("30s").time("now-3h", "now").timezone("browser").readonly()
        .with_variable(_datasource_variable())
    )
    if model_variable:
        builder = builder.with_variable(
            dashboard.QueryVariable("model_name").label("Model").datasource(DATASOURCE)
            .query(f"label_values({TOKENS_PER_SECOND_RECORD}, model_name)")
            .multi(True).include_all(True).all_value(".*"))
    for spec in panels:
        builder = builder.with_panel(_panel(spec))
    return json.loads(json.dumps(builder.build(), cls=JSONEncoder))


def serving_dashboard() -> dict[str, Any]:
    """The serving overview dashboard as Grafana JSON."""
    return _dashboard(uid=SERVING_UID, title="SLM serving",
                      description="Model serving SLOs, throughput and cost (vLLM and ONNX server). "
                                  "Ollama has no metrics endpoint (ollama#3144).",
                      panels=serving_panels(), model_variable=True)


def gpu_dashboard() -> dict[str, Any]:
    """The GPU dashboard as Grafana JSON."""
    return _dashboard(uid=GPU_UID, title="SLM GPUs", description="DCGM exporter GPU health.",
                      panels=gpu_panels(), model_variable=False)


def build_dashboards(*, gpu: bool) -> dict[str, dict[str, Any]]:
    """Dashboards by file stem; the GPU one only when the stack has GPUs."""
    out = {SERVING_UID: serving_dashboard()}
    if gpu:
        out[GPU_UID] = gpu_dashboard()
    return out


def panel_specs(*, gpu: bool) -> tuple[PanelSpec, ...]:
    """Every panel spec that ``build_dashboards`` renders (for the metric-name checks)."""
    return serving_panels() + (gpu_panels() if gpu else ())
