"""The offline recorder drops the SDK's versioned type aliases; nothing a plan or the gate reads changes.

A real ``pulumi up`` needs the aliases (``__main__.py`` keeps them); offline they cost a fifth of a plan's CPU.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pytest
from stack_support import REPO_ROOT, STACK_NAMES

from slmctl import recorder
from slmctl.loader import load_stack_file
from slmctl.plan import make_plan


def _plan_counting_aliases(stack: str, monkeypatch: pytest.MonkeyPatch, *, type_aliases: bool) -> tuple[Any, int]:
    sent: list[int] = []
    original = recorder.RecordingMonitor.RegisterResource

    def counting(self: recorder.RecordingMonitor, request: Any) -> Any:
        sent.append(len(request.aliases))
        return original(self, request)

    monkeypatch.setattr(recorder.RecordingMonitor, "RegisterResource", counting)
    plan = make_plan(load_stack_file(REPO_ROOT / "stacks" / f"Pulumi.{stack}.yaml"), type_aliases=type_aliases)
    monkeypatch.setattr(recorder.RecordingMonitor, "RegisterResource", original)
    return plan, sum(sent)


@pytest.mark.parametrize("stack", STACK_NAMES)
def test_plan_is_byte_identical_without_type_aliases(stack: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with_aliases, sent_with = _plan_counting_aliases(stack, monkeypatch, type_aliases=True)
    without, sent_without = _plan_counting_aliases(stack, monkeypatch, type_aliases=False)
    # Only the aliases the program writes itself remain (the serving workloads' moves, issue 16).
    assert sent_without == sum(len(r.aliases) for r in without.recording.registrations)
    assert sent_with > 0  # they really were sent (Kubernetes kinds carry some too: local has 9, prod 1,600)
    assert without.to_json() == with_aliases.to_json()  # URNs, types, parents, inputs, dependencies, outputs
    # and everything the gate sends the analyzer: property dependencies, providers, options
    assert without.recording.registrations == with_aliases.recording.registrations


def test_only_pure_type_aliases_are_dropped() -> None:
    def program() -> None:
        kept = [pulumi.Alias(name="old-name"), pulumi.Alias(type_="slm:test:Old", parent=pulumi.ROOT_STACK_RESOURCE)]
        pulumi.CustomResource("slm:test:Thing", "thing", {}, pulumi.ResourceOptions(
            aliases=[pulumi.Alias(type_="slm:test/v1:Thing"), *kept]))
        pulumi.CustomResource("slm:test:Plain", "plain", {}, pulumi.ResourceOptions(
            aliases=[pulumi.Alias(type_="slm:test/v1:Plain")]))

    sent: dict[str, int] = {}
    original = recorder.RecordingMonitor.RegisterResource

    def counting(self: recorder.RecordingMonitor, request: Any) -> Any:
        sent[request.name] = len(request.aliases)
        return original(self, request)

    recorder.RecordingMonitor.RegisterResource = counting  # type: ignore[method-assign]
    try:
        recorder.record(program)
    finally:
        recorder.RecordingMonitor.RegisterResource = original  # type: ignore[method-assign]
    assert {k: v for k, v in sent.items() if k in {"thing", "plain"}} == {"thing": 2, "plain": 0}  # a rename or re-parent alias a program writes stays
