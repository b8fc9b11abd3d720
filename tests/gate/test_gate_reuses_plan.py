"""``slmctl gate`` analyzes what ``slmctl plan`` recorded, and only while nothing that shaped it changed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from stack_support import REPO_ROOT

from slmctl import plan_reuse
from slmctl.loader import PLACEHOLDER_SECRET, load_stack_file
from slmctl.plan import default_out_dir, make_plan
from slmctl.recorder import REDACTED, SECRET_VALUE_SIG

REUSED = "nothing re-planned"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "slmctl", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=600, check=False)


def _findings(stdout: str) -> dict[str, object]:
    document = json.loads(stdout)
    document.pop("seconds", None)  # how long the pack took: the one field that may differ
    return document


@pytest.fixture
def dev_copy(tmp_path: Path) -> Iterator[Path]:
    """dev's stack file outside stacks/: it plans into its own build/dev-<hash>/, removed after."""
    path = tmp_path / "Pulumi.dev.yaml"
    shutil.copyfile(REPO_ROOT / "stacks" / "Pulumi.dev.yaml", path)
    yield path
    shutil.rmtree(default_out_dir("dev", path), ignore_errors=True)


@pytest.mark.slow
def test_gate_reuses_a_fresh_plan_and_finds_the_same(dev_copy: Path) -> None:
    planned = _cli("plan", "--stack-file", str(dev_copy), "--no-gate", "--quiet")
    assert planned.returncode == 0, planned.stderr
    out_dir = default_out_dir("dev", dev_copy)
    assert (out_dir / plan_reuse.RECORDING_NAME).is_file()

    reused = _cli("gate", "--stack-file", str(dev_copy), "--format", "json")
    assert REUSED in reused.stderr, reused.stderr
    (out_dir / plan_reuse.RECORDING_NAME).unlink()
    fresh = _cli("gate", "--stack-file", str(dev_copy), "--format", "json")
    assert REUSED not in fresh.stderr
    assert (reused.returncode, _findings(reused.stdout)) == (fresh.returncode, _findings(fresh.stdout))


@pytest.mark.slow
def test_an_edited_stack_file_is_planned_again(dev_copy: Path) -> None:
    assert _cli("plan", "--stack-file", str(dev_copy), "--no-gate", "--quiet").returncode == 0
    dev_copy.write_text(dev_copy.read_text(encoding="utf-8") + "# edited after the plan\n", encoding="utf-8")
    gated = _cli("gate", "--stack-file", str(dev_copy), "--format", "json")
    assert gated.returncode in {0, 1}, gated.stderr
    assert REUSED not in gated.stderr


@pytest.fixture(scope="module")
def local_plan(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    loaded = load_stack_file(REPO_ROOT / "stacks" / "Pulumi.local.yaml")
    plan = make_plan(loaded)
    out_dir = tmp_path_factory.mktemp("plan")
    plan_reuse.write_recording(loaded, plan.recording, plan.write(out_dir))
    return out_dir, plan


def test_a_fresh_recording_comes_back_with_secret_values_blanked(local_plan: tuple[Path, object]) -> None:
    out_dir, plan = local_plan
    loaded = load_stack_file(REPO_ROOT / "stacks" / "Pulumi.local.yaml")
    assert PLACEHOLDER_SECRET not in (out_dir / plan_reuse.RECORDING_NAME).read_text(encoding="utf-8")
    reused = plan_reuse.reusable_recording(loaded, out_dir)
    assert reused is not None
    original = plan.recording  # type: ignore[attr-defined]
    assert [r.urn for r in reused.registrations] == [r.urn for r in original.registrations]
    secrets = [r for r in reused.registrations if SECRET_VALUE_SIG in json.dumps(r.inputs)]
    assert secrets  # local's API key Secret: the envelope is kept, so the pack still sees a secret
    assert all(REDACTED in json.dumps(r.inputs) for r in secrets)
    for mine, theirs in zip(reused.registrations, original.registrations, strict=True):
        if mine not in secrets:
            assert mine == theirs


def test_changed_code_or_plan_json_makes_the_recording_stale(local_plan: tuple[Path, object],
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             tmp_path: Path) -> None:
    out_dir, _ = local_plan
    loaded = load_stack_file(REPO_ROOT / "stacks" / "Pulumi.local.yaml")
    copy = tmp_path / "copy"
    shutil.copytree(out_dir, copy)
    assert plan_reuse.reusable_recording(loaded, copy) is not None

    (copy / "plan.json").write_text((copy / "plan.json").read_text(encoding="utf-8") + " ", encoding="utf-8")
    assert plan_reuse.reusable_recording(loaded, copy) is None  # plan.json is not what was recorded with it

    monkeypatch.setattr(plan_reuse, "code_digest", lambda root=REPO_ROOT: "another program")
    assert plan_reuse.reusable_recording(loaded, out_dir) is None


def test_the_code_digest_follows_every_program_file(tmp_path: Path) -> None:
    for folder in plan_reuse.CODE_DIRS:
        (tmp_path / folder).mkdir()
    (tmp_path / "components" / "thing.py").write_text("A = 1\n")
    (tmp_path / "policies" / "index.json").write_text("{}\n")
    before = plan_reuse.code_digest(tmp_path)
    (tmp_path / "components" / "thing.py").write_text("A = 2\n")
    after_source = plan_reuse.code_digest.__wrapped__(tmp_path)
    (tmp_path / "policies" / "index.json").write_text('{"chart": "1.0"}\n')
    after_data = plan_reuse.code_digest.__wrapped__(tmp_path)
    assert len({before, after_source, after_data}) == 3


def test_plan_gates_the_registrations_it_just_recorded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from slmctl import cli
    from slmctl import plan as plan_mod

    recorded: list[str] = []
    original = plan_mod.record_stack

    def counting(loaded: object, **kwargs: bool) -> object:
        recorded.append(str(getattr(loaded, "stack", "")))
        return original(loaded, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(plan_mod, "record_stack", counting)
    cli.plan("local", out_dir=tmp_path, quiet=True)  # local passes its gate: no typer.Exit
    assert recorded == ["local"]  # one registration pass
    assert "result: " in capsys.readouterr().out  # though the gate ran on it too


@pytest.mark.slow
def test_gate_after_plan_loads_neither_the_program_nor_the_provider_sdks(dev_copy: Path) -> None:
    """Analyzing a recording needs no program: `gate` after `plan` skips its imports (0.6 s of 1.6 s for prod)."""
    assert _cli("plan", "--stack-file", str(dev_copy), "--no-gate", "--quiet").returncode == 0
    script = ("import sys\nfrom slmctl.cli import main\nsys.argv = ['slmctl', 'gate', '--stack-file', sys.argv[1]]\n"
              "try:\n    main()\nexcept SystemExit:\n    pass\n"
              "print(sorted(m for m in ('stacks.platform', 'components.model_registry', 'pulumi_azure_native',"
              " 'pulumi_kubernetes') if m in sys.modules))")
    found = subprocess.run([sys.executable, "-c", script, str(dev_copy)], cwd=REPO_ROOT, capture_output=True,
                           text=True, timeout=600, check=False)
    assert REUSED in found.stderr, found.stderr
    assert found.stdout.strip().splitlines()[-1] == "[]"
