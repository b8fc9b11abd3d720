"""The recorder pauses the cyclic collector while a program registers, and gives it back unchanged."""

from __future__ import annotations

import gc

import pulumi
import pytest

from slmctl.recorder import record


def _program(seen: list[tuple[bool, int]]) -> None:
    seen.append((gc.isenabled(), gc.get_freeze_count()))
    pulumi.ComponentResource("slm:test:Box", "box")


def test_registration_runs_without_the_collector_and_restores_it() -> None:
    seen: list[tuple[bool, int]] = []
    assert gc.isenabled()
    record(lambda: _program(seen))
    enabled_during, frozen_during = seen[0]
    assert not enabled_during  # no full collections over the provider SDK heap while registering
    assert frozen_during > 0  # what existed before the run is not traversed either
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0  # nothing stays frozen: a process recording many times frees its garbage


def test_a_disabled_collector_stays_disabled() -> None:
    gc.disable()
    try:
        record(lambda: _program([]))
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_the_collector_is_restored_when_the_program_fails() -> None:
    def failing() -> None:
        msg = "boom"
        raise RuntimeError(msg)

    with pytest.raises(RuntimeError, match="boom"):
        record(failing)
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0


def test_the_cli_keeps_what_it_recorded_frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    """One command, one process: after recording, the collector only traverses what comes next."""
    from slmctl import recorder

    monkeypatch.setattr(recorder, "_KEEP_FROZEN", True)
    try:
        before = len(gc.get_objects())
        record(lambda: _program([]))
        assert gc.isenabled()
        assert gc.get_freeze_count() >= before  # everything alive then, and what the run kept
    finally:
        gc.unfreeze()


def test_the_slmctl_entry_point_keeps_recordings_frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    from slmctl import cli, recorder

    monkeypatch.setattr(recorder, "_KEEP_FROZEN", False)
    monkeypatch.setattr(cli, "app", lambda **_: None)
    try:
        cli.main()
        assert recorder._KEEP_FROZEN  # the process-wide choice main() makes
    finally:
        gc.unfreeze()
