"""Issue 12.11: the gate must not break or hang on any single bad input, and says when it failed itself.

* a rule that raises becomes a finding of that rule on that resource; every other policy still runs;
* YAML aliases are bounded (an alias bomb is refused, not expanded);
* an internal error of the gate exits 3 (never 1, which means "a mandatory violation"); a bad policy
  config exits 2;
* every user string in the Markdown report is inert (no links, images, HTML, table breaks);
* Analyze calls are windowed so a large stack does not end in CANCELLED (benchmarks/gate_scale.py
  measures 10,000 resources).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pulumi_kubernetes as k8s
import pytest
from markdown_it import MarkdownIt
from pulumi_policy import ResourceValidationArgs

from policies.pack import Spec, _resource_validator
from policies.rules.memory_fit import ModelShape, shape_annotations
from slmctl import gate as gate_mod
from slmctl.gate import GateResult, PolicyMeta, Violation, format_result, run_gate
from slmctl.loader import StackFileError, load_stack_file
from slmctl.recorder import record

REPO_ROOT = Path(__file__).resolve().parents[2]
DIGEST = "@sha256:" + "a" * 64
PHI = ModelShape(parameters_billion=3.84, layers=32, kv_heads=8, head_dim=128, quantization="bf16")


def _vllm(name: str, annotations: dict[str, str], max_len: str = "16384") -> None:
    k8s.apps.v1.Deployment(name, metadata={"name": name, "namespace": "inference", "annotations": annotations},
                           spec={"selector": {"matchLabels": {"app": name}}, "template": {
                               "metadata": {"labels": {"app": name}}, "spec": {"containers": [{
                                   "name": "vllm", "image": "vllm/vllm-openai:v0.11.0" + DIGEST,
                                   "args": ["--model", "microsoft/Phi-4-mini-instruct", "--max-model-len", max_len],
                                   "env": [{"name": "HF_TOKEN", "value": "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01"}],
                               }]}}})


def _hostile_program() -> None:
    zero_heads = {**shape_annotations(PHI, gpu_memory_gib=16), "slm.io/model-kv-heads": "0"}
    _vllm("zero-heads", zero_heads)
    _vllm("infinite-context", shape_annotations(PHI, gpu_memory_gib=16), max_len="inf")
    _vllm("nan-context", shape_annotations(PHI, gpu_memory_gib=16), max_len="nan")


@pytest.fixture(scope="module")
def hostile() -> GateResult:
    return run_gate(record(_hostile_program, stack="prod"), environment="prod")


@pytest.mark.parametrize("name", ["zero-heads", "infinite-context", "nan-context"])
def test_a_hostile_value_is_a_finding_and_every_other_policy_still_runs(hostile: GateResult, name: str) -> None:
    on = {v.policy for v in hostile.violations if v.resource == name}
    # the literal token is still found: the other policies ran on the same resource
    assert {"slm-k8s-no-secrets-in-env", "slm-k8s-run-as-non-root", "slm-serving-memory-fit"} <= on
    fit = [v.detail for v in hostile.violations if v.resource == name and v.policy == "slm-serving-memory-fit"]
    assert fit
    assert all(v.level == "mandatory" for v in hostile.violations if v.policy == "slm-serving-memory-fit")
    assert hostile.resources_analyzed == 3


def test_the_zero_head_count_is_reported_as_an_invalid_shape(hostile: GateResult) -> None:
    (fit,) = [v.detail for v in hostile.violations if v.resource == "zero-heads"
              and v.policy == "slm-serving-memory-fit"]
    assert "found an incomplete or invalid model shape" in fit


class _Collect:
    def __init__(self) -> None:
        self.messages: list[str] = []

    def __call__(self, message: str, urn: str | None = None) -> None:
        del urn
        self.messages.append(message)


def _boom(type_: str, props: Any, cfg: Any) -> list[str]:
    del type_, cfg
    return [str(1 / len(props["spec"]["containers"]))]


@pytest.mark.parametrize(("props", "exc"), [({"spec": {"containers": []}}, "ZeroDivisionError"),
                                            ({"spec": {}}, "KeyError"), ({}, "KeyError")])
def test_any_rule_exception_becomes_a_finding_of_that_rule_on_that_resource(props: dict[str, Any],
                                                                            exc: str) -> None:
    """The mechanism lives in the pack's adapter, so it covers every policy, including future ones."""
    validate = _resource_validator(Spec("x-policy", "d", ("X",), "M/M/M", "", rule=_boom))
    report = _Collect()
    validate(ResourceValidationArgs("kubernetes:apps/v1:Deployment", props, "urn:x", "web", None, None, {}),
             report)  # type: ignore[arg-type]
    (message,) = report.messages
    assert message.startswith(f"web (kubernetes:apps/v1:Deployment): cannot verify: the rule failed on this "
                              f"input ({exc} at test_gate_resilience.py:")


# --------------------------------------------------------------------------- YAML aliases


def _bomb(levels: int, fan: int = 9) -> str:
    names = [f"l{i}" for i in range(levels + 1)]
    body = [f"    {names[0]}: &{names[0]} [{', '.join(['lol'] * fan)}]"]
    body += [f"    {names[i]}: &{names[i]} [{', '.join([f'*{names[i - 1]}'] * fan)}]" for i in range(1, levels + 1)]
    return "config:\n  slm-platform:settings:\n    tier: dev\n" + "\n".join(body) + "\n"


