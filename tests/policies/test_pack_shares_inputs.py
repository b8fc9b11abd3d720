"""The pack converts each resource once per Analyze call and hands every policy the same copy.

That is only safe while no rule edits its input: the second test runs the whole pack over real plans
and proves every shared copy is unchanged after all policies read it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks.pack_profile import InProcessGate, prepare
from policies import conversion, pack
from policies.rules.wire import Unknown
from slmctl.loader import load_stack_file
from slmctl.plan import make_plan

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", params=["prod", "local"])
def prepared(request: pytest.FixtureRequest) -> Iterator[InProcessGate]:
    path = ROOT / "stacks" / f"Pulumi.{request.param}.yaml"
    with pytest.MonkeyPatch.context() as mp:
        for key in ("PULUMI_PROJECT", "PULUMI_STACK", "PULUMI_DRY_RUN", "PULUMI_CONFIG"):
            mp.delenv(key, raising=False)  # prepare() sets them as the gate sets the pack's; undone after
        yield prepare(make_plan(load_stack_file(path)).recording, path)


def _plain(value: Any) -> Any:
    """A comparable snapshot: unknowns by path (comparing an ``Unknown`` is always False)."""
    if isinstance(value, Unknown):
        return ("unknown", value.path)
    if isinstance(value, dict):
        return {k: _plain(dict.__getitem__(value, k)) for k in value}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def test_each_resource_is_converted_once_per_call_not_once_per_policy(
        prepared: InProcessGate, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    original = pack.known_props

    def counted(value: Any, path: str = "") -> Any:
        if not path:
            calls.append(path)
        return original(value, path)

    monkeypatch.setattr(pack, "known_props", counted)
    resource_policies = sum(1 for s in pack.SPECS if s.rule is not None)
    assert resource_policies > 50
    for request in prepared.requests[:10]:
        calls.clear()
        prepared.servicer.Analyze(request, None)
        assert len(calls) == 1, request.urn  # one copy for every resource policy (was one per policy)


def test_no_rule_edits_the_properties_every_policy_shares(
        prepared: InProcessGate, monkeypatch: pytest.MonkeyPatch) -> None:
    shared: dict[int, tuple[Any, Any]] = {}
    known_once, views_once = pack._known_once, pack._views_once  # pyright: ignore[reportPrivateUsage]

    def remember(value: Any) -> None:
        if id(value) not in shared:  # snapshot when first handed out, before any rule has read it
            shared[id(value)] = (value, _plain(value))

    def spy_known(props: Any, path: str = "") -> Any:
        out = known_once(props, path)
        remember(out)
        return out

    def spy_views(type_: str, known: Any) -> Any:
        out = views_once(type_, known)
        for view in out:
            remember(view.props)
        return out

    monkeypatch.setattr(pack, "_known_once", spy_known)
    monkeypatch.setattr(pack, "_views_once", spy_views)
    findings = sum(len(prepared.servicer.Analyze(r, None).diagnostics) for r in prepared.requests)
    findings += len(prepared.servicer.AnalyzeStack(prepared.stack_request, None).diagnostics)
    assert len(shared) > len(prepared.requests)  # every resource, plus the stack copies and views
    assert findings > 0
    edited = [id_ for id_, (value, before) in shared.items() if _plain(value) != before]
    assert not edited


def test_the_pack_answers_what_the_sdks_own_methods_answer(prepared: InProcessGate) -> None:
    """conversion._analyze / _analyze_stack against the SDK's methods, on every request of a real gate."""
    servicer = prepared.servicer
    findings = 0
    for request in prepared.requests:
        ours = servicer.Analyze(request, None)
        assert ours == conversion.SDK_ANALYZE(servicer, request, None), request.urn
        findings += len(ours.diagnostics) + len(ours.not_applicable)
    assert findings  # something was compared
    stack = servicer.AnalyzeStack(prepared.stack_request, None)
    assert stack == conversion.SDK_ANALYZE_STACK(servicer, prepared.stack_request, None)


def test_the_stack_copy_is_the_analyzed_one_unless_it_holds_unknowns() -> None:
    """Paths only show in unknown leaves: AnalyzeStack reuses Analyze's copy only where there are none."""
    import pulumi_policy.policy as sdk

    unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # the engine's unknown sentinel
    plain = sdk.unknown_checking_proxy({"a": {"b": [1.0]}})
    holes = sdk.unknown_checking_proxy({"a": {"b": [unknown]}})

    def call(_self: Any, _request: Any, _context: Any) -> list[tuple[Any, Any]]:
        return [(pack._known_once(p), pack._known_once(p, "res")) for p in (plain, holes)]  # pyright: ignore[reportPrivateUsage]

    (plain_analyzed, plain_stack), (holes_analyzed, holes_stack) = conversion._per_request(call)(None, None, None)  # pyright: ignore[reportPrivateUsage]
    assert plain_stack is plain_analyzed
    assert holes_stack is not holes_analyzed
    leaf = lambda known: dict.__getitem__(dict.__getitem__(known, "a"), "b")[0]  # noqa: E731
    assert (leaf(holes_analyzed).path, leaf(holes_stack).path) == ("a.b[0]", "res.a.b[0]")
