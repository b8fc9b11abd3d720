"""Output a new user can trust: where it is written, what each count counts, nothing stale left behind."""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from stack_support import REPO_ROOT, stack_settings, write_stack

from policies.rules.catalog import monthly_usd
from slmctl.cli import progress
from slmctl.diff import diff_documents, format_diff
from slmctl.gate import GateResult, PolicyMeta, Violation, format_result
from slmctl.loader import load_stack_file
from slmctl.plan import BUILD_DIR, Plan, default_out_dir, make_plan, write_atomic


def slmctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "slmctl", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=300, check=False)


@cache
def dev_plan() -> Plan:
    return make_plan(load_stack_file(REPO_ROOT / "stacks" / "Pulumi.dev.yaml"))


class TestStackSelection:
    def test_a_name_and_another_stacks_file_are_refused(self) -> None:
        result = slmctl("plan", "dev", "--stack-file", "stacks/Pulumi.prod.yaml", "--no-gate")
        assert result.returncode == 2
        assert "stack 'dev' does not match --stack-file stacks/Pulumi.prod.yaml" in result.stderr

    def test_a_folder_as_stack_file_is_explained(self) -> None:
        result = slmctl("plan", "--stack-file", "stacks")
        assert result.returncode == 2
        assert "is a folder; pass one stack file such as stacks/Pulumi." in result.stderr

    def test_a_stack_name_pulumi_rejects(self) -> None:
        result = slmctl("plan", "my stack:1")
        assert result.returncode == 2
        assert "not a stack name Pulumi accepts" in result.stderr

    def test_the_details_hint_repeats_the_stack_file(self, tmp_path: Path) -> None:
        path = write_stack(tmp_path, stack_settings("local"), "local")  # a scratch copy, not stacks/Pulumi.local.yaml
        result = slmctl("plan", "--stack-file", str(path), "--out", str(tmp_path / "out"))
        assert result.returncode == 0, result.stderr
        assert f"Details: python -m slmctl gate --stack-file {path} " in result.stdout

    def test_a_scratch_file_of_a_shipped_name_gets_its_own_folder(self, tmp_path: Path) -> None:
        scratch = tmp_path / "Pulumi.dev.yaml"
        assert default_out_dir("dev", REPO_ROOT / "stacks" / "Pulumi.dev.yaml") == BUILD_DIR / "dev"
        assert default_out_dir("dev", scratch) != BUILD_DIR / "dev"
        assert default_out_dir("dev", scratch).parent == BUILD_DIR


