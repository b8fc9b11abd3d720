"""Alert and recording rules for model serving, generated from the models a stack serves.

One typed model (``RuleGroup`` / ``Rule``) is rendered three ways, so the in-cluster Prometheus, the
Azure Managed Prometheus rule groups and the promtool proof all evaluate the *same* expressions:

* ``to_rule_file`` — a Prometheus rule file (``groups:``), checked by ``promtool check rules``;
* ``to_prometheus_rule_spec`` — the ``spec`` of a ``monitoring.coreos.com/v1`` ``PrometheusRule``;
* ``to_azure_rule_group`` — keyword arguments for ``alertsmanagement.PrometheusRuleGroup``.

Per serving deployment (``model_name`` label = the deployment name, which is what the serving
workloads pass as ``--served-model-name``): TTFT p95, inter-token latency p95, queue backlog, abort
ratio (0/0-safe), metrics absent while replicas are desired, KV-cache saturation and preemptions
(vLLM only), replicas down and crash-looping (every engine — the only signals Ollama allows, D4);
recording rules for generated tokens/s and cost per million tokens. GPU health rules when the
stack runs GPUs (``gpu_telemetry``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from components.monitoring.metrics import ENGINE_METRICS, EngineMetrics
from components.monitoring.spec import MonitoredModel

Severity = Literal["critical", "warning", "info"]
RuleKind = Literal[
    "ttft", "itl", "queue", "kv", "preemption", "abort", "absent", "down", "restarts",
    "gpu-xid", "gpu-xid-other", "gpu-temp", "gpu-row-remap", "gpu-fb", "tokens-rate", "cost",
]
Source = str
"""A metric source: a key of ``metrics.KNOWN_METRICS`` (a registered cluster engine, ``dcgm``,
``kube-state-metrics``)."""

RULE_GROUP_INTERVAL: Final = "1m"
"""Evaluation interval of every group (Azure rule groups accept PT1M..PT15M)."""
RATE_WINDOW: Final = "5m"
KV_CACHE_SATURATION_RATIO: Final = 0.9
GPU_TEMPERATURE_CELSIUS: Final = 85
GPU_FRAMEBUFFER_RATIO: Final = 0.97
RESTARTS_IN_15M: Final = 2
DEFAULT_RUNBOOK_BASE: Final = "docs/runbooks"
AZURE_SEVERITY: Final[Mapping[Severity, int]] = {"critical": 0, "warning": 2, "info": 3}
"""Azure alert severities: 0 Critical, 1 Error, 2 Warning, 3 Informational, 4 Verbose."""
AZURE_SEVERITY_NAME: Final[Mapping[int, Severity]] = {v: k for k, v in AZURE_SEVERITY.items()}

TOKENS_PER_SECOND_RECORD: Final = "model_name:generation_tokens_per_second:rate5m"
COST_PER_MILLION_RECORD: Final = "model_name:cost_usd_per_million_tokens:rate5m"
RECORDED_SERIES: Final = frozenset({TOKENS_PER_SECOND_RECORD, COST_PER_MILLION_RECORD})

ALERT_SUMMARIES: Final[Mapping[str, str]] = {
    "SlmTtftP95AboveSlo": "Time to first token p95 is above the SLO",
    "SlmInterTokenLatencyP95AboveSlo": "Inter-token latency p95 is above the SLO",
    "SlmQueueBacklog": "Requests are queueing beyond the backlog SLO",
    "SlmKvCacheSaturated": "KV cache is nearly full",
    "SlmPreemptions": "vLLM keeps preempting sequences",
    "SlmAbortRatioHigh": "Too many requests are aborted",
    "SlmModelServerAbsent": "Model server metrics are missing while replicas are desired",
    "SlmModelServerDown": "No replica of the model server is available",
    "SlmModelServerRestarting": "Model server containers keep restarting",
    "SlmGpuXidError": "A GPU reported a new fatal XID error",
    "SlmGpuXidWarning": "A GPU reported a new application-level or unlisted XID error",
    "SlmGpuTemperatureHigh": "A GPU is running hot",
    "SlmGpuRowRemapFailure": "A GPU failed to remap a memory row",
    "SlmGpuFramebufferFull": "A GPU's memory is almost full",
}
"""Every alert this module can generate; each has ``docs/runbooks/<alert>.md``."""


@dataclass(frozen=True, kw_only=True)
class Rule:
    """One alerting or recording rule, with what the proof needs to exercise it."""

    expr: str
    kind: RuleKind
    source: Source
    """The metric source the expression reads (checked against ``metrics.KNOWN_METRICS``)."""
    alert: str | None = None
    record: str | None = None
    for_: str | None = None
    """Prometheus duration (``10m``); ``None`` fires on the first failing evaluation."""
    labels: Mapping[str, str] = field(default_factory=dict[str, str])
    annotations: Mapping[str, str] = field(default_factory=dict[str, str])
    deployment: str | None = None
    """The serving deployment the rule is about (``None`` for GPU rules)."""
    threshold: float | None = None
    """The number the expression compares against (or the $/h price for the cost rule)."""

    def __post_init__(self) -> None:
        if (self.alert is None) == (self.record is None):
            msg = f"a rule is either an alert or a record, not both or neither: {self.expr!r}"
            raise ValueError(msg)
        if self.alert is not None and "severity" not in self.labels:
            msg = f"alert {self.alert} needs a severity label for Alertmanager routing"
            raise ValueError(msg)

    @property
    def name(self) -> str:
        """The alert or record name."""
        return self.alert or self.record or ""

    @property
    def for_minutes(self) -> int:
        """``for_`` in whole minutes (0 when unset)."""
        return duration_minutes(self.for_) if self.for_ else 0


@dataclass(frozen=True, kw_only=True)
class RuleGroup:
    """A named group of rules evaluated together."""

    name: str
    rules: tuple[Rule, ...]
    interval: str = RULE_GROUP_INTERVAL


# --------------------------------------------------------------------------- helpers


def duration_minutes(duration: str) -> int:
    """``'10m'`` / ``'1h'`` -> minutes."""
    match = re.fullmatch(r"(\d+)([mh])", duration)
    if match is None:
        msg = f"duration {duration!r} is not whole minutes or hours, e.g. '10m' or '1h'"
        raise ValueError(msg)
    value, unit = int(match.group(1)), match.group(2)
    return value * 60 if unit == "h" else value


def iso8601(duration: str) -> str:
    """Prometheus ``10m`` -> Azure ``PT10M`` (``1h`` -> ``PT1H``)."""
    minutes = duration_minutes(duration)
    hours, rest = divmod(minutes, 60)
    return "PT" + (f"{hours}H" if hours else "") + (f"{rest}M" if rest or not hours else "")


def fmt_number(value: float) -> str:
    """A float as PromQL writes it: ``2``, ``0.15``, ``1e-09`` — no trailing noise."""
    if math.isfinite(value) and float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def runbook_url(runbook_base_url: str | None, alert: str) -> str:
    """Where the runbook for ``alert`` lives (repo-relative unless a base URL is given)."""
    base = (runbook_base_url or DEFAULT_RUNBOOK_BASE).rstrip("/")
    return f"{base}/{alert}.md"


def pod_regex(deployment: str) -> str:
    """Pods of a Deployment: ``<name>-<replicaset hash>-<5 chars>`` (no other Deployment matches)."""
    return f"{deployment}-[a-z0-9]{{5,10}}-[a-z0-9]{{5}}"


# --------------------------------------------------------------------------- builders


def _alert(runbook_base_url: str | None, *, alert: str, kind: RuleKind, source: Source, expr: str,
           for_: str | None, severity: Severity, description: str, deployment: str | None = None,
           threshold: float | None = None, extra_labels: Mapping[str, str] | None = None) -> Rule:
    labels = {"severity": severity, **(extra_labels or {})}
    if deployment is not None:
        labels.setdefault("model_name", deployment)
    return Rule(
        alert=alert, kind=kind, source=source, expr=expr, for_=for_, deployment=deployment,
        threshold=threshold, labels=labels,
        annotations={
            "summary": ALERT_SUMMARIES[alert],
            "description": description,
            "runbook_url": runbook_url(runbook_base_url, alert),
        },
    )


def serving_rules(name: str, dep: MonitoredModel, *, runbook_base_url: str | None = None) -> tuple[Rule, ...]:
    """Recording and alerting rules for one serving deployment, per its engine and SLO."""
    base = runbook_base_url
    engine: Any = dep.engine
    m: EngineMetrics = ENGINE_METRICS[engine]
    sel = f'model_name="{name}"'
    slo = dep.slo
    rules: list[Rule] = []
    if m.generation_tokens is not None:
        tokens_rate = f"sum by (model_name) (rate({m.generation_tokens}{{{sel}}}[{RATE_WINDOW}]))"
        rules.append(Rule(record=TOKENS_PER_SECOND_RECORD, kind="tokens-rate", source=engine,
                          expr=tokens_rate, deployment=name, labels={"serving_engine": engine}))
        price = dep.node_usd_per_hour
        if price is not None and m.running is not None:
            # PromQL has no price table: the node's list price is written in as a constant. One node
            # per replica is assumed (an upper bound when CPU replicas share a node); idle models
            # have no sample rather than an infinite cost.
            rules.append(Rule(
                record=COST_PER_MILLION_RECORD, kind="cost", source=engine, deployment=name,
                threshold=price, labels={"serving_engine": engine},
                expr=(f"({fmt_number(price)} * count by (model_name) ({m.running}{{{sel}}})) "
                      f"/ ({tokens_rate} * 3600 > 0) * 1000000"),
            ))
    latency: tuple[tuple[str, RuleKind, str | None, float, str], ...] = (
        ("SlmTtftP95AboveSlo", "ttft", m.ttft_histogram, slo.ttft_p95_seconds, "time to first token"),
        ("SlmInterTokenLatencyP95AboveSlo", "itl", m.itl_histogram, slo.itl_p95_seconds,
         "inter-token latency"),
    )
    for alert, kind, hist, limit, label in latency:
        if hist is None:
            continue
        rules.append(_alert(
            base, alert=alert, kind=kind, source=engine, deployment=name, threshold=limit,
            for_="10m", severity="warning",
            expr=(f"histogram_quantile(0.95, sum by (le, model_name) "
                  f"(rate({hist}_bucket{{{sel}}}[{RATE_WINDOW}]))) > {fmt_number(limit)}"),
            description=(f"p95 {label} of {{{{ $labels.model_name }}}} has been above the "
                         f"{fmt_number(limit)}s SLO for 10 minutes."),
        ))
    if m.waiting is not None:
        rules.append(_alert(
            base, alert="SlmQueueBacklog", kind="queue", source=engine, deployment=name,
            threshold=slo.queue_backlog_requests, for_="5m", severity="warning",
            expr=f"max by (model_name) ({m.waiting}{{{sel}}}) > {slo.queue_backlog_requests}",
            description=(f"More than {slo.queue_backlog_requests} requests have been waiting on "
                         "{{ $labels.model_name }} for 5 minutes; autoscaling is not keeping up."),
        ))
    if m.kv_cache_usage is not None:
        rules.append(_alert(
            base, alert="SlmKvCacheSaturated", kind="kv", source=engine, deployment=name,
            threshold=KV_CACHE_SATURATION_RATIO, for_="10m", severity="warning",
            expr=(f"max by (model_name) ({m.kv_cache_usage}{{{sel}}}) "
                  f"> {fmt_number(KV_CACHE_SATURATION_RATIO)}"),
            description=(f"KV cache of {{{{ $labels.model_name }}}} has been over "
                         f"{KV_CACHE_SATURATION_RATIO:.0%} for 10 minutes."),
        ))
    if m.preemptions is not None:
        rules.append(_alert(
            base, alert="SlmPreemptions", kind="preemption", source=engine, deployment=name,
            threshold=0, for_="15m", severity="warning",
            expr=f"sum by (model_name) (rate({m.preemptions}{{{sel}}}[{RATE_WINDOW}])) > 0",
            description=("{{ $labels.model_name }} has been preempting sequences for 15 minutes "
                         "(KV cache too small for the load)."),
        ))
    if m.finished_requests is not None:
        finished = m.finished_requests
        rules.append(_alert(
            base, alert="SlmAbortRatioHigh", kind="abort", source=engine, deployment=name,
            threshold=slo.abort_ratio, for_="10m", severity="warning",
            # 0/0-safe: with no traffic the denominator is clamped, so the ratio is 0, not NaN.
            expr=(f'sum by (model_name) (rate({finished}{{{sel},finished_reason="abort"}}'
                  f"[{RATE_WINDOW}])) / clamp_min(sum by (model_name) "
                  f"(rate({finished}{{{sel}}}[{RATE_WINDOW}])), 1e-9) > {fmt_number(slo.abort_ratio)}"),
            description=(f"More than {slo.abort_ratio:.0%} of requests to {{{{ $labels.model_name }}}} "
                         "have been aborted for 10 minutes."),
        ))
    if m.running is not None:
        rules.append(_alert(
            base, alert="SlmModelServerAbsent", kind="absent", source=engine, deployment=name,
            for_="5m", severity="critical",
            # absent() alone would fire whenever KEDA scales the model to zero.
            expr=(f"absent({m.running}{{{sel}}}) and on() "
                  f'(sum(kube_deployment_spec_replicas{{deployment="{name}"}}) > 0)'),
            description=("No metrics from {{ $labels.model_name }} for 5 minutes although replicas "
                         "are desired: the server is down or no longer scraped."),
        ))
    rules.append(_alert(
        base, alert="SlmModelServerDown", kind="down", source="kube-state-metrics",
        deployment=name, for_="15m", severity="critical",
        expr=(f'max by (namespace, deployment) (kube_deployment_spec_replicas{{deployment="{name}"}}) > 0 '
              f"and on (namespace, deployment) max by (namespace, deployment) "
              f'(kube_deployment_status_replicas_available{{deployment="{name}"}}) == 0'),
        description=("Deployment {{ $labels.namespace }}/{{ $labels.deployment }} has had no available "
                     "replica for 15 minutes."),
    ))
    rules.append(_alert(
        base, alert="SlmModelServerRestarting", kind="restarts", source="kube-state-metrics",
        deployment=name, threshold=RESTARTS_IN_15M, for_=None, severity="warning",
        expr=(f"sum by (namespace, pod) (increase(kube_pod_container_status_restarts_total"
              f'{{pod=~"{pod_regex(name)}"}}[15m])) > {RESTARTS_IN_15M}'),
        description=(f"Pod {{{{ $labels.namespace }}}}/{{{{ $labels.pod }}}} restarted more than "
                     f"{RESTARTS_IN_15M} times in 15 minutes."),
    ))
    return tuple(rules)


FATAL_XIDS: Final = (48, 61, 62, 63, 64, 74, 79, 92, 94, 95, 119, 120)
"""XIDs NVIDIA's XID catalogue (docs.nvidia.com/deploy/xid-errors) resolves by resetting the GPU,
rebooting the node or contacting support: uncorrectable ECC (48), internal micro-controller halt
(61, 62), row remapping (63, 64), NVLink (74), fallen off the bus (79), high single-bit ECC rate
(92), contained / uncontained ECC (94, 95), GSP RPC timeout / error (119, 120)."""
APPLICATION_XIDS: Final = (13, 31, 43, 45)
"""XIDs the catalogue resolves by restarting the application: graphics engine exception (13), MMU
fault (31), a channel stopped (43), preemptive cleanup (45). A CUDA bug raises them; they never
page as critical."""
XID_WINDOW: Final = "5m"
"""``DCGM_FI_DEV_XID_ERRORS`` is the LAST XID code, a gauge that never resets: the alerts fire when
it changes to a code (for this window, then resolve), not while a stale code stays."""


def _xid_in(codes: Sequence[int]) -> str:
    return " or ".join(f"DCGM_FI_DEV_XID_ERRORS == {c}" for c in codes)


def gpu_rules(runbook_base_url: str | None = None) -> tuple[Rule, ...]:
    """DCGM exporter health rules (XID, temperature, row remap, framebuffer)."""
    base = runbook_base_url
    by = "max by (Hostname, gpu)"
    where = "GPU {{ $labels.gpu }} on {{ $labels.Hostname }}"
    changed = f"changes(DCGM_FI_DEV_XID_ERRORS[{XID_WINDOW}]) > 0"
    fatal = ", ".join(str(c) for c in FATAL_XIDS)
    return (
        _alert(base, alert="SlmGpuXidError", kind="gpu-xid", source="dcgm", threshold=FATAL_XIDS[0],
               for_=None, severity="critical", expr=f"{by} (({_xid_in(FATAL_XIDS)}) and {changed})",
               description=(f"{where} reported a new fatal XID ({fatal}: reset the GPU or drain the node); "
                            "the alert value is the XID code.")),
        _alert(base, alert="SlmGpuXidWarning", kind="gpu-xid-other", source="dcgm",
               threshold=APPLICATION_XIDS[0], for_=None, severity="warning",
               expr=f"{by} ((DCGM_FI_DEV_XID_ERRORS > 0 unless ({_xid_in(FATAL_XIDS)})) and {changed})",
               description=(f"{where} reported a new XID outside the fatal list (application XIDs "
                            f"{', '.join(str(c) for c in APPLICATION_XIDS)}: restart the workload); the "
                            "alert value is the XID code.")),
        _alert(base, alert="SlmGpuTemperatureHigh", kind="gpu-temp", source="dcgm",
               threshold=GPU_TEMPERATURE_CELSIUS, for_="10m", severity="warning",
               expr=f"{by} (DCGM_FI_DEV_GPU_TEMP) > {GPU_TEMPERATURE_CELSIUS}",
               description=f"{where} has been above {GPU_TEMPERATURE_CELSIUS} °C for 10 minutes."),
        _alert(base, alert="SlmGpuRowRemapFailure", kind="gpu-row-remap", source="dcgm",
               threshold=0, for_=None, severity="critical",
               expr=f"{by} (DCGM_FI_DEV_ROW_REMAP_FAILURE) > 0",
               description=f"{where} failed to remap a memory row: drain the node and replace it."),
        _alert(base, alert="SlmGpuFramebufferFull", kind="gpu-fb", source="dcgm",
               threshold=GPU_FRAMEBUFFER_RATIO, for_="15m", severity="warning",
               expr=(f"{by} (DCGM_FI_DEV_FB_USED / clamp_min(DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE, 1))"
                     f" > {fmt_number(GPU_FRAMEBUFFER_RATIO)}"),
               description=(f"{where} has used more than {GPU_FRAMEBUFFER_RATIO:.0%} of its memory "
                            "for 15 minutes.")),
    )


def build_rule_groups(models: Mapping[str, MonitoredModel], *, gpu_telemetry: bool,
                      runbook_base_url: str | None = None) -> tuple[RuleGroup, ...]:
    """Every rule group of the stack, in a stable order (one group per model, then GPU)."""
    groups = [
        RuleGroup(name=f"slm-serving-{name}",
                  rules=serving_rules(name, dep, runbook_base_url=runbook_base_url))
        for name, dep in sorted(models.items())
    ]
    if gpu_telemetry:
        groups.append(RuleGroup(name="slm-gpu", rules=gpu_rules(runbook_base_url)))
    return tuple(groups)


def alert_names(groups: Sequence[RuleGroup]) -> frozenset[str]:
    """The distinct alert names in ``groups``."""
    return frozenset(r.alert for g in groups for r in g.rules if r.alert)


# --------------------------------------------------------------------------- renderers


def _prometheus_rule(rule: Rule) -> dict[str, Any]:
    out: dict[str, Any] = {"alert": rule.alert} if rule.alert else {"record": rule.record}
    out["expr"] = rule.expr
    if rule.alert and rule.for_:
        out["for"] = rule.for_
    if rule.labels:
        out["labels"] = dict(rule.labels)
    if rule.annotations:
        out["annotations"] = dict(rule.annotations)
    return out


def to_rule_file(groups: Sequence[RuleGroup]) -> dict[str, Any]:
    """A Prometheus rule file: ``{"groups": [...]}`` (what ``promtool check rules`` reads)."""
    return {"groups": [
        {"name": g.name, "interval": g.interval, "rules": [_prometheus_rule(r) for r in g.rules]}
        for g in groups
    ]}


def to_prometheus_rule_spec(group: RuleGroup) -> dict[str, Any]:
    """The ``spec`` of one ``monitoring.coreos.com/v1`` PrometheusRule holding ``group``."""
    return to_rule_file([group])


@dataclass(frozen=True, kw_only=True)
class AzureRuleGroup:
    """Plain keyword arguments for ``alertsmanagement.PrometheusRuleGroup`` and its rules."""

    rule_group_name: str
    interval: str
    description: str
    rules: tuple[Mapping[str, Any], ...]
    """Each mapping is the keyword arguments of one ``PrometheusRuleArgs`` (note ``for_``)."""


def to_azure_rule_group(group: RuleGroup, *, name_prefix: str) -> AzureRuleGroup:
    """The Azure Managed Prometheus form of ``group``: ISO 8601 durations, integer severities."""
    rules: list[Mapping[str, Any]] = []
    for rule in group.rules:
        kwargs: dict[str, Any] = {"expression": rule.expr, "enabled": True,
                                  "labels": dict(rule.labels) or None}
        if rule.alert:
            kwargs["alert"] = rule.alert
            kwargs["severity"] = AZURE_SEVERITY[rule.labels["severity"]]  # type: ignore[index]
            kwargs["annotations"] = dict(rule.annotations)
            if rule.for_:
                kwargs["for_"] = iso8601(rule.for_)
        else:
            kwargs["record"] = rule.record
        rules.append(kwargs)
    return AzureRuleGroup(
        rule_group_name=f"{name_prefix}-{group.name}",
        interval=iso8601(group.interval),
        description=f"slm-platform rules {group.name} (generated from the stack settings)",
        rules=tuple(rules),
    )
