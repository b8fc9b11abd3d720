"""promtool proves the rendered rules: they parse, and each alert fires and stays silent on cue."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from components.monitoring.promtool import covered_alerts, render_annotation
from components.monitoring.render import render_monitoring
from components.monitoring.rules import ALERT_SUMMARIES, build_rule_groups
from stacks.settings import EnvironmentSettings
from tests.monitoring.support import STACK_NAMES, cpu_only_settings, make_settings, promtool, stack_settings


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], cwd=cwd, capture_output=True, text=True, check=False)


def _check_and_test(settings: EnvironmentSettings, out: Path) -> None:
    render_monitoring(settings, out)
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
    coverage = covered_alerts(build_rule_groups(make_settings()))
    assert set(coverage) == set(ALERT_SUMMARIES)
    for alert, outcomes in coverage.items():
        assert outcomes == {"fires", "silent"}, alert


@pytest.mark.parametrize(("pattern", "replacement"), [
    ("> 1.5", "> 100"),                      # TTFT threshold drifts from the SLO: the firing case fails
    ("1e-9) > 0.02", "1e-9) >= 0"),          # abort ratio fires on idle traffic: the 0/0 case fails
    ("> 12", "> 11"),                        # backlog threshold off by one: the boundary case fails
])
def test_generated_tests_catch_a_rule_that_drifts(pattern: str, replacement: str, tmp_path: Path) -> None:
    render_monitoring(make_settings(), tmp_path)
    rule_file = tmp_path / "rules" / "slm-serving-phi-vllm.yaml"
    text = rule_file.read_text()
    assert pattern in text
    rule_file.write_text(text.replace(pattern, replacement))
    tested = _run("test", "rules", "tests/slm-serving-phi-vllm.test.yaml", cwd=tmp_path)
    assert tested.returncode != 0
    assert "FAILED" in tested.stdout + tested.stderr


def test_gpu_rule_drift_is_caught(tmp_path: Path) -> None:
    render_monitoring(make_settings(), tmp_path)
    rule_file = tmp_path / "rules" / "slm-gpu.yaml"
    rule_file.write_text(rule_file.read_text().replace("(DCGM_FI_DEV_GPU_TEMP) > 85", "(DCGM_FI_DEV_GPU_TEMP) > 84"))
    tested = _run("test", "rules", "tests/slm-gpu.test.yaml", cwd=tmp_path)
    assert tested.returncode != 0


def test_test_files_reference_their_rule_file(tmp_path: Path) -> None:
    render_monitoring(make_settings(), tmp_path)
    for test_file in (tmp_path / "tests").glob("*.test.yaml"):
        doc = yaml.safe_load(test_file.read_text())
        (rule_file,) = doc["rule_files"]
        assert (test_file.parent / rule_file).resolve().is_file()
        assert doc["tests"], test_file


def test_annotation_rendering_rejects_constructs_it_cannot_expand() -> None:
    assert render_annotation("GPU {{ $labels.gpu }} hot", {"gpu": "1"}) == "GPU 1 hot"
    with pytest.raises(ValueError, match="cannot expand"):
        render_annotation("value {{ $value }}", {})
