"""promtool unit tests generated from the same rules and thresholds the stack deploys.

For every alert: one scenario where synthetic series cross the threshold (the alert must fire, with
its exact labels and annotations, after ``for``; and must still be pending one minute before), and
one or more where they stay on the safe side of it — at the boundary, idle (0/0) or scaled to zero
— where it must stay silent. Recording rules get expected samples. ``promtool test rules`` runs the
files ``render.render_monitoring`` writes; nothing here is hand-maintained per stack.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from components.monitoring.metrics import ENGINE_METRICS, EngineMetrics
from components.monitoring.rules import (
    RESTARTS_IN_15M,
    Rule,
    RuleGroup,
    fmt_number,
)

STEPS: Final = 60
"""Minutes of synthetic data per scenario (longer than any ``for`` plus the rate window)."""
NAMESPACE: Final = "serving"
GPU_LABELS: Final[Mapping[str, str]] = {"gpu": "0", "Hostname": "aks-gput4-0", "UUID": "GPU-0"}
REQUESTS_PER_MINUTE: Final = 100


@dataclass(frozen=True, kw_only=True)
class Scenario:
    """One promtool test case: input series and what must (not) happen."""

    name: str
    series: Mapping[str, str]
    """Series selector -> promtool values notation (``0+10x60``)."""
    fires: bool = False
    eval_minutes: int = 0
    labels: Mapping[str, str] = field(default_factory=dict[str, str])
    """Labels of the expected alert, or of the expected recorded sample."""
    value: float | None = None
    """Expected sample value for a recording rule (``None``: expect no sample)."""
    timeline: tuple[tuple[int, bool], ...] = ()
    """Alerts only: (minute, firing?) checks instead of the fire-at / silent pair, for alerts that
    must fire at one moment and resolve later."""


def _sel(name: str, labels: Mapping[str, str]) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}"


def _const(value: float) -> str:
    return f"{fmt_number(value)}x{STEPS}"


def _ramp(per_minute: float) -> str:
    return f"0+{fmt_number(per_minute)}x{STEPS}"


def _engine(rule: Rule) -> EngineMetrics:
    return ENGINE_METRICS[rule.source]  # type: ignore[index]


def _engine_labels(rule: Rule) -> dict[str, str]:
    labels = {"model_name": rule.deployment or ""}
    if rule.source == "vllm":
        labels["engine"] = "0"  # vLLM's data-parallel rank label; aggregations must drop it
    return labels


def _histogram(base: str, labels: Mapping[str, str], threshold: float, *, slow: bool) -> dict[str, str]:
    """Cumulative buckets around ``threshold``: all requests well above it (slow) or well below."""
    t = threshold
    bounds = [t / 4, t / 2, t, 2 * t, 4 * t, math.inf]
    # slow: every request in (2t, 4t]; fast: every request in (t/4, t/2].
    first_filled = 4 if slow else 1
    out: dict[str, str] = {}
    for i, le in enumerate(bounds):
        le_text = "+Inf" if math.isinf(le) else fmt_number(round(le, 9))
        per_minute = REQUESTS_PER_MINUTE if i >= first_filled else 0
        out[_sel(f"{base}_bucket", {**labels, "le": le_text})] = _ramp(per_minute)
    return out


def scenarios(rule: Rule) -> list[Scenario]:
    """The scenarios that prove ``rule``: firing plus silent cases (alerts), or samples (records)."""
    fire_at = rule.for_minutes + 6
    base = {**_engine_labels(rule)} if rule.deployment else {}
    model = {"model_name": rule.deployment or ""}
    threshold = rule.threshold if rule.threshold is not None else 0.0
    match rule.kind:
        case "ttft" | "itl":
            m = _engine(rule)
            hist = m.ttft_histogram if rule.kind == "ttft" else m.itl_histogram
            assert hist is not None  # noqa: S101
            return [
                Scenario(name="p95 far above the SLO", fires=True, eval_minutes=fire_at, labels=model,
                         series=_histogram(hist, base, threshold, slow=True)),
                Scenario(name="p95 well under the SLO", eval_minutes=fire_at,
                         series=_histogram(hist, base, threshold, slow=False)),
            ]
        case "queue" | "kv":
            m = _engine(rule)
            metric = m.waiting if rule.kind == "queue" else m.kv_cache_usage
            assert metric is not None  # noqa: S101
            above = threshold + 1 if rule.kind == "queue" else round(min(1.0, threshold + 0.05), 4)
            return [
                Scenario(name="above the threshold", fires=True, eval_minutes=fire_at, labels=model,
                         series={_sel(metric, base): _const(above)}),
                Scenario(name="exactly at the threshold", eval_minutes=fire_at,
                         series={_sel(metric, base): _const(threshold)}),
            ]
        case "preemption":
            metric = _engine(rule).preemptions
            assert metric is not None  # noqa: S101
            return [
                Scenario(name="preempting every minute", fires=True, eval_minutes=fire_at, labels=model,
                         series={_sel(metric, base): _ramp(1)}),
                Scenario(name="old preemptions, none now", eval_minutes=fire_at,
                         series={_sel(metric, base): _const(5)}),
            ]
        case "abort":
            metric = _engine(rule).finished_requests
            assert metric is not None  # noqa: S101
            over = min(REQUESTS_PER_MINUTE, math.floor(threshold * REQUESTS_PER_MINUTE) + 1)
            under = math.floor(threshold * REQUESTS_PER_MINUTE / 2)

            def traffic(aborts: int, total: int) -> dict[str, str]:
                return {
                    _sel(metric, {**base, "finished_reason": "abort"}): _ramp(aborts),
                    _sel(metric, {**base, "finished_reason": "stop"}): _ramp(total - aborts),
                }

            return [
                Scenario(name="abort ratio above the SLO", fires=True, eval_minutes=fire_at,
                         labels=model, series=traffic(over, REQUESTS_PER_MINUTE)),
                Scenario(name="abort ratio under the SLO", eval_minutes=fire_at,
                         series=traffic(under, REQUESTS_PER_MINUTE)),
                Scenario(name="no traffic at all (0/0)", eval_minutes=fire_at, series=traffic(0, 0)),
            ]
        case "absent":
            running = _engine(rule).running
            assert running is not None  # noqa: S101
            replicas = _sel("kube_deployment_spec_replicas",
                            {"namespace": NAMESPACE, "deployment": rule.deployment or ""})
            return [
                Scenario(name="replicas desired, no metrics", fires=True, eval_minutes=fire_at,
                         labels=model, series={replicas: _const(1)}),
                Scenario(name="replicas desired, metrics present", eval_minutes=fire_at,
                         series={replicas: _const(1), _sel(running, base): _const(0)}),
                Scenario(name="scaled to zero", eval_minutes=fire_at, series={replicas: _const(0)}),
            ]
        case "down":
            ids = {"namespace": NAMESPACE, "deployment": rule.deployment or ""}
            spec = _sel("kube_deployment_spec_replicas", ids)
            available = _sel("kube_deployment_status_replicas_available", ids)
            return [
                Scenario(name="desired but none available", fires=True, eval_minutes=fire_at, labels=ids,
                         series={spec: _const(1), available: _const(0)}),
                Scenario(name="one available", eval_minutes=fire_at,
                         series={spec: _const(1), available: _const(1)}),
                Scenario(name="scaled to zero", eval_minutes=fire_at,
                         series={spec: _const(0), available: _const(0)}),
            ]
        case "restarts":
            pod = {"namespace": NAMESPACE, "pod": f"{rule.deployment}-5d9c7f6b8d-x7k2p"}
            other = {"namespace": NAMESPACE, "pod": f"{rule.deployment}x-5d9c7f6b8d-x7k2p"}
            container = {"container": "server"}
            return [
                Scenario(name="restarting every minute", fires=True, eval_minutes=fire_at, labels=pod,
                         series={_sel("kube_pod_container_status_restarts_total",
                                      {**pod, **container}): _ramp(1)}),
                Scenario(name=f"{RESTARTS_IN_15M + 1} old restarts, none recent", eval_minutes=fire_at,
                         series={_sel("kube_pod_container_status_restarts_total",
                                      {**pod, **container}): _const(RESTARTS_IN_15M + 1)}),
                Scenario(name="another deployment's pod restarting", eval_minutes=fire_at,
                         series={_sel("kube_pod_container_status_restarts_total",
                                      {**other, **container}): _ramp(1)}),
            ]
        case "gpu-xid" | "gpu-xid-other":
            return _xid_scenarios(rule)
        case "gpu-row-remap" | "gpu-temp":
            metric = {"gpu-row-remap": "DCGM_FI_DEV_ROW_REMAP_FAILURE", "gpu-temp": "DCGM_FI_DEV_GPU_TEMP"}[rule.kind]
            bad = {"gpu-row-remap": 1, "gpu-temp": threshold + 5}[rule.kind]
            expected = {"gpu": GPU_LABELS["gpu"], "Hostname": GPU_LABELS["Hostname"]}
            return [
                Scenario(name="unhealthy GPU", fires=True, eval_minutes=fire_at, labels=expected,
                         series={_sel(metric, GPU_LABELS): _const(bad)}),
                Scenario(name="healthy GPU (at the threshold)", eval_minutes=fire_at,
                         series={_sel(metric, GPU_LABELS): _const(threshold)}),
            ]
        case "gpu-fb":
            expected = {"gpu": GPU_LABELS["gpu"], "Hostname": GPU_LABELS["Hostname"]}
            used, free = _sel("DCGM_FI_DEV_FB_USED", GPU_LABELS), _sel("DCGM_FI_DEV_FB_FREE", GPU_LABELS)
            return [
                Scenario(name="framebuffer 99% used", fires=True, eval_minutes=fire_at, labels=expected,
                         series={used: _const(15840), free: _const(160)}),
                Scenario(name="framebuffer 90% used (vLLM's normal preallocation)", eval_minutes=fire_at,
                         series={used: _const(14400), free: _const(1600)}),
            ]
        case "tokens-rate" | "cost":
            m = _engine(rule)
            assert m.generation_tokens is not None  # noqa: S101
            assert m.running is not None  # noqa: S101
            tokens_per_second = 10
            generation = _sel(m.generation_tokens, base)
            series = {generation: _ramp(tokens_per_second * 60), _sel(m.running, base): _const(1)}
            labels = {"model_name": rule.deployment or "", "serving_engine": rule.source}
            if rule.kind == "tokens-rate":
                return [Scenario(name="10 tokens per second", eval_minutes=10, labels=labels,
                                 series=series, value=tokens_per_second)]
            value = threshold / (tokens_per_second * 3600) * 1_000_000
            return [
                Scenario(name="one replica at 10 tokens per second", eval_minutes=10, labels=labels,
                         series=series, value=value),
                Scenario(name="idle: no cost sample rather than infinity", eval_minutes=10,
                         labels=labels, series={generation: _const(500), _sel(m.running, base): _const(1)}),
            ]
    msg = f"no promtool scenario for rule kind {rule.kind!r}"
    raise ValueError(msg)


def _xid_scenarios(rule: Rule) -> list[Scenario]:
    """The last-XID gauge steps to a code and stays: one alert per new code, resolved after the window.

    Minute 0-9 no XID; 10: the first code; 40: a second, different code (the gauge never returns
    to 0). The alert fires right after each change and is resolved 10 minutes later although the
    gauge still holds the code. The other class's code never fires this alert.
    """
    fatal = rule.kind == "gpu-xid"
    first, second = (79, 48) if fatal else (13, 31)
    other = 13 if fatal else 79
    expected = {"gpu": GPU_LABELS["gpu"], "Hostname": GPU_LABELS["Hostname"]}
    xid = _sel("DCGM_FI_DEV_XID_ERRORS", GPU_LABELS)
    steps = f"0x9 {first}x29 {second}x{STEPS - 40}"
    once = ((9, False), (11, True), (25, False), (39, False), (41, True), (55, False))
    return [
        Scenario(name=f"XID {first} then {second}: fires once per new code, then resolves", labels=expected,
                 series={xid: steps}, timeline=once),
        Scenario(name=f"XID {other} (the other class) stays silent", labels=expected,
                 series={xid: f"0x9 {other}x{STEPS - 10}"},
                 timeline=((11, False), (30, False))),
        Scenario(name="a stale code from before the exporter's window stays silent", labels=expected,
                 series={xid: _const(first)}, timeline=((5, False), (30, False))),
    ]


_TEMPLATE_LABEL: Final = re.compile(r"\{\{ \$labels\.(\w+) \}\}")


def render_annotation(text: str, labels: Mapping[str, str]) -> str:
    """Expand ``{{ $labels.x }}`` the way Prometheus will (our annotations use nothing else)."""
    if "{{" in _TEMPLATE_LABEL.sub("", text):
        msg = f"annotation uses a template construct the test generator cannot expand: {text!r}"
        raise ValueError(msg)
    return _TEMPLATE_LABEL.sub(lambda m: labels.get(m.group(1), ""), text)


def _test_case(rule: Rule, scenario: Scenario) -> dict[str, Any]:
    case: dict[str, Any] = {
        "name": f"{rule.name} [{rule.deployment or 'gpu'}]: {scenario.name}",
        "interval": "1m",
        "input_series": [{"series": s, "values": v} for s, v in sorted(scenario.series.items())],
    }
    if rule.record:
        samples = ([] if scenario.value is None else
                   [{"labels": _sel(rule.record, scenario.labels), "value": scenario.value}])
        case["promql_expr_test"] = [{"expr": rule.record, "eval_time": f"{scenario.eval_minutes}m",
                                     "exp_samples": samples}]
        return case
    checks: list[dict[str, Any]] = []
    if scenario.timeline:
        labels = {**scenario.labels, **rule.labels}
        expected = {"exp_labels": labels,
                    "exp_annotations": {k: render_annotation(v, labels) for k, v in rule.annotations.items()}}
        checks.extend({"eval_time": f"{minute}m", "alertname": rule.alert,
                       "exp_alerts": [expected] if firing else []} for minute, firing in scenario.timeline)
    elif scenario.fires:
        labels = {**scenario.labels, **rule.labels}
        expected = {"exp_labels": labels,
                    "exp_annotations": {k: render_annotation(v, labels) for k, v in rule.annotations.items()}}
        if rule.for_minutes >= 2:
            checks.append({"eval_time": f"{rule.for_minutes - 1}m", "alertname": rule.alert,
                           "exp_alerts": []})
        checks.append({"eval_time": f"{scenario.eval_minutes}m", "alertname": rule.alert,
                       "exp_alerts": [expected]})
    else:
        checks.extend({"eval_time": f"{minute}m", "alertname": rule.alert, "exp_alerts": []}
                      for minute in (scenario.eval_minutes, STEPS - 1))
    case["alert_rule_test"] = checks
    return case


def rule_test_file(group: RuleGroup, rule_file: str) -> dict[str, Any]:
    """A promtool test file for ``group`` (``rule_file`` is relative to the test file)."""
    tests = [_test_case(rule, scenario) for rule in group.rules for scenario in scenarios(rule)]
    return {"rule_files": [rule_file], "evaluation_interval": "1m", "tests": tests}


def covered_alerts(groups: Sequence[RuleGroup]) -> dict[str, set[str]]:
    """For each alert name: which outcomes (``fires`` / ``silent``) the generated tests check."""
    out: dict[str, set[str]] = {}
    for group in groups:
        for rule in group.rules:
            if rule.alert:
                for scenario in scenarios(rule):
                    outcomes = ({"fires" if firing else "silent" for _, firing in scenario.timeline}
                                if scenario.timeline else {"fires" if scenario.fires else "silent"})
                    out.setdefault(rule.alert, set()).update(outcomes)
    return out
