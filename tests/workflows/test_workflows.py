"""The GitHub workflows: linted (actionlint), audited (zizmor), and held to the delivery invariants.

The invariants are the ones a team relies on when it trusts the pipelines with production credentials:
OIDC only, pinned actions, least-privilege tokens, the policy pack on every preview and update with the
right environment's enforcement levels, dev -> staging -> prod promotion behind GitHub environments,
and one update per stack at a time.
"""

from __future__ import annotations

import itertools
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKFLOW_DIR = REPO_ROOT / ".github" / "workflows"
WORKFLOW_FILES = sorted(WORKFLOW_DIR.glob("*.yml"))
STACKS = sorted(p.name.split(".")[1] for p in (REPO_ROOT / "stacks").glob("Pulumi.*.yaml"))
# `local` runs on a developer's own cluster; every other stack lives in Azure and is previewed, deployed and
# checked for drift by the workflows.
AZURE_STACKS = [s for s in STACKS if s != "local"]

SHA_PIN = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>\S+)\s*(?:#\s*(?P<comment>.*))?$")
VERSION_COMMENT = re.compile(r"^v\d+\.\d+(\.\d+)?$")  # azure/use-kubelogin tags v1.3

AZURE_LOGIN = "azure/login"
PULUMI = "pulumi/actions"
UPLOAD_SARIF = "github/codeql-action/upload-sarif"
GITHUB_SCRIPT = "actions/github-script"
KUBELOGIN = "azure/use-kubelogin"


def load(path: Path) -> dict[str, Any]:
    """Parse a workflow; PyYAML (YAML 1.1) reads the ``on`` key as ``True``, so put it back."""
    doc = yaml.safe_load(path.read_text())
    assert isinstance(doc, dict), f"{path.name}: not a mapping"
    if True in doc:
        doc["on"] = doc.pop(True)
    return doc


def workflow(name: str) -> dict[str, Any]:
    return load(WORKFLOW_DIR / name)


def action(step: dict[str, Any]) -> str:
    """``owner/repo[/path]`` of a ``uses:`` step, without the ref; ``""`` for ``run:`` steps."""
    return str(step.get("uses", "")).split("@", 1)[0]


def all_jobs() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path in WORKFLOW_FILES:
        for job_id, job in load(path)["jobs"].items():
            yield path.name, job_id, job


def steps_of(job: dict[str, Any], uses: str) -> list[dict[str, Any]]:
    return [s for s in job.get("steps", []) if action(s) == uses]


def matrix_stacks(job: dict[str, Any]) -> list[str]:
    matrix = job.get("strategy", {}).get("matrix", {})
    return list(matrix.get("stack", [])) + [str(e["stack"]) for e in matrix.get("include", []) if "stack" in e]


def runs_on(job: dict[str, Any], stack: str) -> str:
    """The ``runs-on`` label of ``job`` for ``stack`` (matrix ``include`` values substituted)."""
    label = str(job["runs-on"])
    for entry in job.get("strategy", {}).get("matrix", {}).get("include", []):
        if entry.get("stack") == stack:
            for key, value in entry.items():
                label = label.replace(f"${{{{ matrix.{key} }}}}", str(value))
    return label


def expand_stack(value: str, stack: str) -> str:
    return value.replace("${{ matrix.stack }}", stack)


def pulumi_runs(job: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """Each pulumi/actions step of a job, once per stack it runs against (matrix expanded)."""
    runs: list[tuple[dict[str, Any], str]] = []
    for step in steps_of(job, PULUMI):
        name = str(step["with"]["stack-name"])
        stacks = matrix_stacks(job) if "${{ matrix.stack }}" in name else [name]
        runs.extend((step, stack) for stack in stacks)
    return runs


def up_jobs() -> dict[str, str]:
    """Stack -> id of the deploy.yml job that runs ``pulumi up`` on it."""
    found: dict[str, str] = {}
    for job_id, job in workflow("deploy.yml")["jobs"].items():
        for step, stack in pulumi_runs(job):
            if step["with"]["command"] == "up" and "target" not in step["with"]:
                assert stack not in found, f"two up jobs for stack {stack}: {found[stack]}, {job_id}"
                found[stack] = job_id
    return found


def ancestors(jobs: dict[str, Any], job_id: str) -> set[str]:
    needs = jobs[job_id].get("needs", [])
    direct = {needs} if isinstance(needs, str) else set(needs)
    result = set(direct)
    for parent in direct:
        result |= ancestors(jobs, parent)
    return result


def promotion_order() -> list[str]:
    """The Azure stacks in the order deploy.yml updates them (by how many up jobs each waits for)."""
    jobs, ids = workflow("deploy.yml")["jobs"], up_jobs()
    return sorted(ids, key=lambda stack: len(ancestors(jobs, ids[stack]) & set(ids.values())))


def scripts(job: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """Every piece of code a job executes: ``run:`` blocks and github-script ``script:`` inputs."""
    for step in job.get("steps", []):
        if "run" in step:
            yield step.get("name", "run"), str(step["run"])
        if action(step) == GITHUB_SCRIPT:
            yield step.get("name", GITHUB_SCRIPT), str(step["with"]["script"])


def test_the_three_delivery_workflows_exist() -> None:
    assert {p.name for p in WORKFLOW_FILES} >= {"pr.yml", "deploy.yml", "drift.yml"}


class TestLinters:
    def test_actionlint_reports_no_findings(self) -> None:
        result = run_actionlint(*[str(p.relative_to(REPO_ROOT)) for p in WORKFLOW_FILES])
        assert result.returncode == 0, result.stdout + result.stderr

    def test_actionlint_script_reports_a_broken_workflow(self, tmp_path: Path) -> None:
        broken = tmp_path / "broken.yml"
        broken.write_text(
            "on: push\njobs:\n  build:\n    runs-on: ubuntu-24.04\n    needs: [missing]\n"
            "    steps:\n      - run: echo ${{ matrix.nope }}\n"
        )
        result = run_actionlint(str(broken))
        assert result.returncode == 1
        assert 'needs job "missing" which does not exist' in result.stdout
        assert "[job-needs]" in result.stdout

    def test_zizmor_reports_no_findings(self) -> None:
        result = run_zizmor(REPO_ROOT / ".github")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "No findings to report" in result.stdout

    def test_zizmor_flags_template_injection_and_unpinned_actions(self, tmp_path: Path) -> None:
        bad = tmp_path / ".github" / "workflows" / "bad.yml"
        bad.parent.mkdir(parents=True)
        bad.write_text(
            "on: pull_request\npermissions: {}\njobs:\n  x:\n    runs-on: ubuntu-24.04\n"
            "    steps:\n      - uses: actions/checkout@v5\n"
            "      - run: echo ${{ github.event.pull_request.title }}\n"
        )
        result = run_zizmor(tmp_path / ".github")
        assert result.returncode != 0
        assert "template-injection" in result.stdout
        assert "unpinned-uses" in result.stdout


def run_actionlint(*files: str) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH: install Node.js >= 20 to lint workflows with actionlint")
    if not (REPO_ROOT / "node_modules" / "@tktco" / "node-actionlint").is_dir():
        pytest.fail(
            "node_modules is missing: run `npm ci` at the repository root (the Makefile's `tools` does)"
        )
    return subprocess.run(
        [node, "scripts/actionlint.cjs", *files],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def run_zizmor(target: Path) -> subprocess.CompletedProcess[str]:
    zizmor = Path(sys.executable).parent / "zizmor"
    if not zizmor.exists():
        found = shutil.which("zizmor")
        if found is None:
            pytest.fail("zizmor is not installed: `pip install -r requirements-dev.txt`")
        zizmor = Path(found)
    return subprocess.run(
        [str(zizmor), "--offline", "--persona", "regular", "--no-progress", "--color", "never", str(target)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


class TestPinning:
    @pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
    def test_every_action_is_pinned_by_commit_sha_with_a_version_comment(self, path: Path) -> None:
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            match = USES_LINE.match(line)
            if not match:
                continue
            where = f"{path.name}:{number}: {line.strip()}"
            assert SHA_PIN.match(match["ref"]), f"not pinned to a 40-hex commit SHA: {where}"
            comment = (match["comment"] or "").strip()
            assert VERSION_COMMENT.match(comment), f"missing '# vX.Y.Z' comment: {where}"

    def test_an_action_is_pinned_to_the_same_commit_everywhere(self) -> None:
        pins: dict[str, set[str]] = {}
        for path in WORKFLOW_FILES:
            for line in path.read_text().splitlines():
                match = USES_LINE.match(line)
                if match:
                    name, _, sha = match["ref"].partition("@")
                    pins.setdefault(name, set()).add(f"{sha} # {(match['comment'] or '').strip()}")
        drifted = {name: shas for name, shas in pins.items() if len(shas) > 1}
        assert not drifted, f"the same action pinned to different commits: {drifted}"

    def test_checkout_never_persists_the_token(self) -> None:
        checkouts = [(f, j, s) for f, j, job in all_jobs() for s in steps_of(job, "actions/checkout")]
        assert checkouts
        for file, job_id, step in checkouts:
            assert step.get("with", {}).get("persist-credentials") is False, f"{file}:{job_id}"


class TestCredentials:
    def test_azure_login_uses_oidc_only(self) -> None:
        logins = [(f, j, s) for f, j, job in all_jobs() for s in steps_of(job, AZURE_LOGIN)]
        assert logins
        for file, job_id, step in logins:
            inputs = step.get("with", {})
            assert set(inputs) == {"client-id", "tenant-id", "subscription-id"}, f"{file}:{job_id}: {inputs}"
            assert "creds" not in inputs
            assert "client-secret" not in inputs

    @pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
    def test_no_client_secret_appears_anywhere(self, path: Path) -> None:
        text = path.read_text()
        for forbidden in ("AZURE_CLIENT_SECRET", "ARM_CLIENT_SECRET", "client-secret", "AZURE_CREDENTIALS"):
            assert forbidden not in text, f"{path.name} mentions {forbidden}"

    @pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
    def test_no_pull_request_target_trigger(self, path: Path) -> None:
        on = load(path)["on"]
        triggers = {on} if isinstance(on, str) else set(on)
        assert "pull_request_target" not in triggers
        assert "workflow_run" not in triggers

    def test_scripts_read_expressions_through_env_never_inline(self) -> None:
        """``${{ }}`` inside a script is template injection waiting to happen (zizmor template-injection)."""
        for file, job_id, job in all_jobs():
            for name, code in scripts(job):
                assert "${{" not in code, f"{file}:{job_id}:{name} interpolates an expression into code"
                assert "secrets." not in code, f"{file}:{job_id}:{name} references a secret"

    def test_every_pulumi_step_has_a_pinned_kubelogin_for_the_clusters_exec_kubeconfig(self) -> None:
        """The AKS kubeconfig runs ``kubelogin get-token --login azurecli``; without kubelogin every Kubernetes
        call fails, and with a latest-resolving install the behaviour changes under a running pipeline."""
        for file, job_id, job in all_jobs():
            steps = job.get("steps", [])
            for index, step in enumerate(steps):
                if action(step) != PULUMI:
                    continue
                installs = [s for s in steps[:index] if action(s) == KUBELOGIN]
                assert installs, f"{file}:{job_id}: no {KUBELOGIN} before the pulumi step"
                version = str(installs[0].get("with", {}).get("kubelogin-version", ""))
                assert re.fullmatch(r"v\d+\.\d+\.\d+", version), f"{file}:{job_id}: kubelogin-version {version!r}"

    def test_every_pulumi_step_logs_in_to_azure_first_with_oidc_env(self) -> None:
        for file, job_id, job in all_jobs():
            steps = job.get("steps", [])
            for index, step in enumerate(steps):
                if action(step) != PULUMI:
                    continue
                where = f"{file}:{job_id}"
                assert any(action(s) == AZURE_LOGIN for s in steps[:index]), f"{where}: no azure/login before"
                env = step.get("env", {})
                assert env.get("ARM_USE_OIDC") == "true", where
                assert env.get("AZURE_KEYVAULT_AUTH_VIA_CLI") == "true", where
                for name in ("ARM_CLIENT_ID", "ARM_TENANT_ID", "ARM_SUBSCRIPTION_ID"):
                    assert str(env.get(name, "")).startswith("${{ vars."), f"{where}: {name}={env.get(name)}"

    def test_every_pulumi_step_uses_the_azure_blob_backend_and_key_vault_secrets(self) -> None:
        for file, job_id, job in all_jobs():
            for step in steps_of(job, PULUMI):
                inputs = step["with"]
                assert str(inputs["cloud-url"]).startswith("azblob://"), f"{file}:{job_id}"
                assert "?storage_account=${{ vars." in str(inputs["cloud-url"]), f"{file}:{job_id}"
                assert str(inputs["secrets-provider"]).startswith("azurekeyvault://"), f"{file}:{job_id}"


class TestPermissions:
    @pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
    def test_top_level_permissions_are_restrictive(self, path: Path) -> None:
        doc = load(path)
        assert "permissions" in doc, f"{path.name}: no top-level permissions (defaults may be write-all)"
        assert doc["permissions"] in ({}, {"contents": "read"}), f"{path.name}: {doc['permissions']}"

    def test_every_job_declares_its_own_permissions(self) -> None:
        for file, job_id, job in all_jobs():
            assert isinstance(job.get("permissions"), dict), f"{file}:{job_id} has no permissions block"

    def test_id_token_write_only_where_azure_login_is_used(self) -> None:
        for file, job_id, job in all_jobs():
            logs_in = bool(steps_of(job, AZURE_LOGIN))
            has_token = job["permissions"].get("id-token") == "write"
            assert logs_in == has_token, f"{file}:{job_id}: azure/login={logs_in}, id-token:write={has_token}"

    def test_security_events_write_only_for_sarif_upload(self) -> None:
        for file, job_id, job in all_jobs():
            uploads = bool(steps_of(job, UPLOAD_SARIF))
            granted = job["permissions"].get("security-events") == "write"
            assert uploads == granted, f"{file}:{job_id}: upload-sarif={uploads}, security-events={granted}"

    def test_pull_requests_write_only_for_pr_comments(self) -> None:
        for file, job_id, job in all_jobs():
            comments = any(s.get("with", {}).get("comment-on-pr") is True for s in steps_of(job, PULUMI)) or (
                file == "pr.yml" and bool(steps_of(job, GITHUB_SCRIPT))
            )
            granted = job["permissions"].get("pull-requests") == "write"
            assert comments == granted, f"{file}:{job_id}: comments={comments}, pull-requests={granted}"

    def test_issues_write_only_in_the_drift_workflow(self) -> None:
        for file, job_id, job in all_jobs():
            granted = job["permissions"].get("issues") == "write"
            expected = file == "drift.yml" and bool(steps_of(job, GITHUB_SCRIPT))
            assert granted == expected, f"{file}:{job_id}: issues={granted}"

    def test_no_job_can_write_repository_contents(self) -> None:
        for file, job_id, job in all_jobs():
            assert job["permissions"].get("contents", "none") in ("read", "none"), f"{file}:{job_id}"


class TestPolicyPackEverywhere:
    def test_every_preview_and_up_enforces_the_pack_with_its_stacks_config(self) -> None:
        seen = 0
        for file, job_id, job in all_jobs():
            for step, stack in pulumi_runs(job):
                inputs = step["with"]
                assert inputs["command"] in ("preview", "up"), f"{file}:{job_id}: {inputs['command']}"
                assert inputs["policyPacks"] == "policies", f"{file}:{job_id}"
                config = expand_stack(str(inputs["policyPackConfigs"]), stack)
                assert config == f"policies/config/{stack}.json", f"{file}:{job_id} ({stack}): {config}"
                seen += 1
        assert seen >= 3 * len(AZURE_STACKS)  # PR preview, deploy and drift, each per Azure stack

    def test_every_referenced_stack_has_a_stack_file_and_a_policy_config(self) -> None:
        for file, job_id, job in all_jobs():
            for _, stack in pulumi_runs(job):
                assert (REPO_ROOT / "stacks" / f"Pulumi.{stack}.yaml").is_file(), f"{file}:{job_id}: {stack}"
                assert (REPO_ROOT / "policies" / "config" / f"{stack}.json").is_file(), (
                    f"{file}:{job_id}: policies/config/{stack}.json is missing"
                )


class TestPullRequestWorkflow:
    def test_runs_on_pull_requests_to_main(self) -> None:
        assert workflow("pr.yml")["on"] == {"pull_request": {"branches": ["main"]}}

    def test_offline_job_runs_make_test_without_cloud_credentials(self) -> None:
        job = workflow("pr.yml")["jobs"]["test"]
        assert any(s.get("run") == "make test" for s in job["steps"])
        assert not steps_of(job, AZURE_LOGIN)
        assert "if" not in job, "the offline job must also run on pull requests from forks"

    def test_gate_runs_for_every_stack_and_uploads_sarif_per_stack(self) -> None:
        job = workflow("pr.yml")["jobs"]["gate"]
        assert sorted(matrix_stacks(job)) == STACKS
        assert job["needs"] == "test"
        assert job["strategy"]["fail-fast"] is False
        assert not steps_of(job, AZURE_LOGIN)
        gate_runs = "\n".join(code for _, code in scripts(job))
        assert '-m slmctl gate "$STACK" --format sarif --output' in gate_runs
        assert '-m slmctl gate "$STACK" --format markdown --output' in gate_runs
        assert '>> "$GITHUB_STEP_SUMMARY"' in gate_runs
        (upload,) = steps_of(job, UPLOAD_SARIF)
        assert upload["with"]["category"] == "slm-policy-gate-${{ matrix.stack }}"
        assert upload["if"].startswith("always()")

    def test_gate_decides_on_each_first_deploy_steps_preview_after_publishing_it(self) -> None:
        """Every step of a first deploy (bootstrap, registry, full) passes the gate, or the PR fails."""
        steps = workflow("pr.yml")["jobs"]["gate"]["steps"]
        (first,) = [s for s in steps if "--first-preview --step" in s.get("run", "")]
        assert "for step in bootstrap registry full; do" in first["run"]
        assert first["if"] == "always()"
        assert first["id"] == "first-deploy"
        assert first["continue-on-error"] is True
        assert '|| code=$?' in first["run"]  # a mandatory finding is reported, and remembered
        assert 'exit "$failed"' in first["run"]
        assert steps.index(first) < len(steps) - 1

    def test_gate_verdict_fails_the_job_after_the_reports_are_published(self) -> None:
        steps = workflow("pr.yml")["jobs"]["gate"]["steps"]
        gate = next(s for s in steps if s.get("id") == "gate")
        assert gate["continue-on-error"] is True
        verdict = steps[-1]
        assert verdict["if"] == "steps.gate.outcome != 'success' || steps.first-deploy.outcome != 'success'"
        assert "exit 1" in verdict["run"]

    def test_gate_comment_is_one_updated_comment_on_same_repo_prs_only(self) -> None:
        job = workflow("pr.yml")["jobs"]["comment"]
        assert "github.event.pull_request.head.repo.full_name == github.repository" in job["if"]
        (script,) = steps_of(job, GITHUB_SCRIPT)
        code = script["with"]["script"]
        assert "<!-- slm-platform:policy-gate -->" in code
        assert "updateComment" in code
        assert "createComment" in code

    def test_the_comment_takes_every_stack_from_the_reports_not_a_fixed_list(self) -> None:
        (script,) = steps_of(workflow("pr.yml")["jobs"]["comment"], GITHUB_SCRIPT)
        code = script["with"]["script"]
        assert "readdirSync('gate')" in code
        for stack in STACKS:
            assert f"'{stack}'" not in code, f"the comment script names stack {stack!r}"

    def test_the_comment_carries_the_plan_diff_next_to_the_gate(self) -> None:
        gate = workflow("pr.yml")["jobs"]["gate"]
        runs = "\n".join(code for _, code in scripts(gate))
        assert '-m slmctl diff "build/gate/$STACK.base.json" "build/gate/$STACK.plan.json"' in runs
        assert '--format markdown --output "build/gate/$STACK.diff.md"' in runs
        checkouts = [s for s in gate["steps"] if str(s.get("uses", "")).startswith("actions/checkout@")]
        base = next(s for s in checkouts if s.get("with", {}).get("path") == "base")
        assert base["with"]["ref"] == "${{ github.event.pull_request.base.sha }}"
        (script,) = steps_of(workflow("pr.yml")["jobs"]["comment"], GITHUB_SCRIPT)
        assert "'.diff.md'" in script["with"]["script"]

    def test_preview_runs_only_when_credentials_can_exist(self) -> None:
        job = workflow("pr.yml")["jobs"]["preview"]
        assert "github.event.pull_request.head.repo.full_name == github.repository" in job["if"]
        assert "vars.AZURE_CLIENT_ID != ''" in job["if"]
        assert sorted(matrix_stacks(job)) == sorted(AZURE_STACKS)
        (step,) = steps_of(job, PULUMI)
        assert step["with"]["command"] == "preview"
        assert step["with"]["comment-on-pr"] is True
        assert "environment" not in job, "PR previews must not wait for (or use) a deployment environment"

    def test_preview_installs_the_policy_pack_deps_for_the_shims_python(self) -> None:
        job = workflow("pr.yml")["jobs"]["preview"]
        installs = "\n".join(code for _, code in scripts(job))
        assert "python -m pip install -r policies/requirements.txt" in installs


class TestDeployWorkflow:
    def test_runs_on_push_to_main_and_on_dispatch(self) -> None:
        on = workflow("deploy.yml")["on"]
        assert on["push"] == {"branches": ["main"]}
        assert "workflow_dispatch" in on

    def test_deploys_exactly_the_azure_stacks(self) -> None:
        assert sorted(up_jobs()) == AZURE_STACKS

    def test_promotes_in_one_chain_from_dev_to_prod(self) -> None:
        """Each stack waits for the one before it; a new environment (qa) may sit anywhere in between."""
        jobs = workflow("deploy.yml")["jobs"]
        ids = up_jobs()
        order = promotion_order()
        assert order[0] == "dev"
        assert order[-1] == "prod"
        for earlier, later in itertools.pairwise(order):
            assert ids[earlier] in ancestors(jobs, ids[later]), f"{later} does not wait for {earlier}"
            # Directly, or through its own runner bootstrap only.
            needs = jobs[ids[later]]["needs"]
            assert needs == ids[earlier] or jobs[needs]["needs"] == ids[earlier], f"{later}: needs {needs}"

    def test_the_offline_gate_runs_before_any_update(self) -> None:
        jobs = workflow("deploy.yml")["jobs"]
        gate = jobs["gate"]
        assert not steps_of(gate, AZURE_LOGIN)
        code = "\n".join(c for _, c in scripts(gate))
        assert "make test" in code
        assert "-m slmctl gate" in code
        assert gate["if"] == "github.ref == 'refs/heads/main'"
        for stack, job_id in up_jobs().items():
            assert "gate" in ancestors(jobs, job_id), f"up {stack} does not wait for the gate"

    def test_each_up_job_is_bound_to_its_environment(self) -> None:
        jobs = workflow("deploy.yml")["jobs"]
        for stack, job_id in up_jobs().items():
            env = jobs[job_id]["environment"]
            name = env["name"] if isinstance(env, dict) else env
            assert name == stack, f"{job_id}: environment {name!r}"
        assert jobs[up_jobs()["prod"]]["environment"] == "prod"

    def test_each_stack_is_updated_by_one_run_at_a_time_and_never_cancelled(self) -> None:
        jobs = workflow("deploy.yml")["jobs"]
        groups = set()
        for stack, job_id in up_jobs().items():
            concurrency = jobs[job_id]["concurrency"]
            assert stack in concurrency["group"], f"{job_id}: group {concurrency['group']!r}"
            assert "${{" not in concurrency["group"], "the group must be the same in every run"
            assert concurrency["cancel-in-progress"] is False, job_id
            groups.add(concurrency["group"])
        assert len(groups) == len(AZURE_STACKS)

    def test_up_refreshes_and_targets_its_own_stack(self) -> None:
        jobs = workflow("deploy.yml")["jobs"]
        for stack, job_id in up_jobs().items():
            *_, step = steps_of(jobs[job_id], PULUMI)  # the full update is the job's last pulumi step
            assert step["with"]["stack-name"] == stack
            assert step["with"]["refresh"] is True
            assert "target" not in step["with"]

    def test_each_targeted_up_scopes_the_pack_to_its_own_targets_and_no_other_up_does(self) -> None:
        """The pack defers unknowns on what a targeted up does not touch (SLM_POLICY_TARGETS); only the same
        list as --target may scope it, and an untargeted up (or a job/workflow env) must never carry one."""
        doc = workflow("deploy.yml")
        assert "SLM_POLICY_TARGETS" not in (doc.get("env") or {})
        scoped = 0
        for job_id, job in doc["jobs"].items():
            assert "SLM_POLICY_TARGETS" not in (job.get("env") or {}), job_id
            for step, stack in pulumi_runs(job):
                env = step.get("env") or {}
                if "target" in step["with"]:
                    assert env.get("SLM_POLICY_TARGETS") == step["with"]["target"], (job_id, stack)
                    scoped += 1
                else:
                    assert "SLM_POLICY_TARGETS" not in env, (job_id, stack)
        assert scoped >= len(AZURE_STACKS)  # every Azure stack's bootstrap, and the private tiers' registry step

    def test_private_tiers_mirror_the_weights_between_the_registry_and_the_workloads(self) -> None:
        jobs = workflow("deploy.yml")["jobs"]
        for stack in ("staging", "prod"):
            steps = jobs[up_jobs()[stack]]["steps"]
            pulumi = [i for i, s in enumerate(steps) if str(s.get("uses", "")).startswith(PULUMI)]
            (sync,) = [i for i, s in enumerate(steps) if "slmctl models sync" in str(s.get("run", ""))]
            (listing,) = [i for i, s in enumerate(steps) if "slmctl models targets" in str(s.get("run", ""))]
            registry, full = pulumi
            assert listing < registry < sync < full, stack
            assert steps[registry]["with"]["target"] == "${{ steps.registry.outputs.urns }}"
            assert steps[listing]["id"] == "registry"
            assert steps[sync]["env"]["STACK"] == stack


class TestDriftWorkflow:
    def test_runs_on_a_schedule_and_on_dispatch(self) -> None:
        on = workflow("drift.yml")["on"]
        assert on["schedule"][0]["cron"]
        assert "workflow_dispatch" in on

    def test_previews_every_azure_stack_with_refresh_and_expect_no_changes(self) -> None:
        (job,) = workflow("drift.yml")["jobs"].values()
        assert sorted(matrix_stacks(job)) == sorted(AZURE_STACKS)
        assert job["strategy"]["fail-fast"] is False
        (step,) = steps_of(job, PULUMI)
        assert step["with"]["command"] == "preview"
        assert step["with"]["refresh"] is True
        assert step["with"]["expect-no-changes"] is True

    def test_a_failure_opens_or_updates_one_issue_per_stack_with_the_run_link(self) -> None:
        (job,) = workflow("drift.yml")["jobs"].values()
        (step,) = steps_of(job, GITHUB_SCRIPT)
        assert "steps.drift.outcome == 'failure'" in step["if"]
        assert step["if"].startswith("always()")
        assert step["env"]["STACK"] == "${{ matrix.stack }}"
        assert "actions/runs/${{ github.run_id }}" in step["env"]["RUN_URL"]
        code = step["with"]["script"]
        assert "`Drift detected: ${STACK}`" in code
        assert "i.title === title" in code
        assert "issues.create(" in code
        assert "issues.createComment(" in code

    def test_drift_is_not_bound_to_an_approval_environment(self) -> None:
        (job,) = workflow("drift.yml")["jobs"].values()
        assert "environment" not in job


class TestWorkflowsAgreeWithTheDeployerSetting:
    """Where each stack's ``pulumi`` runs in the workflows is what its ``deployer`` setting says (and what the
    slm-reach-deployer policy assumed when it checked that the deployer reaches every data plane)."""

    @staticmethod
    def settings(stack: str) -> Any:
        from slmctl.loader import load_stack_file

        return load_stack_file(REPO_ROOT / "stacks" / f"Pulumi.{stack}.yaml", stack=stack).settings

    @staticmethod
    def pulumi_jobs(stack: str) -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
        """(file, job id, job, step) of every pulumi step that runs against ``stack`` (bootstrap excluded)."""
        return [(f, j, job, step) for f, j, job in all_jobs() for step, s in pulumi_runs(job)
                if s == stack and "target" not in step["with"]]

    @pytest.mark.parametrize("stack", AZURE_STACKS)
    def test_every_pulumi_job_of_the_stack_runs_where_its_deployer_is(self, stack: str) -> None:
        settings = self.settings(stack)
        label = settings.deploy_runner_label(stack)
        jobs = self.pulumi_jobs(stack)
        assert {f for f, *_ in jobs} == {"deploy.yml", "pr.yml", "drift.yml"}
        for file, job_id, job, _ in jobs:
            where = runs_on(job, stack)
            if settings.deployer.location == "in-vnet-runner":
                assert where == label, f"{file}:{job_id} runs {stack} on {where!r}, not its runner {label!r}"
            else:
                assert where.startswith("ubuntu-"), f"{file}:{job_id}: {where!r} for a {settings.deployer.location}"

    @pytest.mark.parametrize("stack", AZURE_STACKS)
    def test_an_in_vnet_runner_is_bootstrapped_from_a_hosted_runner_before_the_update(self, stack: str) -> None:
        if self.settings(stack).deployer.location != "in-vnet-runner":
            pytest.skip(f"{stack} deploys from where it is; nothing to bootstrap")
        jobs = workflow("deploy.yml")["jobs"]
        boots = [(j, step) for j, job in jobs.items() for step, s in pulumi_runs(job)
                 if s == stack and "target" in step["with"]
                 # the registry's weights storage is also a targeted up, inside the update job (models sync)
                 and step["with"]["target"] != "${{ steps.registry.outputs.urns }}"]
        assert len(boots) == 1, f"{stack}: expected one bootstrap (pulumi up --target) job, found {boots}"
        boot_id, step = boots[0]
        assert step["with"]["command"] == "up"
        assert str(jobs[boot_id]["runs-on"]).startswith("ubuntu-"), "the runner cannot bootstrap itself"
        assert step["with"]["target"] == "${{ steps.targets.outputs.urns }}"
        code = "\n".join(c for _, c in scripts(jobs[boot_id]))
        assert f"-m slmctl bootstrap-targets {stack}" in code
        assert boot_id in ancestors(jobs, up_jobs()[stack]), f"up {stack} does not wait for {boot_id}"
        assert jobs[boot_id]["concurrency"]["group"] == jobs[up_jobs()[stack]]["concurrency"]["group"]

    def test_no_two_stacks_share_a_runner_label(self) -> None:
        # A shared label lets one stack's deploy jobs run on the other's runner: inside the other's VNet, with
        # the other's identity. The default (slm-deploy-<stack>) cannot collide; an explicit label can.
        owners: dict[str, list[str]] = {}
        for stack in STACKS:
            label = self.settings(stack).deploy_runner_label(stack)
            if label is not None:
                owners.setdefault(label, []).append(stack)
        shared = {label: stacks for label, stacks in owners.items() if len(stacks) > 1}
        assert not shared, f"stacks share an in-VNet runner label (set deployer.runner.label apart): {shared}"

    def test_every_self_hosted_label_is_a_stacks_runner_and_declared_for_actionlint(self) -> None:
        declared = set(yaml.safe_load((REPO_ROOT / ".github" / "actionlint.yaml").read_text())
                       ["self-hosted-runner"]["labels"])
        runners = {s: self.settings(s).deploy_runner_label(s) for s in AZURE_STACKS}
        used = {runs_on(job, s) for _, _, job in all_jobs() for s in AZURE_STACKS
                if "${{" not in runs_on(job, s) and not runs_on(job, s).startswith("ubuntu-")}
        assert used <= {label for label in runners.values() if label}, used
        assert declared == {label for label in runners.values() if label}
