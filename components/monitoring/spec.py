"""What ``MonitoringStack`` monitors and where alerts go: plain frozen types, no settings, no tiers.

These are the component's vocabulary (``MonitoringStackArgs`` is built from them) and what the pure
renderers (``rules``, ``alerting``, ``render``) read. ``stacks/monitoring.py`` maps a stack file onto
them; any other program builds them directly. Pulumi's component analyzer reads these annotations
to infer the package schema (``components/package``): closed sets are enums, there are no unions.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from components.domain.engines import CLUSTER_ENGINES

ENGINES = tuple(e.name for e in CLUSTER_ENGINES)
"""The serving engines the rules know the metrics of (``metrics.ENGINE_METRICS``): every registered cluster
engine (``components.domain.engines``)."""


class MonitoringMode(StrEnum):
    """Where Prometheus and Grafana run."""

    IN_CLUSTER = "in-cluster"
    """kube-prometheus-stack (Prometheus, Alertmanager, Grafana) in the cluster."""
    AZURE_MANAGED = "azure-managed"
    """Azure Managed Prometheus (ama-metrics) and Azure Managed Grafana."""


class GpuDriver(StrEnum):
    """Who runs the GPU drivers and the DCGM exporter on the GPU nodes."""

    AKS_MANAGED = "aks-managed"
    """AKS installs the drivers; this component installs the DCGM exporter."""
    GPU_OPERATOR = "gpu-operator"
    """The NVIDIA GPU Operator runs its own dcgm-exporter; this component only scrapes it."""


class ReceiverKind(StrEnum):
    """How a receiver is told."""

    EMAIL = "email"
    WEBHOOK = "webhook"
    PAGERDUTY = "pagerduty"


@dataclass(frozen=True, kw_only=True)
class ServingSlo:
    """A served model's service-level objectives; its alert thresholds."""

    ttft_p95_seconds: float = 2.0
    """Default: 2 s time to first token, p95 over 10 minutes."""
    itl_p95_seconds: float = 0.15
    """Default: 0.15 s between tokens, p95 over 10 minutes."""
    queue_backlog_requests: int = 8
    """Default: alert when more than 8 requests wait for 5 minutes."""
    abort_ratio: float = 0.05
    """Default: alert when more than 5 % of requests are aborted for 10 minutes."""


@dataclass(frozen=True, kw_only=True)
class MonitoredModel:
    """One model deployment served on the cluster; the key it is listed under is its ``model_name``."""

    engine: str
    """``vllm``, ``onnx-genai`` or ``ollama``: which metrics exist (Ollama has none, only replica signals)."""
    slo: ServingSlo = field(default_factory=ServingSlo)
    """Default: the ``ServingSlo`` defaults."""
    node_usd_per_hour: float | None = None
    """Default: none — no cost-per-million-tokens recording rule. The list price of one node of the
    pool the model runs on (Spot-discounted where it applies)."""


@dataclass(frozen=True, kw_only=True)
class MonitoredWorkload:
    """Where a served model's pods are, for its scrape configuration (a ServiceMonitor)."""

    namespace: str
    port: int
    """The container port serving ``metrics_path``."""
    pod_labels: Mapping[str, str]
    """Labels of the model's pods; its Service carries the same (bar pod-only ones)."""
    served_model_name: str
    """The ``model_name`` label the server exports; must equal the workload's key (the rules select it)."""
    metrics_path: str | None = None
    """Default: none — not scraped (Ollama has no ``/metrics``, ollama#3144)."""


@dataclass(frozen=True, kw_only=True)
class AlertReceiver:
    """Who is told: an e-mail list, a webhook or a PagerDuty-style Events API routing key."""

    kind: ReceiverKind
    to: Sequence[str] = ()
    """E-mail addresses (``email`` only). Default: none."""
    secret: str | None = None
    """``webhook``/``pagerduty``: the key in ``MonitoringStackArgs.alert_secrets`` holding the URL or
    routing key. Default: none (required for those kinds)."""


@dataclass(frozen=True, kw_only=True)
class SmtpRelay:
    """The mail relay the in-cluster Alertmanager sends e-mail through (Azure sends its own)."""

    smarthost: str
    """``host:port``; STARTTLS is required."""
    sender: str
    username: str | None = None
    """Default: no SMTP authentication (a relay that trusts the cluster)."""
    password_secret: str | None = None
    """Default: none. The key in ``alert_secrets`` holding the SMTP password."""


@dataclass(frozen=True, kw_only=True)
class AlertRouting:
    """Receivers and which severities notify them."""

    receivers: Mapping[str, AlertReceiver] = field(default_factory=dict[str, AlertReceiver])
    """By a stable name. Default: none."""
    routes: Mapping[str, Sequence[str]] = field(default_factory=dict[str, Sequence[str]])
    """Severity (``critical``, ``warning``, ``info``) -> receiver names. Default: no routes; alerts
    fire but notify nobody (policy ``slm-ops-alert-routing`` reports that from staging up)."""
    smtp: SmtpRelay | None = None
    """Default: none. Required for e-mail receivers in in-cluster mode."""

    def secret_keys(self) -> list[str]:
        """Every ``alert_secrets`` key the receivers and the relay read, sorted."""
        keys = {r.secret for r in self.receivers.values() if r.kind != ReceiverKind.EMAIL and r.secret}
        if self.smtp is not None and self.smtp.password_secret is not None:
            keys.add(self.smtp.password_secret)
        return sorted(keys)

    def errors(self) -> list[str]:
        """What is inconsistent, one message per problem naming the field and the fix."""
        out: list[str] = []
        for name, r in sorted(self.receivers.items()):
            if r.kind == ReceiverKind.EMAIL and not r.to:
                out.append(f"alerting.receivers.{name}.to: an e-mail receiver needs at least one address")
            if r.kind != ReceiverKind.EMAIL and not r.secret:
                out.append(f"alerting.receivers.{name}.secret: a {r.kind.value} receiver needs the "
                           "alert_secrets key holding its URL or routing key")
        for severity, names in sorted(self.routes.items()):
            out += [f"alerting.routes.{severity}: receiver {n!r} is not in alerting.receivers; add it "
                    "or remove it from the route" for n in names if n not in self.receivers]
        return out
