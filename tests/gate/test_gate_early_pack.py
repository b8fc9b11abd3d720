"""The pack starts beside planning (``slmctl.gate.start_pack``): used only when started as the run needs it,
and never left running, whatever the run ends with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer

from slmctl import gate
from slmctl.cli import app
from slmctl.errors import run
from slmctl.loader import load_stack_file
from slmctl.plan import record_stack
from slmctl.recorder import PROJECT

STACKS = Path(__file__).resolve().parents[2] / "stacks"


def _stopped(pack: gate.PackProcess) -> bool:
    return pack.proc.poll() is not None


def test_a_pack_started_for_the_stack_is_the_one_that_analyzes_it() -> None:
    path = STACKS / "Pulumi.local.yaml"
    pack = gate.start_pack(load_stack_file(path))
    assert pack is not None
    started = pack.proc.pid
    result = gate.run_gate(record_stack(load_stack_file(path)), stack_file=path, pack=pack)
    assert result.resources_analyzed > 0
    assert (pack.proc.pid, pack.channel is not None) == (started, True)  # connected to, not replaced
    assert _stopped(pack)


def test_a_pack_started_for_another_stack_or_scope_is_stopped_and_replaced() -> None:
    """Another stack's levels (PULUMI_STACK), config or targets would judge the wrong thing."""
    dev, prod = STACKS / "Pulumi.dev.yaml", STACKS / "Pulumi.prod.yaml"
    loaded = load_stack_file(prod)
    for wrong, kwargs in ((gate.start_pack(load_stack_file(dev)), {}),
                          (gate.start_pack(loaded),
                           {"targets": [f"urn:pulumi:prod::{PROJECT}::pulumi:pulumi:Stack::x"]})):
        assert wrong is not None
        result = gate.run_gate(record_stack(loaded), stack_file=prod, pack=wrong, **kwargs)
        assert result.environment == "prod"
        assert _stopped(wrong)
        assert wrong.channel is None  # never asked anything


def test_plan_stops_the_early_pack_when_the_stack_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A program that refuses its input (exit 2) must not leave the pack it started running."""
    started: list[gate.PackProcess] = []
    real = gate.start_pack

    def spy(*args: Any, **kwargs: Any) -> gate.PackProcess | None:
        pack = real(*args, **kwargs)
        if pack is not None:
            started.append(pack)
        return pack

    monkeypatch.setattr(gate, "start_pack", spy)

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        msg = "the component refuses this stack"
        raise ValueError(msg)

    monkeypatch.setattr("slmctl.plan.make_plan", refuse)
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text((STACKS / "Pulumi.dev.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    assert run(typer.main.get_command(app), ["plan", "--stack-file", str(path), "--quiet"], "slmctl") == 2
    assert len(started) == 1
    assert _stopped(started[0])


@pytest.mark.parametrize("levels", ["{", '{"no-such-policy": "mandatory"}'])
def test_a_gate_refused_before_analyzing_stops_the_pack_it_was_handed(tmp_path: Path, levels: str) -> None:
    """Bad levels are input (exit 2), found before the first Analyze: the early pack must not stay behind,
    serving nobody, after the CLI has exited."""
    path = STACKS / "Pulumi.dev.yaml"
    loaded = load_stack_file(path)
    pack = gate.start_pack(loaded)
    assert pack is not None
    config = tmp_path / "levels.json"
    config.write_text(levels, encoding="utf-8")
    with pytest.raises(gate.GateInputError):
        gate.run_gate(record_stack(loaded), loaded=loaded, config_path=config, pack=pack)
    assert _stopped(pack)
