"""What the recording monitor does beside the SDK's: refuse duplicate URNs, and stay cheap per registration."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pulumi
import pytest

from slmctl.recorder import record


def _things(count: int, name: str = "thing") -> None:
    for i in range(count):
        pulumi.CustomResource("slm:test:Thing", f"{name}-{i}", {"index": i})


def test_two_resources_with_one_urn_are_refused_as_the_engine_refuses_them() -> None:
    def program() -> None:
        _things(3)
        pulumi.CustomResource("slm:test:Thing", "thing-1", {"index": 99})

    with pytest.raises(ValueError, match=r"duplicate resource URN urn:pulumi:dev::slm-platform::pulumi:pulumi:Stack\$slm:test:Thing::thing-1: two resources"):
        record(program)


def test_the_same_name_under_another_type_is_another_urn() -> None:
    def program() -> None:
        _things(2)
        pulumi.CustomResource("slm:test:Other", "thing-1", {})

    assert len(record(program).registrations) == 3


def test_worker_threads_keep_one_event_loop_each_and_close_them_all(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK's mock monitor needs a loop in the worker thread that runs each call: one per thread, not per
    registration (each is an epoll instance and a socket pair), and none left open when ``record`` returns.
    Secret inputs take the SDK's own path (a plain answer needs no loop: ``test_monitor_answers.py``)."""
    made: list[asyncio.AbstractEventLoop] = []
    original = asyncio.new_event_loop
    main = threading.main_thread()

    def counted() -> Any:
        loop = original()
        if threading.current_thread() is not main:
            made.append(loop)
        return loop

    monkeypatch.setattr(asyncio, "new_event_loop", counted)
    def secrets() -> None:
        for i in range(60):
            pulumi.CustomResource("slm:test:Thing", f"thing-{i}", {"index": pulumi.Output.secret(i)})

    recording = record(secrets)
    assert len(recording.registrations) == 60
    assert 1 <= len(made) <= 8  # the default executor's workers (min(32, cores + 4)), not 60
    assert all(loop.is_closed() for loop in made)
