"""promtool proves the rendered rules: they parse, and each alert fires and stays silent on cue."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from components.monitoring.promtool import covered_alerts, render_annotation
from components.monitoring.rules import ALERT_SUMMARIES
from stacks.settings import EnvironmentSettings
from tests.monitoring.support import (
    STACK_NAMES,
    cpu_only_settings,
    make_settings,
    promtool,
    render_settings,
    rule_groups_for,
    stack_settings,
)


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], cwd=cwd, capture_output=True, text=True, check=False)


def _check_and_test(settings: EnvironmentSettings, out: Path) -> None:
    render_settings(settings, out)
    rule_files = sorted(str(p.relative_to(out)) for p in (out / "rules").glob("*.yaml"))
    test_files = sorted(str(p.relative_to(out)) for p in (out / "tests").glob("*.test.yaml"))
    assert rule_files, "no rule files rendered"
    assert len(test_files) == len(rule_files)
    checked = _run("check", "rules", *rule_files, cwd=out)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = _run("test", "rules", *test_files, cwd=out)
    assert tested.returncode == 0, tested.stdout + tested.stderr


SETTINGS_CASES = [
    pytest.param(make_settings(), id="realistic-dev"),
    pytest.param(cpu_only_settings(), id="cpu-only"),
    pytest.param(make_settings(tier="prod", deployments={
        "qwen": {"target": "vllm", "model": "phi-4-mini", "pool": "gput4", "max_model_len_tokens": 4096,
                 "image": "vllm/vllm-openai:v0.11.0@sha256:" + "a" * 64,
                 "slo": {"ttft_p95_seconds": 0.35, "itl_p95_seconds": 0.04, "abort_ratio": 0.5}}},
        cluster={"private_api_server": True, "pools": {"gput4": {"vm_size": "Standard_NC4as_T4_v3"}}}),
        id="prod-tight-slo"),
]


@pytest.mark.parametrize("settings", SETTINGS_CASES)
def test_rendered_rules_pass_promtool_check_and_unit_tests(settings: EnvironmentSettings, tmp_path: Path) -> None:
    _check_and_test(settings, tmp_path)


@pytest.mark.parametrize("stack", STACK_NAMES)
def test_shipped_stack_rules_pass_promtool(stack: str, tmp_path: Path) -> None:
    _check_and_test(stack_settings(stack), tmp_path / stack)


def test_every_alert_has_a_firing_and_a_silent_case() -> None:
    coverage = covered_alerts(rule_groups_for(make_settings()))
    assert set(coverage) == set(ALERT_SUMMARIES)
    for alert, outcomes in coverage.items():
        assert outcomes == {"fires", "silent"}, alert


@pytest.mark.parametrize(("pattern", "replacement"), [
    ("> 1.5", "> 100"),                      # TTFT threshold drifts from the SLO: the firing case fails
    ("1e-9) > 0.02", "1e-9) >= 0"),          # abort ratio fires on idle traffic: the 0/0 case fails
    ("> 12", "> 11"),                        # backlog threshold off by one: the boundary case fails
])
def test_generated_tests_catch_a_rule_that_drifts(pattern: str, replacement: str, tmp_path: Path) -> None:
    render_settings(make_settings(), tmp_path)
    rule_file = tmp_path / "rules" / "slm-serving-phi-vllm.yaml"
    text = rule_file.read_text()
    assert pattern in text
    rule_file.write_text(text.replace(pattern, replacement))
    tested = _run("test", "rules", "tests/slm-serving-phi-vllm.test.yaml", cwd=tmp_path)
    assert tested.returncode != 0
    assert "FAILED" in tested.stdout + tested.stderr


def test_gpu_rule_drift_is_caught(tmp_path: Path) -> None:
    render_settings(make_settings(), tmp_path)
    rule_file = tmp_path / "rules" / "slm-gpu.yaml"
    rule_file.write_text(rule_file.read_text().replace("(DCGM_FI_DEV_GPU_TEMP) > 85", "(DCGM_FI_DEV_GPU_TEMP) > 84"))
    tested = _run("test", "rules", "tests/slm-gpu.test.yaml", cwd=tmp_path)
    assert tested.returncode != 0


def test_test_files_reference_their_rule_file(tmp_path: Path) -> None:
    render_settings(make_settings(), tmp_path)
    for test_file in (tmp_path / "tests").glob("*.test.yaml"):
        doc = yaml.safe_load(test_file.read_text())
        (rule_file,) = doc["rule_files"]
        assert (test_file.parent / rule_file).resolve().is_file()
        assert doc["tests"], test_file


def test_annotation_rendering_rejects_constructs_it_cannot_expand() -> None:
    assert render_annotation("GPU {{ $labels.gpu }} hot", {"gpu": "1"}) == "GPU 1 hot"
    with pytest.raises(ValueError, match="cannot expand"):
        render_annotation("value {{ $value }}", {})


def test_xid_alerts_fire_once_per_new_code_and_resolve(tmp_path: Path) -> None:
    """The generated XID cases: fires after each new fatal code, resolved while the gauge keeps it."""
    render_settings(make_settings(), tmp_path)
    doc = yaml.safe_load((tmp_path / "tests" / "slm-gpu.test.yaml").read_text())
    (case,) = [t for t in doc["tests"] if t["name"].startswith("SlmGpuXidError") and "then" in t["name"]]
    timeline = [(c["eval_time"], bool(c["exp_alerts"])) for c in case["alert_rule_test"]]
    assert timeline == [("9m", False), ("11m", True), ("25m", False), ("39m", False), ("41m", True),
                        ("55m", False)]
    assert _run("test", "rules", "tests/slm-gpu.test.yaml", cwd=tmp_path).returncode == 0


@pytest.mark.parametrize("old_expr", [
    "max by (Hostname, gpu) (DCGM_FI_DEV_XID_ERRORS) > 0",  # the last-XID gauge read as a fault flag
    "max by (Hostname, gpu) (changes(DCGM_FI_DEV_XID_ERRORS[5m]) > 0)",  # changes, but no fatal split
])
def test_xid_cases_reject_the_gauge_read_as_a_flag(old_expr: str, tmp_path: Path) -> None:
    render_settings(make_settings(), tmp_path)
    rule_file = tmp_path / "rules" / "slm-gpu.yaml"
    doc = yaml.safe_load(rule_file.read_text())
    for rule in doc["groups"][0]["rules"]:
        if rule.get("alert") == "SlmGpuXidError":
            rule["expr"] = old_expr
    rule_file.write_text(yaml.safe_dump(doc, sort_keys=False))
    tested = _run("test", "rules", "tests/slm-gpu.test.yaml", cwd=tmp_path)
    assert tested.returncode != 0
    assert "SlmGpuXidError" in tested.stdout + tested.stderr
