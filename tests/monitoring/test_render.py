"""``render_monitoring`` writes rule files, promtool tests and dashboards under the output dir."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from components.monitoring.render import dump_yaml
from tests.monitoring.support import cpu_only_settings, make_settings, render_settings


def test_writes_one_rule_and_test_file_per_group_and_the_dashboards(tmp_path: Path) -> None:
    written = render_settings(make_settings(), tmp_path)
    rel = sorted(str(p.relative_to(tmp_path)) for p in written)
    assert rel == sorted([
        "rules/slm-serving-phi-ollama.yaml", "tests/slm-serving-phi-ollama.test.yaml",
        "rules/slm-serving-phi-onnx.yaml", "tests/slm-serving-phi-onnx.test.yaml",
        "rules/slm-serving-phi-vllm.yaml", "tests/slm-serving-phi-vllm.test.yaml",
        "rules/slm-gpu.yaml", "tests/slm-gpu.test.yaml",
        "dashboards/slm-serving.json", "dashboards/slm-gpu.json",
    ])
    assert all(p.is_file() for p in written)
    assert json.loads((tmp_path / "dashboards" / "slm-serving.json").read_text())["uid"] == "slm-serving"


def test_cpu_only_stack_renders_no_gpu_artefacts(tmp_path: Path) -> None:
    names = {p.name for p in render_settings(cpu_only_settings(), tmp_path)}
    assert "slm-gpu.yaml" not in names
    assert "slm-gpu.json" not in names


def test_integral_floats_are_written_as_ints(tmp_path: Path) -> None:
    assert yaml.safe_load(dump_yaml({"a": 2.0, "b": [0.5, 3.0]})) == {"a": 2, "b": [0.5, 3]}
    assert "2.0" not in dump_yaml({"a": 2.0})


def test_rendering_is_deterministic(tmp_path: Path) -> None:
    first = {p.name: p.read_text() for p in render_settings(make_settings(), tmp_path / "a")}
    second = {p.name: p.read_text() for p in render_settings(make_settings(), tmp_path / "b")}
    assert first == second
