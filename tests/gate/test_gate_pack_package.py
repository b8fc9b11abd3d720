"""Issue 16: the policy pack is a package of its own, runnable where ``pulumi policy publish`` ships it.

``pulumi policy publish`` uploads the pack's folder (``PulumiPolicy.yaml``, ``requirements.txt``, the code
and its data); the engine unpacks it elsewhere, installs ``requirements.txt`` and starts
``python -m pulumi.policy <engine> .`` in it. These tests copy ``policies/`` alone to a folder outside the
repo under another name, start it exactly that way (``slmctl.gate.PackProcess``, the engine's argv), and
forbid every import the repo could satisfy: ``components``, ``stacks``, ``slmctl`` and any ``policies``
module that is not in the copy (the project's editable install would otherwise provide them silently).
A shipped stack's resources must get the same findings as from the pack in the repo.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pulumi_kubernetes as k8s
import pytest

from slmctl.gate import GateResult, run_gate
from slmctl.recorder import Recording, record

REPO_ROOT = Path(__file__).resolve().parents[2]
POLICY_DIR = REPO_ROOT / "policies"
REPO_PACKAGES = ("components", "stacks", "slmctl", "tests", "benchmarks", "scripts", "examples")

# Runs first in the pack process (PYTHONPATH): refuses every import the repo, not the copy, would satisfy.
SITECUSTOMIZE = f'''
import os, sys
from importlib.abc import MetaPathFinder

ONLY = os.path.realpath(os.environ["SLM_PACK_ONLY"])
REPO = {tuple(REPO_PACKAGES)!r}


class OutsideThePack(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        if top in REPO or name == "policies":
            raise ImportError(f"{{name}} is not part of the published pack")
        if top == "policies" and not all(os.path.realpath(p).startswith(ONLY) for p in path or ()):
            raise ImportError(f"{{name}} resolves outside the published pack: {{list(path or ())}}")
        return None


sys.meta_path.insert(0, OutsideThePack())
'''


def publish(tmp_path: Path) -> Path:
    """The pack as ``pulumi policy publish`` ships it, unpacked outside the repo under another folder name."""
    dest = tmp_path / "org" / "slm-platform-0.1.0"
    shutil.copytree(POLICY_DIR, dest, ignore=shutil.ignore_patterns("__pycache__", "venv", "*.pyc"))
    return dest


@pytest.fixture
def published(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    dest = publish(tmp_path)
    guard = tmp_path / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    monkeypatch.setenv("PYTHONPATH", str(guard))
    monkeypatch.setenv("SLM_PACK_ONLY", str(dest))
    return dest


def findings(result: GateResult) -> list[tuple[str, str, str, str]]:
    return sorted((v.policy, v.level, v.resource, v.message) for v in result.violations)


@pytest.fixture(scope="module")
def prod() -> Recording:
    from slmctl.loader import load_stack_file
    from slmctl.plan import record_stack

    return record_stack(load_stack_file(REPO_ROOT / "stacks" / "Pulumi.prod.yaml"))


def test_a_shipped_stack_gets_the_same_findings_from_the_published_pack(
        prod: Recording, published: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stack_file = REPO_ROOT / "stacks" / "Pulumi.prod.yaml"
    outside = run_gate(prod, policy_dir=published, config_path=published / "config" / "prod.json",
                       stack_file=stack_file)
    monkeypatch.delenv("PYTHONPATH")
    inside = run_gate(prod, stack_file=stack_file)
    assert outside.pack == inside.pack == "slm-platform"
    assert [p.name for p in outside.policies] == [p.name for p in inside.policies]
    assert findings(outside) == findings(inside)
    assert outside.exemptions == inside.exemptions
    assert (outside.resources_analyzed, outside.exit_code) == (inside.resources_analyzed, 0)
    assert findings(inside), "the comparison covers real findings (prod has advisories)"


def test_the_published_pack_checks_onnx_args_with_its_own_copy_of_the_parser(published: Path) -> None:
    def program() -> None:
        k8s.apps.v1.Deployment("onnx", metadata={"name": "onnx", "namespace": "slm-phi"}, spec={
            "selector": {"matchLabels": {"app": "onnx"}},
            "template": {"metadata": {"labels": {"app": "onnx"}}, "spec": {"containers": [{
                "name": "onnx-genai", "image": "slmprodacr.azurecr.io/onnx-server:1", "args": ["--model-dir", "/m"]}]}}})

    result = run_gate(record(program, stack="prod"), policy_dir=published,
                      config_path=published / "config" / "prod.json")
    assert [v.detail for v in result.violations if v.policy == "slm-serving-container-args"] == [
        "onnx (kubernetes:apps/v1:Deployment): spec.template.spec.containers[0].args: the ONNX server "
        "(components/engines/onnx_server/server.py) refuses ['--model-dir', '/m']: the following arguments are "
        "required: --served-model-name; the container exits at start. Pass what build_parser() requires."]
    assert not [v for v in result.violations if "cannot verify: the rule failed" in v.message]


def test_the_guard_would_catch_an_import_from_the_repo(published: Path) -> None:
    """The guard is real: a pack that reaches into the repo does not start."""
    from slmctl.gate import GateError

    rules = published / "rules" / "existence.py"
    rules.write_text(rules.read_text(encoding="utf-8") + "\nimport components.engines  # reaches into the repo\n",
                     encoding="utf-8")
    with pytest.raises(GateError, match="components is not part of the published pack"):
        run_gate(record(lambda: None, stack="prod"), policy_dir=published,
                 config_path=published / "config" / "prod.json")


_IMPORTS_SCRIPT = """
import ast, json, pathlib, sys
names = set()
for path in pathlib.Path(sys.argv[1]).rglob("*.py"):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
print(json.dumps(sorted(names)))
"""


def _third_party_imports() -> set[str]:
    """Every top-level module the pack's sources import, parsed in a fresh interpreter.

    Not in this process: CPython 3.11 keeps ``ast.parse``'s recursion counter per interpreter, so
    after the gate tests' threads it failed here with "AST constructor recursion depth mismatch"
    (python/cpython gh-106905, seen in `make test`).
    """
    found = subprocess.run([sys.executable, "-c", _IMPORTS_SCRIPT, str(POLICY_DIR)], capture_output=True,
                           text=True, check=True, timeout=60)
    names = set(json.loads(found.stdout))
    return names - set(sys.stdlib_module_names) - {"policies", "__future__"}


def _requires(dist: str, seen: set[str]) -> set[str]:
    """``dist`` and everything it requires (installed metadata), as lower-case distribution names."""
    key = dist.lower().replace("_", "-")
    if key in seen:
        return seen
    seen.add(key)
    for req in metadata.requires(dist) or []:
        if "extra ==" not in req:
            _requires(re.split(r"[ ;<>=!~\[(]", req, maxsplit=1)[0], seen)
    return seen


def test_every_import_of_the_pack_is_in_its_requirements() -> None:
    """Outside the repo only ``requirements.txt`` is installed: every third-party module the pack imports
    (policies/gen_compliance.py included) comes from a distribution it lists or one they require."""
    listed = [re.split(r"[ <>=!~\[]", line.strip(), maxsplit=1)[0]
              for line in (POLICY_DIR / "requirements.txt").read_text(encoding="utf-8").splitlines()
              if line.strip() and not line.startswith("#")]
    provided: set[str] = set()
    for dist in listed:
        _requires(dist, provided)
    by_module = metadata.packages_distributions()
    imports = _third_party_imports()
    assert imports >= {"pulumi_policy", "google"}
    missing = {m: by_module.get(m) for m in imports
               if not {d.lower().replace("_", "-") for d in by_module.get(m, [])} & provided}
    assert missing == {}, f"imported by the pack but not installed by policies/requirements.txt: {missing}"


def test_nothing_in_the_pack_names_a_path_outside_it() -> None:
    """No module climbs out of its folder (parents[2], parent.parent to the repo) except the repo-side
    generator, which writes docs/ and README.md and reads the server it describes."""
    climbing = re.compile(r"parents\[[2-9]\]|parent\.parent|REPO_ROOT")
    offenders = [str(p.relative_to(REPO_ROOT)) for p in POLICY_DIR.rglob("*.py")
                 if climbing.search(p.read_text(encoding="utf-8")) and p.name != "gen_compliance.py"]
    assert offenders == []
    assert json.loads((POLICY_DIR / "data" / "onnx-server-cli.json").read_text(encoding="utf-8"))["arguments"]

