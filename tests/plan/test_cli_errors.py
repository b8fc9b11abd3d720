"""The CLI's one error boundary: every failure that is not a policy finding is short lines and exit 2 or 3.

Exit 1 is reserved for a mandatory policy finding; a traceback a user sees is a bug.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from stack_support import REPO_ROOT, stack_settings, write_stack

from slmctl import errors
from slmctl.cli import app


def slmctl(*args: str, cwd: Path = REPO_ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "slmctl", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, check=False, env={**os.environ, **(env or {})})


def assert_one_line_per_problem(result: subprocess.CompletedProcess[str], code: int) -> list[str]:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    assert "╭" not in result.stderr  # no rich traceback panel either
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines
    assert all(line.startswith("error ") for line in lines), lines
    return lines


def _run(command_app: typer.Typer, *args: str) -> int:
    return errors.run(typer.main.get_command(command_app), list(args), "slmctl")


@pytest.fixture
def probe_app() -> typer.Typer:
    """A second app built the same way, with commands that fail in each way a subcommand can."""
    probe = errors.SlmTyper(add_completion=False)

    @probe.command()
    def fail(kind: str) -> None:
        if kind == "key":
            msg = "vllm"
            raise KeyError(msg)
        if kind == "value":
            msg = "deployments.x.pool: 'gpua10' is not a pool; use one of: gput4"
            raise ValueError(msg)
        if kind == "os":
            raise PermissionError(13, "Permission denied", "/proc/x")
        if kind == "usage":
            raise errors.UsageError(["first problem", "second problem"])
        if kind == "interrupt":
            raise KeyboardInterrupt

    @probe.command()
    def other() -> None:
        """A second command, so the app has sub-commands."""

    return probe


class TestTheBoundary:
    @pytest.mark.parametrize(("kind", "code"), [("key", 3), ("value", 2), ("os", 2), ("usage", 2),
                                                ("interrupt", 130)])
    def test_each_kind_of_failure_has_its_exit_code(self, probe_app: typer.Typer, kind: str, code: int,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
        assert _run(probe_app, "fail", kind) == code
        assert "Traceback" not in capsys.readouterr().err

    def test_an_internal_error_is_one_line_naming_the_exception_and_where(
            self, probe_app: typer.Typer, capsys: pytest.CaptureFixture[str]) -> None:
        _run(probe_app, "fail", "key")
        (line,) = capsys.readouterr().err.splitlines()
        assert line.startswith("error internal error: KeyError: 'vllm' at ")
        assert "test_cli_errors.py" in line
        assert errors.TRACEBACK_ENV in line

    def test_the_traceback_is_there_when_asked_for(self, probe_app: typer.Typer, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
        monkeypatch.setenv(errors.TRACEBACK_ENV, "1")
        _run(probe_app, "fail", "key")
        assert "Traceback" in capsys.readouterr().err

    def test_usage_problems_are_one_line_each(self, probe_app: typer.Typer,
                                              capsys: pytest.CaptureFixture[str]) -> None:
        _run(probe_app, "fail", "usage")
        assert capsys.readouterr().err.splitlines() == ["error first problem", "error second problem"]

    def test_a_click_usage_error_is_one_line_and_exit_2(self, probe_app: typer.Typer,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
        assert _run(probe_app, "fail", "key", "--bogus") == 2
        (line,) = capsys.readouterr().err.splitlines()
        assert "--bogus" in line
        assert "slmctl fail -h" in line

    def test_a_command_added_to_the_real_app_later_gets_the_boundary(
            self, capsys: pytest.CaptureFixture[str]) -> None:
        @app.command("probe-added-later", hidden=True)
        def added() -> None:
            msg = "x"
            raise KeyError(msg)

        try:
            assert _run(app, "probe-added-later") == 3
        finally:
            app.registered_commands = [c for c in app.registered_commands if c.name != "probe-added-later"]
        assert capsys.readouterr().err.startswith("error internal error: KeyError")

    def test_markup_in_a_problem_is_printed_literally(self, capsys: pytest.CaptureFixture[str]) -> None:
        errors.print_problems(["settings.name_prefix: should match pattern '^[a-z][a-z0-9]{1,9}$' at .[key]"])
        assert capsys.readouterr().err == (
            "error settings.name_prefix: should match pattern '^[a-z][a-z0-9]{1,9}$' at .[key]\n")


class TestRealInputs:
    def test_a_latin1_stack_file(self, tmp_path: Path) -> None:
        path = tmp_path / "Pulumi.latin.yaml"
        path.write_bytes(b"config:\n  slm-platform:settings:\n    tier: dev\n    name_prefix: caf\xe9\n")
        (line,) = assert_one_line_per_problem(slmctl("plan", "--stack-file", str(path)), 2)
        assert "Pulumi.latin.yaml:4" in line
        assert "UTF-8" in line

    @pytest.mark.parametrize("output", ["README.md/x", "/proc/x/report.txt"])
    def test_an_unwritable_output(self, output: str) -> None:
        (line,) = assert_one_line_per_problem(slmctl("gate", "local", "--output", output), 2)
        assert "--output" in line

    def test_a_kubernetes_fleet_without_its_kubeconfig_secret_plans_with_a_note(self, tmp_path: Path) -> None:
        settings = stack_settings("dev")
        settings["models"]["phi-4-mini"]["artifacts"]["gguf"] = {"ollama_tag": "phi4-mini:3.8b-q4_K_M"}
        settings["edge"] = {
            "device_classes": {"nuc": {"architecture": "amd64", "memory_gib": 16}},
            "fleets": {"shop": {"device_class": "nuc", "model": "phi-4-mini", "delivery": "kubernetes",
                                "engine": "ollama", "devices": ["nuc-1"]}}}
        result = slmctl("plan", "--stack-file", str(write_stack(tmp_path, settings, "kubefleet")), "--no-gate")
        assert result.returncode == 0, result.stderr
        assert "slm-platform:edgeKubeconfig-shop" in result.stdout

    def test_an_unknown_option(self) -> None:
        (line,) = assert_one_line_per_problem(slmctl("plan", "dev", "--bogus"), 2)
        assert "--bogus" in line

    def test_a_pattern_in_an_error_is_printed_literally(self, tmp_path: Path) -> None:
        settings = stack_settings("dev")
        settings["name_prefix"] = "Bad_Prefix"
        result = slmctl("plan", "--stack-file", str(write_stack(tmp_path, settings)))
        (line,) = assert_one_line_per_problem(result, 2)
        assert "'^[a-z][a-z0-9]{1,9}$'" in line


class TestCommandAndHelp:
    def test_version_and_short_help(self) -> None:
        version = slmctl("--version")
        assert version.returncode == 0
        assert version.stdout.startswith("slmctl ")
        short = slmctl("plan", "-h")
        assert short.returncode == 0
        assert "--stack-file" in short.stdout

    def test_pyproject_installs_an_slmctl_command(self, tmp_path: Path) -> None:
        """Install the project into a fresh venv (deps borrowed from ours) and run the `slmctl` it creates."""
        venv = tmp_path / "venv"
        subprocess.run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", "--without-pip",
                        str(venv)], check=True, timeout=120)
        site = next((venv / "lib").glob("python3*/site-packages"))
        ours = next(p for p in sys.path if p.endswith("site-packages") and Path(p, "typer").is_dir())
        (site / "borrowed.pth").write_text(ours + "\n")
        copy = tmp_path / "repo"
        shutil.copytree(REPO_ROOT, copy, ignore=shutil.ignore_patterns(
            ".git", ".venv", ".checkov-venv", "node_modules", "build", "tests", "*.egg-info", "__pycache__"))
        subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q",
                        "--no-deps", "--no-build-isolation", "--no-index", "-e", str(copy)],
                       check=True, timeout=300, capture_output=True)
        result = subprocess.run([str(venv / "bin" / "slmctl"), "--version"], cwd=tmp_path,
                                capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"slmctl {__import__('slmctl').__version__}"

    def test_make_installs_the_project(self) -> None:
        makefile = (REPO_ROOT / "Makefile").read_text()
        runtime = makefile.split("$(VENV)/.runtime:", 1)[1].split("\n\n", 1)[0]
        assert "install --no-deps -e ." in runtime
