"""Issue 12.8 (secrets) and 12.12 (our own defaults pass their tier), over the real pack under prod levels.

Secrets: JSON inside ConfigMap values, ``binaryData``, names like ``APIKEY`` / ``DB_PASS``, SAS query
strings, ``--api-key sk-...`` in args; and a plain-text value pasted into the stack file for a key the
program reads as a secret is refused by the loader. False positives: ``CONTEXT_TOKENS`` is a count,
not a secret; the shipped Ollama deployment (CPU-scaled through KEDA, it serves no queue metric) passes.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pulumi_kubernetes as k8s
import pytest
import yaml

from slmctl.gate import GateResult, run_gate
from slmctl.loader import StackFileError, load_stack_file
from slmctl.recorder import record

REPO_ROOT = Path(__file__).resolve().parents[2]
IMAGE = "mcr.microsoft.com/azurelinux/base/core:3.0@sha256:" + "a" * 64
SK = "sk-ThisIsNotARealKeyButLooksLikeOne0123456789"
SAS = "https://acct.blob.core.windows.net/w/m.bin?sv=2022-11-02&ss=b&sig=NotARealSignature0123456789abcdef%3D"


def _cm(name: str, data: dict[str, str] | None = None, binary: dict[str, str] | None = None) -> None:
    k8s.core.v1.ConfigMap(name, metadata={"name": name, "namespace": "inference"}, data=data, binary_data=binary)


def _app(name: str, *, env: list[dict[str, Any]] | None = None, args: list[str] | None = None) -> None:
    k8s.apps.v1.Deployment(name, metadata={"name": name, "namespace": "inference"}, spec={
        "selector": {"matchLabels": {"app": name}}, "template": {"metadata": {"labels": {"app": name}}, "spec": {
            "containers": [{"name": "app", "image": IMAGE, "env": env or [], "args": args or []}]}}})


def _program() -> None:
    _cm("cm-json", {"settings.json": json.dumps({"db": {"host": "db", "password": "hunter2-not-real"}})})
    _cm("cm-yaml-lines", {"app.yaml": "log_level: info\napi_key: not-a-real-key-value\n"})
    _cm("cm-binary", binary={"creds": base64.b64encode(f"token={SK}".encode()).decode()})
    _cm("cm-sas", {"weights": SAS})
    _cm("cm-ok", {"app.yaml": "log_level: info\ncontext_tokens: 8192\npassword: ${DB_PASSWORD}\n",
                  "CONTEXT_TOKENS": "8192", "MAX_TOKENS": "512"})
    _app("env-apikey", env=[{"name": "APIKEY", "value": "plain-not-real"}])
    _app("env-db-pass", env=[{"name": "DB_PASS", "value": "plain-not-real"}])
    _app("env-sas", env=[{"name": "WEIGHTS_URL", "value": SAS}])
    _app("args-api-key", args=["--api-key", SK])
    _app("args-api-key-eq", args=["--api-key=plain-not-real-either"])
    _app("env-ok", env=[{"name": "CONTEXT_TOKENS", "value": "8192"}, {"name": "MAX_TOKENS", "value": "512"},
                        {"name": "TOKENIZER_PATH", "value": "/models/tok"}],
         args=["--api-key", "$(ENGINE_API_KEY)", "--max-tokens", "512"])


@pytest.fixture(scope="module")
def result() -> GateResult:
    return run_gate(record(_program, stack="prod"))


def _flagged(result: GateResult) -> set[str]:
    return {v.resource for v in result.violations if v.policy == "slm-k8s-no-secrets-in-env"}


@pytest.mark.parametrize("resource", ["cm-json", "cm-yaml-lines", "cm-binary", "cm-sas", "env-apikey",
                                      "env-db-pass", "env-sas", "args-api-key", "args-api-key-eq"])
def test_a_secret_in_any_shape_is_found(result: GateResult, resource: str) -> None:
    assert resource in _flagged(result)


@pytest.mark.parametrize("resource", ["cm-ok", "env-ok"])
def test_counts_and_references_are_not_secrets(result: GateResult, resource: str) -> None:
    assert resource not in _flagged(result)


def test_no_secret_value_is_echoed(result: GateResult) -> None:
    text = "\n".join(v.message for v in result.violations)
    for value in (SK, "hunter2-not-real", "not-a-real-key-value", "NotARealSignature", "plain-not-real"):
        assert value not in text


@pytest.mark.parametrize("key", ["engineApiKey", "grafanaAdminPassword", "huggingFaceToken"])
def test_the_loader_refuses_a_plain_text_secret_in_the_stack_file(tmp_path: Path, key: str) -> None:
    doc = yaml.safe_load((REPO_ROOT / "stacks" / "Pulumi.dev.yaml").read_text(encoding="utf-8"))
    doc["config"][f"slm-platform:{key}"] = SK
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    with pytest.raises(StackFileError) as err:
        load_stack_file(path)
    (problem,) = err.value.problems
    assert f"config.slm-platform:{key}: found a plain-text value (not shown)" in problem
    assert f"pulumi config set --secret slm-platform:{key} <value>" in problem
    assert SK not in problem


def test_the_loader_accepts_the_encrypted_form(tmp_path: Path) -> None:
    doc = yaml.safe_load((REPO_ROOT / "stacks" / "Pulumi.dev.yaml").read_text(encoding="utf-8"))
    doc["config"]["slm-platform:engineApiKey"] = {"secure": "v1:c2VjcmV0:AAAA"}
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    assert "slm-platform:engineApiKey" in load_stack_file(path).secret_keys


def test_the_shipped_ollama_deployment_passes_prod_levels() -> None:
    """The local stack is the one that ships Ollama; its CPU-scaled ScaledObject is the engine's design."""
    from slmctl.plan import record_stack

    loaded = load_stack_file(REPO_ROOT / "stacks" / "Pulumi.local.yaml")
    result = run_gate(record_stack(loaded), environment="prod")
    ollama = [v for v in result.violations if v.policy in ("slm-serving-autoscaling-metric",
                                                            "slm-k8s-no-secrets-in-env")]
    assert ollama == []
    assert any("ollama" in r.name for r in record_stack(loaded).by_type("kubernetes:keda.sh/v1alpha1:ScaledObject"))


@pytest.mark.parametrize(("engine", "target", "fires"), [("ollama", "phi-ollama", False), ("llamacpp", "phi", False),
                                                         ("vllm", "phi-vllm", True), ("ollama", "phi-vllm", True),
                                                         ("", "phi-ollama", True)])
def test_cpu_scaling_is_allowed_only_for_engines_without_a_queue_metric(engine: str, target: str,
                                                                         fires: bool) -> None:
    from policies.pack import SPECS, run_resource_rule

    spec = next(s for s in SPECS if s.name == "slm-serving-autoscaling-metric")
    props = {"metadata": {"name": "s", "labels": {"slm.io/engine": engine}},
             "spec": {"scaleTargetRef": {"name": target}, "triggers": [{"type": "cpu", "metricType": "Utilization",
                                                                         "metadata": {"value": "70"}}]}}
    found = run_resource_rule(spec, "kubernetes:keda.sh/v1alpha1:ScaledObject", props, {})
    assert bool(found) is fires
