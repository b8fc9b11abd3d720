"""Shared fixtures-as-functions for the monitoring tests (settings, workloads, promtool)."""

from __future__ import annotations

import copy
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from inference.builders import GGUF_SHA256

from components.monitoring.render import render_monitoring
from components.monitoring.rules import RuleGroup, build_rule_groups
from stacks.monitoring import monitoring_args
from stacks.settings import EnvironmentSettings

REPO_ROOT = Path(__file__).resolve().parents[2]
STACK_FILES = sorted((REPO_ROOT / "stacks").glob("Pulumi.*.yaml"))
PROMTOOL_INSTALL = "apt-get update && apt-get install -y prometheus  # Debian package; gives /usr/bin/promtool"
AMTOOL_INSTALL = "apt-get install -y prometheus-alertmanager  # Debian package; gives /usr/bin/amtool"

_MODEL: dict[str, Any] = {
    "family": "phi4-mini", "parameters_billion": 3.84, "layers": 32, "kv_heads": 8, "head_dim": 128,
    "max_context_tokens": 131072,
    "artifacts": {
        "safetensors": {"repo": "microsoft/Phi-4-mini-instruct",
                        "revision": "cfbefacb99257ffa30c83adab238a50856ac3083"},
        "gguf": {"ollama_tag": "phi4-mini:3.8b-q4_K_M", "sha256": GGUF_SHA256},
        "onnx": {"repo": "microsoft/Phi-4-mini-instruct-onnx",
                 "revision": "1" * 40, "cpu_variant": "cpu_and_mobile/cpu-int4-rtn-block-32-acc-level-4"},
        "foundry": {"format": "Microsoft", "name": "Phi-4-mini-instruct", "version": "1"},
    },
}

BASE: dict[str, Any] = {
    "tier": "dev",
    "name_prefix": "slmdev",
    "tags": {"owner": "ml-platform@contoso.example", "cost_center": "cc-4711"},
    "models": {"phi-4-mini": _MODEL},
    "cluster": {"authorized_ip_ranges": ["203.0.113.0/24"], "pools": {
        "gput4": {"vm_size": "Standard_NC4as_T4_v3", "max_count": 2},
        "cpu": {"vm_size": "Standard_D8ds_v5", "max_count": 3, "spot": True},
    }},
    "deployments": {
        "phi-vllm": {"target": "vllm", "model": "phi-4-mini", "pool": "gput4", "max_model_len_tokens": 8192,
                     "slo": {"ttft_p95_seconds": 1.5, "itl_p95_seconds": 0.2, "queue_backlog_requests": 12,
                             "abort_ratio": 0.02}},
        "phi-ollama": {"target": "ollama", "model": "phi-4-mini", "pool": "cpu"},
        "phi-onnx": {"target": "onnx-genai", "model": "phi-4-mini", "pool": "cpu"},
        "phi-managed": {"target": "foundry", "model": "phi-4-mini"},
    },
}


def settings_dict(**overrides: Any) -> dict[str, Any]:
    """A deep copy of the realistic baseline with top-level keys replaced."""
    data = copy.deepcopy(BASE)
    data.update(copy.deepcopy(overrides))
    return data


def make_settings(**overrides: Any) -> EnvironmentSettings:
    """The realistic baseline (dev: vLLM on a T4, Ollama and ONNX on a CPU spot pool), validated."""
    return EnvironmentSettings.model_validate(settings_dict(**overrides))


def cpu_only_settings() -> EnvironmentSettings:
    """No GPU pool and no vLLM: the GPU rules and dashboard must not appear."""
    data = settings_dict()
    data["cluster"]["pools"].pop("gput4")
    data["deployments"].pop("phi-vllm")
    return EnvironmentSettings.model_validate(data)


STACK_NAMES = [p.name.split(".")[1] for p in STACK_FILES]


def stack_settings(name: str) -> EnvironmentSettings:
    """The validated settings of ``stacks/Pulumi.<name>.yaml`` (validated at test time, not collection)."""
    raw = yaml.safe_load((REPO_ROOT / "stacks" / f"Pulumi.{name}.yaml").read_text())
    return EnvironmentSettings.model_validate(raw["config"]["slm-platform:settings"])


@dataclass(frozen=True, kw_only=True)
class FakeWorkload:
    """Stands in for ``components.serving_workloads.ServingWorkload`` (same attributes)."""

    deployment: str
    engine: str
    namespace: str = "serving"
    service_name: str = ""
    port: int = 8000
    metrics_path: str | None = "/metrics"
    served_model_name: str = ""
    pod_labels: dict[str, str] = field(default_factory=dict)
    gpu: bool = False


def workloads_for(settings: EnvironmentSettings) -> dict[str, FakeWorkload]:
    """One workload per AKS deployment, as the InferenceCluster contract describes them."""
    out: dict[str, FakeWorkload] = {}
    for name, dep in settings.aks_deployments().items():
        ollama = dep.target == "ollama"
        out[name] = FakeWorkload(
            deployment=name, engine=dep.target, service_name=name, port=11434 if ollama else 8000,
            metrics_path=None if ollama else "/metrics",
            served_model_name="phi4-mini:3.8b-q4_K_M" if ollama else name,
            pod_labels={"app.kubernetes.io/name": dep.target, "app.kubernetes.io/instance": name,
                        "app.kubernetes.io/component": "inference", "azure.workload.identity/use": "true"},
            gpu=dep.target == "vllm",
        )
    return out


def rule_groups_for(settings: EnvironmentSettings) -> tuple[RuleGroup, ...]:
    """The rule groups MonitoringStack deploys for ``settings`` (through the stack's mapping)."""
    args = monitoring_args(settings)
    return build_rule_groups(args.models, gpu_telemetry=args.gpu_telemetry, runbook_base_url=args.runbook_base_url)


def render_settings(settings: EnvironmentSettings, out_dir: Path) -> list[Path]:
    """``slmctl render``'s monitoring files for ``settings``."""
    return render_monitoring(monitoring_args(settings), out_dir)


def promtool() -> str:
    """Path to promtool; fails in CI (never a silent skip there), skips locally with the fix."""
    path = shutil.which("promtool")
    if path is not None:
        return path
    if os.environ.get("CI"):
        pytest.fail(f"promtool is not installed; CI must install it: {PROMTOOL_INSTALL}")
    pytest.skip(f"promtool is not installed (CI installs it): {PROMTOOL_INSTALL}")
    raise AssertionError  # unreachable: skip raises


def amtool() -> str:
    """Path to amtool; fails in CI (never a silent skip there), skips locally with the fix."""
    path = shutil.which("amtool")
    if path is not None:
        return path
    if os.environ.get("CI"):
        pytest.fail(f"amtool is not installed; CI must install it: {AMTOOL_INSTALL}")
    pytest.skip(f"amtool is not installed (CI installs it): {AMTOOL_INSTALL}")
    raise AssertionError  # unreachable: skip raises
