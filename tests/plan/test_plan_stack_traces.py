"""The offline recorder does not build the SDK's per-resource stack traces; nothing a plan or the gate reads changes.

The real engine keeps them (``__main__.py`` never skips them); offline nobody reads them, and building
them walked ~40 frames per resource (``slmctl.recorder.stack_traces_skipped``).
"""

from __future__ import annotations

import contextlib
from typing import Any

import pulumi
import pytest
from stack_support import REPO_ROOT, STACK_NAMES

from slmctl import recorder
from slmctl.loader import load_stack_file
from slmctl.plan import Plan, make_plan


def _plan_counting_frames(stack: str, monkeypatch: pytest.MonkeyPatch, *, sdk_traces: bool) -> tuple[Plan, int]:
    """The stack's plan, and how many stack frames its registrations carried to the monitor."""
    frames: list[int] = []
    original = recorder.RecordingMonitor.RegisterResource

    def counting(self: recorder.RecordingMonitor, request: Any) -> Any:
        if request.type != "pulumi:pulumi:Stack":  # registered by `set_mocks`, before the program; never recorded
            frames.append(len(request.stackTrace.frames) + (1 if request.HasField("sourcePosition") else 0))
        return original(self, request)

    with monkeypatch.context() as patched:
        patched.setattr(recorder.RecordingMonitor, "RegisterResource", counting)
        if sdk_traces:  # the SDK's own behaviour: what a real `pulumi preview` builds
            patched.setattr(recorder, "stack_traces_skipped", contextlib.nullcontext)
        plan = make_plan(load_stack_file(REPO_ROOT / "stacks" / f"Pulumi.{stack}.yaml"))
    return plan, sum(frames)


@pytest.mark.parametrize("stack", STACK_NAMES)
def test_plan_is_byte_identical_without_stack_traces(stack: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with_traces, frames_with = _plan_counting_frames(stack, monkeypatch, sdk_traces=True)
    without, frames_without = _plan_counting_frames(stack, monkeypatch, sdk_traces=False)
    assert frames_with > len(with_traces.recording.registrations)  # the SDK really builds them (SDK upgrade check)
    assert frames_without == 0
    assert without.to_json() == with_traces.to_json()  # URNs, types, parents, inputs, dependencies, outputs
    assert without.recording.registrations == with_traces.recording.registrations  # all the gate sends
    assert without.recording.wire == with_traces.recording.wire


def test_the_sdk_builds_them_again_after_a_recording() -> None:
    """A program run after ``record`` in the same process (the real engine path) gets the SDK's function back."""
    sdk = recorder._SDK_RESOURCE
    before = sdk._get_stack_trace
    seen: list[Any] = []

    def program() -> None:
        seen.append(sdk._get_stack_trace)
        pulumi.CustomResource("slm:test:Thing", "thing", {})

    recorder.record(program)
    assert seen == [recorder._empty_stack_trace]  # skipped while recording
    assert sdk._get_stack_trace is before
