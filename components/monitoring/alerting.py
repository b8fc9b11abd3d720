"""Where alerts go: the typed receivers and severity routes, rendered two ways (pure).

* ``alertmanager_config`` — the in-cluster Alertmanager's ``alertmanager.yaml`` (one receiver per
  severity holding every configured e-mail / webhook / PagerDuty target; the chart's ``Watchdog``
  heartbeat goes to a silent receiver). ``MonitoringStack`` stores it in a Secret (the values carry
  webhook URLs and routing keys) that kube-prometheus-stack mounts through ``configSecret``;
  ``slmctl render`` writes it with placeholders and ``amtool`` checks its routing tree.
* ``action_group_plan`` — the Azure Monitor action groups of the managed path (one per routed
  severity); each Prometheus alert rule names the group of its severity.

Secret values arrive as a mapping ``key -> value`` (the keys ``AlertReceiver.secret`` names) so the
same function renders real values (inside a secret ``Output``) and placeholders (in files).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from components.monitoring.spec import AlertReceiver, AlertRouting, MonitoringMode, ReceiverKind

SILENT_RECEIVER: Final = "silent"
"""Receives the chart's always-firing ``Watchdog`` heartbeat (it exists to prove the pipeline)."""
GROUP_BY: Final = ("alertname", "namespace", "model_name", "Hostname", "gpu")
ROUTES_ANNOTATION: Final = "slm.io/alert-routes"
"""On the config Secret: ``{severity: [receiver kinds]}`` (no secrets), what the stack invariant reads."""
CONFIG_SECRET_NAME: Final = "alertmanager-slm"  # noqa: S105 (a Secret's name)
CONFIG_SECRET_KEY: Final = "alertmanager.yaml"  # noqa: S105 (a key name inside the Secret)
MANAGED_SMTP_STAND_IN: Final = "action-group.invalid:25"
PAGERDUTY_AZURE_WEBHOOK: Final = "https://events.pagerduty.com/integration/{key}/enqueue"
"""PagerDuty's Azure Monitor integration endpoint (its Events API takes the routing key in the path)."""


def severity_receiver(severity: str) -> str:
    """The Alertmanager receiver (and Azure action group suffix) of one severity."""
    return f"sev-{severity}"


def placeholders(monitoring: AlertRouting) -> dict[str, str]:
    """A stand-in for every secret the receivers read (what rendered files carry): an https URL
    under ``.invalid`` naming the key, valid wherever Alertmanager expects a URL or a string."""
    return {key: f"https://secret.invalid/{key.replace(':', '/')}" for key in monitoring.secret_keys()}


def _secret(secrets: Mapping[str, str], key: str | None) -> str:
    if key is None or key not in secrets:
        msg = f"alert secret {key} is not set; pass it in alert_secrets (pulumi config set --secret {key} <value>)"
        raise ValueError(msg)
    return secrets[key]


def _alertmanager_targets(receiver: AlertReceiver, secrets: Mapping[str, str]) -> dict[str, list[dict[str, Any]]]:
    if receiver.kind == ReceiverKind.EMAIL:
        return {"email_configs": [{"to": ", ".join(receiver.to), "send_resolved": True}]}
    if receiver.kind == ReceiverKind.WEBHOOK:
        return {"webhook_configs": [{"url": _secret(secrets, receiver.secret), "send_resolved": True}]}
    return {"pagerduty_configs": [{"routing_key": _secret(secrets, receiver.secret),
                                   "send_resolved": True}]}


def alertmanager_config(monitoring: AlertRouting, secrets: Mapping[str, str], *,
                        mode: MonitoringMode) -> dict[str, Any]:
    """The native Alertmanager configuration of the receivers and severity routes."""
    receivers: list[dict[str, Any]] = [{"name": SILENT_RECEIVER}]
    routes: list[dict[str, Any]] = [{"receiver": SILENT_RECEIVER, "matchers": ['alertname="Watchdog"']}]
    for severity, names in sorted(monitoring.routes.items()):
        merged: dict[str, list[dict[str, Any]]] = {}
        for name in names:
            for kind, targets in _alertmanager_targets(monitoring.receivers[name], secrets).items():
                merged.setdefault(kind, []).extend(targets)
        receivers.append({"name": severity_receiver(severity), **merged})
        routes.append({"receiver": severity_receiver(severity), "matchers": [f'severity="{severity}"']})
    fallback = (severity_receiver("warning") if "warning" in monitoring.routes
                else next((r["name"] for r in receivers[1:]), SILENT_RECEIVER))
    config: dict[str, Any] = {
        "route": {"receiver": fallback, "group_by": list(GROUP_BY), "group_wait": "30s",
                  "group_interval": "5m", "repeat_interval": "4h", "routes": routes},
        "receivers": receivers,
    }
    smtp = monitoring.smtp
    if smtp is None and mode == MonitoringMode.AZURE_MANAGED:
        # The managed path's action groups send the e-mail; this file then models their routing
        # (what amtool checks), so the relay it names is a stand-in under .invalid.
        config["global"] = {"smtp_smarthost": MANAGED_SMTP_STAND_IN, "smtp_from": "azure-monitor@action-group.invalid"}
    if smtp is not None:
        glob: dict[str, Any] = {"smtp_smarthost": smtp.smarthost, "smtp_from": smtp.sender,
                                "smtp_require_tls": True}
        if smtp.username is not None:
            glob["smtp_auth_username"] = smtp.username
        if smtp.password_secret is not None:
            glob["smtp_auth_password"] = _secret(secrets, smtp.password_secret)
        config["global"] = glob
    return config


def route_summary(monitoring: AlertRouting) -> dict[str, list[str]]:
    """``{severity: [receiver kinds]}``: what is routed where, without a secret (an annotation)."""
    return {sev: sorted(monitoring.receivers[n].kind.value for n in names if n in monitoring.receivers)
            for sev, names in sorted(monitoring.routes.items())}


@dataclass(frozen=True, kw_only=True)
class ActionGroupPlan:
    """One Azure Monitor action group: its severity and receivers (webhook URIs are secret keys)."""

    severity: str
    emails: tuple[tuple[str, str], ...]
    """(receiver name, address)."""
    webhooks: tuple[tuple[str, str, str], ...]
    """(receiver name, secret config key, URI template with ``{key}``)."""


def action_group_plan(monitoring: AlertRouting) -> list[ActionGroupPlan]:
    """One action group per routed severity (PagerDuty through its Azure Monitor webhook)."""
    plans: list[ActionGroupPlan] = []
    for severity, names in sorted(monitoring.routes.items()):
        emails: list[tuple[str, str]] = []
        webhooks: list[tuple[str, str, str]] = []
        for name in names:
            receiver = monitoring.receivers[name]
            if receiver.kind == ReceiverKind.EMAIL:
                emails.extend((f"{name}-{i}", to) for i, to in enumerate(receiver.to))
            elif receiver.kind == ReceiverKind.WEBHOOK and receiver.secret is not None:
                webhooks.append((name, receiver.secret, "{key}"))
            elif receiver.kind == ReceiverKind.PAGERDUTY and receiver.secret is not None:
                webhooks.append((name, receiver.secret, PAGERDUTY_AZURE_WEBHOOK))
        plans.append(ActionGroupPlan(severity=severity, emails=tuple(emails), webhooks=tuple(webhooks)))
    return plans
