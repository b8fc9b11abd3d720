"""A rule's declared types (``wire.applies_to``) are all it judges, so the pack may skip it for any other.

The pack skips a resource policy for a resource none of whose views has one of the rule's declared
types (``policies.pack._silence_check``). That is only sound if the rule, called with any other type,
reports nothing whatever the properties hold. The decorator enforces it for the decorated function.
A body that never looks at its type argument has no type check but the decorator's; a body that does
(branches per type, ``pod_spec``) is proved here not to judge more than it declares: called with any
other type token the rules and the pack know, it reads no property at all and returns nothing.
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from policies.pack import SPECS, Spec
from policies.rules import coverage, tokens
from policies.rules.wire import WORKLOAD_TYPES, Unknown, applies_to, judged_types, tracking_reads

RULES_DIR = Path(__file__).resolve().parents[2] / "policies" / "rules"
TOKEN_RE = re.compile(r"^[a-z][a-z0-9-]*:[A-Za-z0-9./-]*:[A-Za-z0-9]+$")


def _tokens_in_rules() -> set[str]:
    """Every string in the rules package shaped like a type token (module constants and literals in bodies)."""
    found: set[str] = set()
    for path in RULES_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and TOKEN_RE.match(node.value):
                found.add(node.value)
    return found


UNIVERSE = frozenset({
    *_tokens_in_rules(), *coverage.KNOWN_TYPES, *WORKLOAD_TYPES,
    *(v for v in vars(tokens).values() if isinstance(v, str) and TOKEN_RE.match(v)),
    # kinds no rule names: a CRD, an unknown Azure type, the List forms the coverage views look through
    "kubernetes:example.com/v1:Widget", "azure-native:example:Widget", "kubernetes:core/v1:List",
    "kubernetes:apps/v1:DeploymentList", "kubernetes:core/v1:ServicePatch", "pulumi:providers:kubernetes",
})
DECLARED = [s for s in SPECS if s.rule is not None and judged_types(s.rule) is not None]


class Probe(Mapping[str, Any]):
    """Properties that record every access: a rule that looks at them for a type judges that type."""

    def __init__(self) -> None:
        self.touched: list[str] = []

    def __getitem__(self, key: str) -> Any:
        self.touched.append(f"[{key}]")
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.touched.append(f"get({key})")
        return default

    def __contains__(self, key: object) -> bool:
        self.touched.append(f"in {key}")
        return False

    def __iter__(self) -> Iterator[str]:
        self.touched.append("iter")
        return iter(())

    def __len__(self) -> int:
        self.touched.append("len")
        return 0


def _reads_its_type(rule: Any) -> bool:
    """Whether the function's body uses its first argument (the type token) anywhere, nested helpers included."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(rule)))
    func = tree.body[0]
    assert isinstance(func, ast.FunctionDef)
    name = func.args.args[0].arg
    return any(isinstance(n, ast.Name) and n.id == name for stmt in func.body for n in ast.walk(stmt))


def _configs(spec: Spec) -> list[dict[str, Any]]:
    """The policy's defaults, and with every boolean option flipped (config-gated branches)."""
    defaults = {k: v["default"] for k, v in spec.config.items() if "default" in v}
    flipped = {**defaults, **{k: not v.get("default", False) for k, v in spec.config.items()
                              if v.get("type") == "boolean"}}
    return [{**c, "stackRegistries": []} for c in (defaults, flipped)]


def test_the_universe_holds_every_kind_the_pack_reads() -> None:
    assert len(UNIVERSE) > 100
    assert set(coverage.KNOWN_TYPES) <= UNIVERSE
    assert len(DECLARED) > 60  # most resource rules declare their types (the pack's speed depends on it)


@pytest.mark.parametrize("spec", DECLARED, ids=[s.name for s in DECLARED])
def test_a_rule_neither_reads_nor_reports_a_type_it_does_not_declare(spec: Spec) -> None:
    assert spec.rule is not None
    declared = judged_types(spec.rule)
    assert declared is not None
    assert declared <= UNIVERSE, sorted(declared - UNIVERSE)  # a declared token is a real one
    assert not spec.raw_type  # the pack compares declared types with views' normalized types
    inner = spec.rule.__wrapped__  # type: ignore[attr-defined]
    if not _reads_its_type(inner):
        return  # the decorator is its only type check: what it declares is what it judges
    looked: dict[str, list[str]] = {}
    for cfg in _configs(spec):
        for type_ in sorted(UNIVERSE - declared):
            probe = Probe()
            if inner(type_, probe, cfg) or probe.touched:
                looked[type_] = probe.touched
    assert not looked, f"{spec.name} judges types it does not declare: {looked}"


def test_type_blind_bodies_are_told_apart_from_branching_ones() -> None:
    from policies.rules import aks, foundry

    assert not _reads_its_type(aks.entra_rbac.__wrapped__)  # type: ignore[attr-defined]  # guard is the decorator
    assert _reads_its_type(foundry.local_auth_disabled.__wrapped__)  # type: ignore[attr-defined]  # two branches
    assert sum(not _reads_its_type(s.rule.__wrapped__) for s in DECLARED) > 10  # type: ignore[union-attr]


def test_applies_to_returns_nothing_unread_for_other_types() -> None:
    calls: list[str] = []

    @applies_to("a:b:C", frozenset({"a:b:D"}))
    def rule(type_: str, props: Mapping[str, Any], cfg: Mapping[str, Any]) -> list[str]:
        """Reads x."""
        del cfg
        calls.append(type_)
        return [f"x: found {props['x']}"]

    assert judged_types(rule) == frozenset({"a:b:C", "a:b:D"})
    assert (rule.__name__, rule.__doc__) == ("rule", "Reads x.")
    with tracking_reads() as reads:
        assert rule("a:b:E", {"x": Unknown("x")}, {}) == []
    assert (calls, reads) == ([], set())
    assert rule("a:b:D", {"x": 1}, {}) == ["x: found 1"]
    assert calls == ["a:b:D"]


def test_an_undecorated_rule_judges_every_type() -> None:
    assert judged_types(coverage.unknown_type) is None
    assert judged_types(lambda t, p, c: []) is None


@pytest.mark.parametrize(("rule", "judged"), [
    ("memory_fit", "kubernetes:apps/v1:Deployment"),
    ("autoscaling_metric", "kubernetes:keda.sh/v1alpha1:ScaledObject"),
])
def test_labels_unknown_at_preview_blind_only_the_kinds_a_rule_judges(rule: str, judged: str) -> None:
    """Both rules read labels or annotations before their type check; on any other kind that read made an
    unknown value (a first preview) a "cannot verify" finding of a check that can say nothing about it."""
    from policies.rules import serving

    check = getattr(serving, rule)
    unknown = {"metadata": {"labels": Unknown("metadata.labels"), "annotations": Unknown("metadata.annotations")},
               "spec": {"scaleTargetRef": {"name": Unknown("spec.scaleTargetRef.name")},
                        "template": {"spec": {"containers": [{"name": "vllm", "image": "vllm/vllm-openai:v0.9.2"}]}}}}
    for other in ("kubernetes:core/v1:Namespace", "kubernetes:core/v1:ConfigMap", tokens.ROLE_ASSIGNMENT):
        with tracking_reads() as reads:
            assert check(other, unknown, {}) == []
        assert reads == set(), other
    with tracking_reads() as reads:
        check(judged, unknown, {})
    assert reads  # the kind it judges still fails closed on what it cannot see
