"""Narrow component Args (issue 16): a component that is done knows nothing of our stack files.

Each module listed here is imported in a fresh interpreter in which ``stacks`` cannot be imported at all,
so a transitive import (through a helper module) fails too, not only a direct one. Its Args must not
mention the environment's settings or a tier either: those decisions are made in ``stacks/platform.py``.
"""

from __future__ import annotations

import dataclasses
import importlib
import subprocess
import sys

import pytest

from tests.stack_support import REPO_ROOT

NARROWED = {
    "components.foundation": "FoundationArgs",
    "components.deploy_runner": "DeployRunnerArgs",
    "components.model_registry": "ModelRegistryArgs",
    "components.inference_cluster": "InferenceClusterArgs",
    "components.serving_workloads": "ServingWorkloadsArgs",
}
"""Module -> its Args class, for every component whose Args no longer carry ``EnvironmentSettings``."""

BLOCK_STACKS = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "stacks" or name.startswith("stacks."):
            raise ImportError(f"{name} imported from a component")
        return None
sys.meta_path.insert(0, Block())
import importlib
importlib.import_module(sys.argv[1])
"""


def test_no_module_under_components_needs_the_stacks_package() -> None:
    """Issue 16, done when: no module under ``components/`` imports ``stacks`` (directly or through another)."""
    modules = sorted(".".join(p.relative_to(REPO_ROOT).with_suffix("").parts).removesuffix(".__init__")
                     for p in (REPO_ROOT / "components").rglob("*.py") if "__main__" not in p.name)
    program = BLOCK_STACKS.replace("importlib.import_module(sys.argv[1])",
                                   "[importlib.import_module(m) for m in sys.argv[1:]]")
    result = subprocess.run([sys.executable, "-c", program, *modules], cwd=REPO_ROOT, text=True,
                            capture_output=True, check=False)
    assert result.returncode == 0, result.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("module", sorted(NARROWED))
def test_the_component_imports_without_the_stacks_package(module: str) -> None:
    result = subprocess.run([sys.executable, "-c", BLOCK_STACKS, module], cwd=REPO_ROOT, text=True,
                            capture_output=True, check=False)
    assert result.returncode == 0, result.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(("module", "args"), sorted(NARROWED.items()))
def test_the_args_name_no_settings_and_no_tier(module: str, args: str) -> None:
    cls = getattr(importlib.import_module(module), args)
    names = {f.name for f in dataclasses.fields(cls)}
    assert not names & {"settings", "tier", "environment"}, names


@pytest.mark.parametrize(("module", "args"), sorted(NARROWED.items()))
def test_every_optional_field_documents_its_default_behaviour(module: str, args: str) -> None:
    """STYLE P3: an optional field's docstring starts with ``Default:``.

    Fields inherited from ``StandardInterfaces`` and ``tags`` are the AVM interfaces, documented once in
    ``components/_standard.py``."""
    import ast
    import inspect

    cls = getattr(importlib.import_module(module), args)
    tree = ast.parse(inspect.getsource(cls))
    (body,) = [n for n in tree.body if isinstance(n, ast.ClassDef)]
    docs: dict[str, str] = {}
    for prev, node in zip(body.body, body.body[1:], strict=False):
        if (isinstance(prev, ast.AnnAssign) and isinstance(prev.target, ast.Name)
                and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)):
            docs[prev.target.id] = str(node.value.value)
    optional = [f.name for f in dataclasses.fields(cls)
                if (f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING)
                and f.name != "tags" and f.name in inspect.get_annotations(cls)]
    undocumented = [name for name in optional if not docs.get(name, "").startswith("Default:")]
    assert not undocumented, undocumented
