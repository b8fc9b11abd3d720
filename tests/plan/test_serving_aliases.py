"""Splitting InferenceCluster (issue 16) must not replace anything a deployed stack already has.

Before the split one ``InferenceCluster`` named ``serving`` owned the AKS cluster and the workloads. The
cluster part kept that component (same name, type, URNs); the workloads moved to ``ServingWorkloads``
``serving``. ``pulumi up`` replaces a resource whose URN it does not find in the state unless one of the
new resource's aliases names the old URN, so every URN of the old tree must be either declared again or
aliased by exactly one resource of the same type and name. The old URNs are committed
(``data/inference_cluster_urns.json``, recorded from main before the split), in the engine's form: the
mock monitor's ``pulumi:pulumi:Stack$`` prefix removed, as ``pulumi.create_urn`` and the engine write them.
"""

from __future__ import annotations

import json
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from slmctl.loader import load_stack_file
from slmctl.plan import make_plan
from tests.stack_support import REPO_ROOT

OLD = json.loads((Path(__file__).parent / "data" / "inference_cluster_urns.json").read_text(encoding="utf-8"))
GONE_COMPONENT = "slm:compute:InferenceCluster"
"""On ``local`` the old component itself is no longer declared (there is no AKS cluster there): a component
has no state outside Pulumi's, so deleting it deletes nothing in the cluster."""

sys.path.insert(0, str(REPO_ROOT / "scripts"))
import compare_plans  # noqa: E402 (a script, imported from its folder)


def engine(urn: str) -> str:
    return urn.replace("pulumi:pulumi:Stack$", "")


@cache
def plan_document(stack: str) -> dict[str, Any]:
    return make_plan(load_stack_file(REPO_ROOT / "stacks" / f"Pulumi.{stack}.yaml", stack=stack)).document()


@pytest.mark.parametrize("stack", sorted(OLD["stacks"]))
def test_every_old_urn_is_declared_again_or_aliased(stack: str) -> None:
    resources = plan_document(stack)["resources"]
    answers: dict[str, list[str]] = {}
    for r in resources:
        for urn in (r["urn"], *r.get("aliases", ())):
            answers.setdefault(engine(urn), []).append(engine(r["urn"]))
    missing = [u for u in OLD["stacks"][stack]
               if u not in answers and not (stack == "local" and u.endswith(f"::{GONE_COMPONENT}::serving"))]
    assert missing == [], f"pulumi up would replace (delete and create) {len(missing)} resource(s)"
    ambiguous = {u: answers[u] for u in OLD["stacks"][stack] if len(answers.get(u, ())) > 1}
    assert ambiguous == {}


@pytest.mark.parametrize("stack", sorted(OLD["stacks"]))
def test_an_alias_keeps_the_type_and_name_and_moves_only_the_parent(stack: str) -> None:
    for r in plan_document(stack)["resources"]:
        for alias in r.get("aliases", ()):
            old_type_chain, old_name = engine(alias).split("::")[2:4]
            new_type_chain, new_name = engine(r["urn"]).split("::")[2:4]
            assert old_name == new_name
            assert old_type_chain.split("$")[-1] == new_type_chain.split("$")[-1]
            assert old_type_chain.split("$")[:-1] == [GONE_COMPONENT]


def test_the_cluster_keeps_its_urns_without_aliases() -> None:
    """The AKS cluster and its pools are not moved at all: no alias stands between them and a replacement."""
    resources = plan_document("prod")["resources"]
    cluster = [r for r in resources if r["type"] == "azure-native:containerservice:ManagedCluster"]
    assert [engine(r["urn"]) for r in cluster] == [
        "urn:pulumi:prod::slm-platform::slm:compute:InferenceCluster$azure-native:containerservice:ManagedCluster"
        "::serving-aks"]
    assert "aliases" not in cluster[0]


class TestComparePlans:
    """``scripts/compare_plans.py`` decides the same way on small documents."""

    @staticmethod
    def res(urn: str, *, inputs: dict[str, Any] | None = None, aliases: tuple[str, ...] = (), custom: bool = True,
            typ: str = "kubernetes:core/v1:Namespace", parent: str | None = None) -> dict[str, Any]:
        return {"urn": urn, "type": typ, "name": urn.rsplit("::", 1)[1], "custom": custom, "protect": False,
                "inputs": inputs or {}, "parent": parent, "dependencies": [],
                **({"aliases": list(aliases)} if aliases else {})}

    OLD_NS = "urn:pulumi:s::p::slm:compute:InferenceCluster$kubernetes:core/v1:Namespace::serving-a-ns"
    NEW_NS = "urn:pulumi:s::p::slm:compute:ServingWorkloads$kubernetes:core/v1:Namespace::serving-a-ns"
    NEW_COMPONENT = "urn:pulumi:s::p::slm:compute:ServingWorkloads::serving"

    def docs(self, *, aliases: tuple[str, ...], inputs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        old = {"resources": [self.res(self.OLD_NS, inputs={"a": 1})]}
        new = {"resources": [
            self.res(self.NEW_COMPONENT, custom=False, typ="slm:compute:ServingWorkloads"),
            self.res(self.NEW_NS, inputs=inputs, aliases=aliases, parent=self.NEW_COMPONENT)]}
        return old, new

    def test_a_move_through_an_alias_with_the_same_inputs_is_no_change(self) -> None:
        old, new = self.docs(aliases=(self.OLD_NS,), inputs={"a": 1})
        lines, ok = compare_plans.compare(old, new, ["slm:compute:ServingWorkloads"])
        assert ok, lines

    def test_a_move_without_an_alias_is_a_delete_and_a_create(self) -> None:
        old, new = self.docs(aliases=(), inputs={"a": 1})
        lines, ok = compare_plans.compare(old, new, ["slm:compute:ServingWorkloads"])
        assert not ok
        assert f"  - {self.OLD_NS}" in lines
        assert f"  + {self.NEW_NS}" in lines

    def test_changed_inputs_are_reported(self) -> None:
        old, new = self.docs(aliases=(self.OLD_NS,), inputs={"a": 2})
        lines, ok = compare_plans.compare(old, new, ["slm:compute:ServingWorkloads"])
        assert not ok
        assert f"  ! {self.OLD_NS}: inputs changed" in lines


def test_the_script_plans_a_revision_and_the_tree_and_finds_them_equal(tmp_path: Path) -> None:
    """End to end on a clean checkout of HEAD (a temporary worktree, so local edits do not count): the script
    checks the revision out once more, plans ``local`` in both, and reports no difference (exit 0)."""
    import subprocess

    tree = tmp_path / "tree"
    subprocess.run(["git", "-C", str(REPO_ROOT), "worktree", "add", "--detach", "--quiet", str(tree), "HEAD"],
                   check=True)
    try:
        result = subprocess.run([sys.executable, str(tree / "scripts" / "compare_plans.py"), "HEAD", "--stack", "local"],
                                cwd=tree, capture_output=True, text=True, check=False)
    finally:
        subprocess.run(["git", "-C", str(REPO_ROOT), "worktree", "remove", "--force", str(tree)], check=False)
    assert (result.returncode, result.stdout) == (0, "local: same resources and inputs\n"), result.stderr