def _load_in_subprocess(path: Path) -> subprocess.CompletedProcess[str]:
    code = ("import sys; from pathlib import Path; from slmctl.loader import load_stack_file, StackFileError\n"
            "try:\n    load_stack_file(Path(sys.argv[1]))\nexcept StackFileError as e:\n"
            "    print('\\n'.join(e.problems)); sys.exit(2)\n")
    return subprocess.run([sys.executable, "-c", code, str(path)], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=60, check=False)  # a hang (the old behaviour) fails here


@pytest.mark.parametrize("text", [
    _bomb(9),  # the classic billion laughs, ~700 bytes
    _bomb(6, fan=30),
    "config:\n  slm-platform:settings:\n    a: &a {x: 1, y: 2, z: 3}\n    b: &b {p: *a, q: *a, r: *a, s: *a}\n"
    + "".join(f"    c{i}: &c{i} {{p: *{'b' if i == 0 else f'c{i - 1}'}, q: *{'b' if i == 0 else f'c{i - 1}'}, "
              f"r: *{'b' if i == 0 else f'c{i - 1}'}, s: *{'b' if i == 0 else f'c{i - 1}'}}}\n" for i in range(12)),
], ids=["billion-laughs", "wide-fan", "nested-maps"])
def test_an_alias_bomb_is_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "Pulumi.bomb.yaml"
    path.write_text(text, encoding="utf-8")
    assert len(text.encode()) < 2000
    result = _load_in_subprocess(path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "YAML aliases expand to more than 100,000 values" in result.stdout


def test_deep_nesting_is_a_stack_file_error_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.deep.yaml"
    path.write_text("config:\n  x: " + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    with pytest.raises(StackFileError, match="nests too deeply"):
        load_stack_file(path)


def test_a_few_ordinary_aliases_still_load(tmp_path: Path) -> None:
    text = (REPO_ROOT / "stacks" / "Pulumi.dev.yaml").read_text(encoding="utf-8")
    text = text.replace("owner: ml-platform@contoso.example", "owner: &owner ml-platform@contoso.example", 1)
    assert "&owner" in text
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(text + "  slm-platform:owner-copy: *owner\n", encoding="utf-8")
    assert load_stack_file(path).config["slm-platform:owner-copy"] == "ml-platform@contoso.example"


# --------------------------------------------------------------------------- exit codes


def _tiny() -> None:
    k8s.core.v1.ConfigMap("cm", metadata={"name": "cm", "namespace": "inference"}, data={"a": "b"})


def test_a_gate_that_cannot_start_exits_3_not_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from slmctl.cli import _run_gate
    from slmctl.errors import classify

    broken = tmp_path / "pack"
    broken.mkdir()
    (broken / "__main__.py").write_text("raise SystemExit('pack is broken')\n", encoding="utf-8")
    monkeypatch.setattr(gate_mod, "POLICY_DIR", broken)
    loaded = load_stack_file(REPO_ROOT / "stacks" / "Pulumi.dev.yaml")
    with pytest.raises(gate_mod.GateError) as err:
        _run_gate(loaded, record(_tiny, stack="dev"), "text", None)
    code, lines = classify(err.value)
    assert code == 3
    assert lines[0].startswith("internal error: GateError: the policy pack in")


def test_an_invalid_policy_config_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from policies import environments
    from slmctl.cli import _run_gate
    from slmctl.errors import UsageError, classify

    (tmp_path / "dev.json").write_text(json.dumps({"slm-no-such-policy": "mandatory"}), encoding="utf-8")
    monkeypatch.setattr(environments, "CONFIG_DIR", tmp_path)
    loaded = load_stack_file(REPO_ROOT / "stacks" / "Pulumi.dev.yaml")
    with pytest.raises(UsageError) as err:
        _run_gate(loaded, record(_tiny, stack="dev"), "text", None)
    assert classify(err.value) == (2, ["invalid policy pack config:", "slm-no-such-policy: unknown policy"])


# --------------------------------------------------------------------------- Markdown


HOSTILE = ("[click](https://evil.example/x) ![pixel](https://evil.example/p.png) <img src=x onerror=alert(1)> "
           "| injected | cell |\n## heading @security-team www.evil.example `code` **bold**")


def _result() -> GateResult:
    policy = PolicyMeta("slm-k8s-namespace", "d", "mandatory")
    violation = Violation("slm-k8s-namespace", "mandatory", f"{HOSTILE}: {HOSTILE}", "urn:x", "n[a](b)|`x`", "t")
    exemption = gate_mod.Exemption("slm-k8s-namespace", "n`|x", "a|b`c", HOSTILE, 1)
    return GateResult("prod", "prod`|x", "p", "slm-platform", "1.0.0", [policy], [violation], [exemption], 1,
                      "stacks/Pulumi.prod.yaml", 0.1)


def test_markdown_report_renders_user_strings_inert() -> None:
    html = MarkdownIt("commonmark").enable("table").render(format_result(_result(), "markdown"))
    assert "<a " not in html
    assert "<img" not in html
    assert "<h2" not in html
    assert "<strong>bold" not in html
    for row in html.split("<tr>")[1:]:
        assert row.count("<td>") in (0, 4), row
    assert "&lt;img src=x" in html
