"""AnalyzeStack carries every resource in one message: the gate's limit is the pack's, and a stack above it
is refused as input (exit 2) before the pack starts, instead of failing inside gRPC.

``benchmarks/plan_bench.py --scale`` measures the real sizes (about 3.6 KB per resource, 34.9 MiB at 10,035).
"""

from __future__ import annotations

import json
from pathlib import Path

import pulumi_kubernetes as k8s
import pytest

from slmctl import gate as gate_mod
from slmctl.gate import Requests, run_gate
from slmctl.loader import load_stack_file
from slmctl.plan import record_stack
from slmctl.recorder import record

REPO_ROOT = Path(__file__).resolve().parents[2]
GRPC_DEFAULT = 4 * 1024 * 1024
BIG = 6


def _big() -> None:
    for i in range(BIG):
        k8s.core.v1.ConfigMap(f"cm-{i}", metadata={"name": f"cm-{i}", "namespace": "inference"},
                              data={"blob": "x" * (1024 * 1024)})


def test_a_stack_message_beyond_grpcs_default_reaches_the_pack_and_back() -> None:
    recording = record(_big, stack="dev")
    requests = gate_mod.Requests(recording.registrations)
    size = sum(requests.stack_resource(r).ByteSize() for r in recording.registrations)
    assert size > GRPC_DEFAULT
    result = run_gate(recording, environment="dev")
    assert result.resources_analyzed == BIG
    assert not [v for v in result.violations if "rule failed" in v.message]


def test_a_stack_above_the_limit_is_input_refused_before_the_pack_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    from slmctl.cli import _run_gate
    from slmctl.errors import UsageError, classify

    def no_pack(*args: object, **kwargs: object) -> None:
        msg = "the pack must not start for a message it cannot receive"
        raise AssertionError(msg)

    monkeypatch.setattr(gate_mod, "MAX_MESSAGE_BYTES", 1000)
    monkeypatch.setattr(gate_mod, "PackProcess", no_pack)
    loaded = load_stack_file(REPO_ROOT / "stacks" / "Pulumi.dev.yaml")
    with pytest.raises(UsageError) as err:
        _run_gate(loaded, record(_big, stack="dev"), "text", None)
    code, lines = classify(err.value)
    assert code == 2
    assert len(lines) == 1
    assert f"the stack's {BIG} resources make a " in lines[0]
    assert "above the pack's limit of 1,000 bytes" in lines[0]


def test_a_stack_config_the_pack_cannot_be_started_with_is_input(monkeypatch: pytest.MonkeyPatch) -> None:
    """Linux refuses exec with one environment string above 128 KiB; the engine passes PULUMI_CONFIG alike."""
    from slmctl.cli import _run_gate
    from slmctl.errors import UsageError, classify

    started: list[object] = []
    monkeypatch.setattr(gate_mod.subprocess, "Popen", lambda *a, **k: started.append(a))  # pyright: ignore[reportUnknownLambdaType]
    monkeypatch.setattr(gate_mod, "engine_config", lambda *_: {"slm-platform:settings": "x" * 140_000})
    monkeypatch.setattr(gate_mod.sys, "platform", "linux")
    loaded = load_stack_file(REPO_ROOT / "stacks" / "Pulumi.dev.yaml")
    with pytest.raises(UsageError) as err:
        _run_gate(loaded, record(_big, stack="dev"), "text", None)
    code, lines = classify(err.value)
    assert (code, len(lines)) == (2, 1)
    assert "above the 131,072 bytes Linux passes in one environment variable" in lines[0]
    assert not started


def test_the_pack_gets_the_config_as_the_engine_writes_it() -> None:
    """Go's json.Marshal (PropertyMapToConfig, constructConfig): compact, sorted, HTML-escaped. A config the
    engine can pass must not be refused for the spaces Python's json.dumps would add (~10 % here)."""
    from slmctl.loader import go_json

    settings = {"deployments": {f"d{i:04d}": {"model": "phi-4-mini", "pool": "gpua100",
                                              "replicas": {"max": 2, "min": 2}} for i in range(1300)}}
    spaced = json.dumps({"slm-platform:settings": json.dumps(settings, sort_keys=True)})
    compact = go_json({"slm-platform:settings": go_json(settings)})
    assert len(spaced) > gate_mod.ENV_STRING_MAX > len(compact)  # refused before, passed by the engine
    gate_mod._check_environment_size({"PULUMI_CONFIG": compact})  # pyright: ignore[reportPrivateUsage]
    assert json.loads(json.loads(compact)["slm-platform:settings"]) == settings
    assert go_json({"note": "a <b> & c", "b": 1, "a": "é"}) == '{"a":"é","b":1,"note":"a \\u003cb\\u003e \\u0026 c"}'


def test_a_target_list_the_pack_cannot_be_started_with_is_input_naming_the_variable(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gate_mod.sys, "platform", "linux")
    with pytest.raises(gate_mod.GateInputError, match=r"^the step's target list is [\d,]+ bytes as SLM_POLICY_TARGETS"):
        gate_mod._check_environment_size({"PULUMI_CONFIG": "{}", "SLM_POLICY_TARGETS": "u\n" * 70_000})  # pyright: ignore[reportPrivateUsage]


@pytest.mark.parametrize(("stack", "first_preview"), [("dev", False), ("prod", False), ("prod", True)])
def test_the_recorded_wire_inputs_are_the_messages_the_inputs_build(stack: str, first_preview: bool) -> None:
    """In the process that planned, the gate sends each resource's inputs as the program's request carried
    them (``Recording.wire``): every Analyze and AnalyzeStack message is the one ``inputs`` builds."""
    recording = record_stack(load_stack_file(REPO_ROOT / "stacks" / f"Pulumi.{stack}.yaml"),
                             first_preview=first_preview)
    assert set(recording.wire) == {r.urn for r in recording.registrations if not r.read}
    recorded, rebuilt = Requests(recording.registrations, recording.wire), Requests(recording.registrations)
    for reg in recording.registrations:
        for build in (Requests.analyze, Requests.stack_resource):
            ours, theirs = build(recorded, reg), build(rebuilt, reg)
            assert ours == theirs
            assert ours.SerializeToString(deterministic=True) == theirs.SerializeToString(deterministic=True)
