"""The recording monitor answers each registration exactly as the SDK's ``MockMonitor`` would.

``RecordingMonitor`` builds most answers from the request's Struct instead of the SDK's round trip
through Python (``slmctl.recorder.RecordingMonitor``). Here every registration is answered both ways
and the answers must be the same bytes: the program sees what the SDK's mock, and so the engine's
stand-in, would have told it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pulumi
import pytest
from pulumi.runtime import mocks as pulumi_mocks

from slmctl import recorder
from slmctl.loader import load_stack_file
from slmctl.plan import record_stack

ROOT = Path(__file__).resolve().parents[2]


class Answers:
    """Each registration's two answers, and which path the recording monitor took."""

    def __init__(self) -> None:
        self.direct: list[str] = []
        self.sdk_path: list[str] = []
        self.mismatched: list[str] = []


@pytest.fixture
def answers(monkeypatch: pytest.MonkeyPatch) -> Answers:
    seen = Answers()
    own = recorder.RecordingMonitor._answer

    def both(self: recorder.RecordingMonitor, request: Any, urn: str, wire: bytes, recorded: dict[str, Any]) -> Any:
        direct = own(self, request, urn, wire, recorded)
        sdk = pulumi_mocks.MockMonitor.RegisterResource(self, request)
        if direct is None:
            seen.sdk_path.append(request.name)
        else:
            seen.direct.append(request.name)
            if direct.SerializeToString() != sdk.SerializeToString():
                seen.mismatched.append(urn)
        return sdk

    monkeypatch.setattr(recorder.RecordingMonitor, "_answer", both)
    return seen


@pytest.mark.parametrize("stack", ["local", "dev", "staging", "prod"])
@pytest.mark.parametrize("mode", [{}, {"first_preview": True}], ids=["update", "first-preview"])
def test_every_answer_of_a_shipped_stack_is_the_sdk_mocks_answer(answers: Answers, stack: str,
                                                                  mode: dict[str, bool]) -> None:
    record_stack(load_stack_file(ROOT / "stacks" / f"Pulumi.{stack}.yaml"), **mode)
    assert answers.mismatched == []
    # Most registrations take the direct path (those with secrets are the rest): the comparison is real.
    assert len(answers.direct) > 4 * len(answers.sdk_path) > 0


def _unknown() -> pulumi.Output[Any]:
    loop = asyncio.get_event_loop()
    value, known = loop.create_future(), loop.create_future()
    value.set_result(None)
    known.set_result(False)
    return pulumi.Output(set(), value, known)


def _special_inputs() -> None:
    """Inputs whose Python form does not re-serialize to themselves, beside plain ones."""
    thing = "slm:test:Thing"
    pulumi.CustomResource(thing, "plain", {"count": 3, "ratio": 0.5, "on": False, "list": [1, None, "x"],
                                           "nested": {"deep": {"empty": {}, "items": []}}})
    pulumi.CustomResource(thing, "secret", {"password": pulumi.Output.secret("s3cret")})
    pulumi.CustomResource(thing, "nested-secret", {"outer": {"token": pulumi.Output.secret("t")},
                                                   "tokens": [pulumi.Output.secret("a"), "b"]})
    pulumi.CustomResource(thing, "nested-null", {"outer": {"gone": None, "kept": 1}})
    pulumi.CustomResource(thing, "unknown", {"later": _unknown(), "nested": {"later": _unknown()}})
    pulumi.CustomResource(thing, "asset", {"file": pulumi.StringAsset("hello")})
    parent = pulumi.CustomResource(thing, "referenced", {})
    pulumi.CustomResource(thing, "reference", {"target": parent})


@pytest.mark.parametrize("first_preview", [False, True], ids=["update", "first-preview"])
def test_special_values_take_the_sdks_path_and_plain_ones_do_not(answers: Answers, first_preview: bool) -> None:
    recorder.record(_special_inputs, first_preview=first_preview)
    assert answers.mismatched == []
    sdk_path = {"secret", "nested-secret", "nested-null", "asset", "reference"}
    if not first_preview:  # outside a dry run the SDK reads an unknown as absent
        sdk_path.add("unknown")
    assert set(answers.sdk_path) == sdk_path
    assert set(answers.direct) == {"plain", "referenced", "unknown"} - sdk_path


def test_a_mocks_answer_the_direct_path_cannot_write_is_serialized_by_the_sdk(monkeypatch: pytest.MonkeyPatch,
                                                                             answers: Answers) -> None:
    """An output of a type the direct path does not model (here an asset) is serialized as the SDK does."""
    original = recorder.PlatformMocks.new_resource

    def with_asset(self: recorder.PlatformMocks, args: Any) -> Any:
        resource_id, state = original(self, args)
        return resource_id, {**state, "report": pulumi.StringAsset("computed")}

    monkeypatch.setattr(recorder.PlatformMocks, "new_resource", with_asset)
    recorder.record(lambda: pulumi.CustomResource("slm:test:Thing", "plain", {"count": 1}))
    assert answers.direct == ["plain"]
    assert answers.mismatched == []