class TestPlanJson:
    def test_a_failed_plan_removes_the_stale_plan_json(self, tmp_path: Path) -> None:
        settings = stack_settings("local")
        path = write_stack(tmp_path, settings)
        out = tmp_path / "out"
        assert slmctl("plan", "--stack-file", str(path), "--out", str(out), "--no-gate").returncode == 0
        assert (out / "plan.json").is_file()
        settings["deployments"][next(iter(settings["deployments"]))]["model"] = "nope"
        write_stack(tmp_path, settings)
        result = slmctl("plan", "--stack-file", str(path), "--out", str(out), "--no-gate")
        assert result.returncode == 2
        assert not (out / "plan.json").exists()
        assert "removed" in result.stderr

    def test_writes_are_atomic(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        target = tmp_path / "plan.json"
        write_atomic(target, "old\n")

        def broken_replace(self: Path, other: Path) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(Path, "replace", broken_replace)
        with pytest.raises(OSError, match="No space"):
            write_atomic(target, "new\n")
        assert target.read_text() == "old\n"
        assert [p.name for p in tmp_path.iterdir()] == ["plan.json"]  # no temporary file left behind

    def test_plan_json_carries_the_budget_policys_cost_lines(self) -> None:
        doc = dev_plan().document()
        settings = dev_plan().loaded.settings
        lines = {line["item"]: line for line in doc["estimated_monthly_cost"]}
        assert {"system pool", *(f"pool {name}" for name in settings.cluster.pools)} <= set(lines)
        for name, pool in settings.cluster.pools.items():  # each pool at its max_count, at the catalogue's price
            assert lines[f"pool {name}"]["usd"] == monthly_usd(pool.vm_size, pool.max_count, spot=pool.spot)
        assert lines["scale set deploy-vmss"]["usd"] > 0, "the deploy runner's scale set costs money too"
        assert doc["estimated_monthly_usd"] == pytest.approx(sum(line["usd"] for line in doc["estimated_monthly_cost"]))
        assert not [line for line in doc["estimated_monthly_cost"] if "unpriced" in line]


class TestWhatTheCountsCount:
    def test_the_summary_splits_registrations_like_pulumi_preview(self) -> None:
        plan = dev_plan()
        summary = plan.summary()
        regs = plan.recording.registrations
        assert summary.create == len([r for r in regs if not r.read])
        assert summary.components + summary.providers + summary.resources == summary.create
        assert sum(summary.by_component.values()) == summary.create
        assert set(summary.by_component) >= {"Foundation", "ModelRegistry", "InferenceCluster", "MonitoringStack"}
        assert summary.line().startswith(f"+{summary.create} to create (")

    def test_plan_and_gate_name_what_they_count_and_agree(self, tmp_path: Path) -> None:
        result = slmctl("plan", "dev", "--out", str(tmp_path))
        assert result.returncode == 0, result.stderr
        summary = dev_plan().summary()
        assert f"{len(dev_plan().recording.registrations)} registrations (components, providers and resources)" \
            in result.stdout
        assert f"{summary.resources} resources)" in result.stdout  # the summary line
        assert f"{summary.resources} resources analyzed (custom resources" in result.stdout  # the gate
        assert "Plan: +" in result.stdout
        assert "pool gput4 $" in result.stdout

    def test_without_a_terminal_the_tree_never_splits_a_type_from_its_name(self, tmp_path: Path) -> None:
        result = slmctl("plan", "prod", "--no-gate", "--out", str(tmp_path))
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        plan = make_plan(load_stack_file(REPO_ROOT / "stacks" / "Pulumi.prod.yaml"))
        for r in plan.recording.registrations:
            assert any(f"{r.type} {r.name}" in line for line in lines), f"{r.type} {r.name} split or missing"

    def test_quiet_prints_the_summary_and_the_verdict_only(self, tmp_path: Path) -> None:
        result = slmctl("plan", "local", "--quiet", "--out", str(tmp_path))
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert len(lines) == 2, lines
        assert lines[0].startswith("Plan: +")
        assert lines[1] == "result: PASS"


class TestProgress:
    def test_a_spinner_only_on_a_terminal(self) -> None:
        terminal = Console(file=StringIO(), force_terminal=True)
        piped = Console(file=StringIO())
        with progress("planning", console=terminal) as status:
            assert status is not None
        with progress("planning", console=piped) as nothing:
            assert nothing is None
        with progress("planning", console=terminal, quiet=True) as nothing:
            assert nothing is None


def _render(stack_file: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return slmctl("render", "--stack-file", str(stack_file), "--out", str(out))


class TestRender:
    def test_a_removed_model_leaves_nothing_behind_and_is_named(self, tmp_path: Path) -> None:
        settings = stack_settings("staging")
        path = write_stack(tmp_path, settings, "render")
        out = tmp_path / "out"
        first = _render(path, out)
        assert first.returncode == 0, first.stderr
        removed_name = sorted(settings["deployments"])[0]
        before = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
        assert any(removed_name in p for p in before)
        del settings["deployments"][removed_name]
        write_stack(tmp_path, settings, "render")
        second = _render(path, out)
        assert second.returncode == 0, second.stderr
        after = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
        rendered = {p for p in after if p.split("/")[0] in ("k8s", "monitoring", "edge")}
        wrote = int(second.stdout.split("Wrote ")[1].split(" files")[0])
        assert len(rendered) == wrote  # what it says is what is there
        assert not any(f"/{removed_name}" in p or f"-{removed_name}" in p for p in rendered)
        assert "removed" in second.stdout
        assert before - after
        for gone in before - after:  # each one named
            assert gone in second.stdout


def _changed_dev_plan(tmp_path: Path) -> dict[str, Any]:
    settings = stack_settings("dev")
    settings["deployments"]["phi-4-mini"]["max_model_len_tokens"] = 4096
    settings["cluster"]["pools"]["gput4"]["max_count"] = 2
    return make_plan(load_stack_file(write_stack(tmp_path, settings, "dev"))).document()


class TestDiff:
    def test_property_changes_are_listed_per_resource(self, tmp_path: Path) -> None:
        diff = diff_documents(dev_plan().document(), _changed_dev_plan(tmp_path))
        updates = {c.name: c for c in diff.changes if c.kind == "update"}
        assert diff.count("create") == diff.count("delete") == 0
        pool = next(c for name, c in updates.items() if "gput4" in name)
        assert any(p.path == "maxCount" and p.before == 1 and p.after == 2 for p in pool.properties)
        deployment = next(c for c in updates.values() if c.type == "kubernetes:apps/v1:Deployment")
        assert any("4096" in json.dumps(p.after) for p in deployment.properties)
        assert diff.usd_after > diff.usd_before

    def test_creates_and_deletes_by_urn(self, tmp_path: Path) -> None:
        before = dev_plan().document()
        after = json.loads(json.dumps(before))
        gone = after["resources"].pop()
        after["resources"].append({**gone, "urn": gone["urn"] + "-new", "name": gone["name"] + "-new"})
        diff = diff_documents(before, after)
        assert {(c.kind, c.name) for c in diff.changes} == {("create", gone["name"] + "-new"),
                                                            ("delete", gone["name"])}
        text = format_diff(diff, "text")
        assert text.startswith("Diff dev -> dev: +1 to create, ~0 to update, -1 to delete")
        markdown = format_diff(diff, "markdown")
        assert "| + |" in markdown
        assert "| - |" in markdown

    def test_the_diff_command_and_plan_against(self, tmp_path: Path) -> None:
        a, b = tmp_path / "a.json", tmp_path / "b.json"
        a.write_text(dev_plan().to_json())
        b.write_text(json.dumps(_changed_dev_plan(tmp_path)))
        result = slmctl("diff", str(a), str(b))
        assert result.returncode == 0, result.stderr
        assert "~ maxCount: 1 -> 2" in result.stdout
        markdown = slmctl("diff", str(a), str(b), "--format", "markdown", "--output", str(tmp_path / "d.md"))
        assert markdown.returncode == 0, markdown.stderr
        assert "#### Plan diff" in (tmp_path / "d.md").read_text()
        against = slmctl("plan", "--stack-file", str(tmp_path / "Pulumi.dev.yaml"), "--against", str(a),
                         "--no-gate", "--out", str(tmp_path / "out"))
        assert against.returncode == 0, against.stderr
        assert "~ maxCount: 1 -> 2" in against.stdout

    @pytest.mark.parametrize("content", [None, "not json", "{}"])
    def test_a_bad_plan_file_is_one_line_and_exit_2(self, tmp_path: Path, content: str | None) -> None:
        bad = tmp_path / "bad.json"
        if content is not None:
            bad.write_text(content)
        good = tmp_path / "good.json"
        good.write_text(dev_plan().to_json())
        result = slmctl("diff", str(bad), str(good))
        assert result.returncode == 2
        (line,) = result.stderr.splitlines()
        assert str(bad) in line


class TestGateText:
    @staticmethod
    def result() -> GateResult:
        policies = [PolicyMeta("p-found", "finds", "mandatory"), PolicyMeta("p-clean", "clean", "advisory"),
                    PolicyMeta("p-off", "off", "disabled")]
        violations = [Violation("p-found", "mandatory", "bad thing", urn="urn:x", resource="serving-phi",
                                type="kubernetes:apps/v1:Deployment")]
        return GateResult(environment="dev", stack="dev", project="slm-platform", pack="slm", pack_version="1",
                          policies=policies, violations=violations, exemptions=[], resources_analyzed=3,
                          stack_file="stacks/Pulumi.dev.yaml", seconds=0.1, lines={"serving-phi": 42})

    def test_each_finding_names_its_stack_file_line(self) -> None:
        text = format_result(self.result(), "text")
        assert "[MANDATORY] p-found: bad thing (stacks/Pulumi.dev.yaml:42)" in text

    def test_passed_checks_are_counted(self) -> None:
        text = format_result(self.result(), "text")
        assert "passed: 1   mandatory: 1   advisory: 0   exempted: 0   disabled: 1" in text


def test_repeated_recordings_leave_no_event_loop_to_die_noisily() -> None:
    """`make bench` records the same stacks many times with gc.collect() between: no "Exception ignored"."""
    script = (
        "import gc, json, pathlib, tempfile\n"
        "from benchmarks.fair_floor import replay\n"
        "from benchmarks.plan_bench import dump\n"
        "from slmctl.loader import load_stack_file\n"
        "from slmctl.plan import make_plan\n"
        "from slmctl.recorder import record\n"
        "loaded = load_stack_file(pathlib.Path('stacks/Pulumi.local.yaml'))\n"
        "tree_file = pathlib.Path(tempfile.mkdtemp()) / 'local.json'\n"
        "dump(pathlib.Path('stacks/Pulumi.local.yaml'), tree_file)\n"
        "tree = json.loads(tree_file.read_text())\n"
        "for _ in range(3):\n"
        "    make_plan(loaded)\n"
        "    record(lambda: replay(tree), stack='local')\n"
        "    gc.collect()\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=300, check=False, env={**__import__("os").environ, "PYTHONPATH": str(REPO_ROOT)})
    assert result.returncode == 0, result.stderr
    assert "Exception ignored" not in result.stderr
    assert "Invalid file descriptor" not in result.stderr
