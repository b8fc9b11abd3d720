"""The pack converts a resource's properties once per Analyze call, not once per policy."""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Iterator
from typing import Any

import pulumi_policy.policy as sdk
import pytest
from google.protobuf import json_format
from pulumi.runtime.proto import analyzer_pb2
from pulumi_policy import EnforcementLevel, ResourceValidationPolicy, StackValidationPolicy

from policies import conversion
from policies.structs import struct_to_python

POLICIES = 5


def _servicer(seen: list[Any]) -> Any:
    def validate(args: Any, report: Any) -> None:
        seen.append(dict(args.props))
        if args.props.get("publicNetworkAccess") == "Enabled":
            report("public")

    def validate_stack(args: Any, report: Any) -> None:
        seen.append([dict(r.props) for r in args.resources])

    policies: list[Any] = [ResourceValidationPolicy(f"p{i}", "d", validate, EnforcementLevel.MANDATORY)
                           for i in range(POLICIES)]
    policies += [StackValidationPolicy(f"s{i}", "d", validate_stack, EnforcementLevel.MANDATORY) for i in range(2)]
    return sdk._PolicyAnalyzerServicer(
        "pack", "0.0.1", policies, EnforcementLevel.ADVISORY, None, None, None, None, None, None, None)


def _request() -> analyzer_pb2.AnalyzeRequest:
    req = analyzer_pb2.AnalyzeRequest(type="azure-native:storage:StorageAccount", urn="urn:x", name="x")
    req.properties.update({"publicNetworkAccess": "Enabled", "tags": {"a": "b"}})
    req.provider.CopyFrom(analyzer_pb2.AnalyzerProviderResource(type="pulumi:providers:azure-native", urn="urn:p",
                                                                name="p"))
    req.provider.properties.update({"location": "swedencentral"})
    return req


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts conversions of a Struct to Python (the pack's ``struct_to_python``, or json_format's)."""
    calls = [0]
    original, original_json = conversion._struct_dict_of, json_format.MessageToDict  # pyright: ignore[reportPrivateUsage]

    def counted(message: Any, *args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return original(message, *args, **kwargs)

    def counted_json(message: Any, *args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return original_json(message, *args, **kwargs)

    monkeypatch.setattr(conversion, "_struct_dict_of", counted)
    monkeypatch.setattr(json_format, "MessageToDict", counted_json)
    return calls


def test_each_message_is_converted_once_per_call_with_the_same_findings(monkeypatch: pytest.MonkeyPatch) -> None:
    conversion.install()
    calls = _counting(monkeypatch)
    seen: list[Any] = []
    response = _servicer(seen).Analyze(_request(), None)
    assert calls[0] == 2  # the resource's properties and its provider's, once each (was 2 per policy)
    assert [d.policyName for d in response.diagnostics] == [f"p{i}" for i in range(POLICIES)]
    assert seen == [{"publicNetworkAccess": "Enabled", "tags": {"a": "b"}}] * POLICIES


def test_stack_resources_are_converted_once_per_call(monkeypatch: pytest.MonkeyPatch) -> None:
    conversion.install()
    calls = _counting(monkeypatch)
    req = analyzer_pb2.AnalyzeStackRequest()
    for i in range(3):
        res = req.resources.add(type="t", urn=f"urn:{i}", name=f"r{i}")
        res.properties.update({"i": i})
    seen: list[Any] = []
    _servicer(seen).AnalyzeStack(req, None)
    assert calls[0] == 3  # once per resource, not once per resource per stack policy
    assert seen == [[{"i": 0.0}, {"i": 1.0}, {"i": 2.0}]] * 2


def test_a_changed_message_is_converted_again_and_an_identical_one_reused(monkeypatch: pytest.MonkeyPatch) -> None:
    conversion.install()
    servicer = _servicer([])
    servicer.Analyze(_request(), None)
    calls = _counting(monkeypatch)
    changed = _request()
    changed.properties.update({"publicNetworkAccess": "Disabled"})
    response = servicer.Analyze(changed, None)
    assert calls[0] == 1  # the changed properties; the provider's bytes are the same as the last call's
    assert not response.diagnostics  # judged on the new value, not the remembered one
    servicer.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(), None)


def test_analyze_stack_reuses_the_analyze_conversions_then_forgets_them(monkeypatch: pytest.MonkeyPatch) -> None:
    conversion.install()
    seen: list[Any] = []
    servicer = _servicer(seen)
    stack = analyzer_pb2.AnalyzeStackRequest()
    for i in range(3):
        req = analyzer_pb2.AnalyzeRequest(type="t", urn=f"urn:{i}", name=f"r{i}")
        req.properties.update({"i": i})
        servicer.Analyze(req, None)
        stack.resources.add(type="t", urn=f"urn:{i}", name=f"r{i}").properties.CopyFrom(req.properties)
    calls = _counting(monkeypatch)
    servicer.AnalyzeStack(stack, None)
    assert calls[0] == 0  # the engine sends each resource twice: Analyze, then AnalyzeStack
    assert seen[-2:] == [[{"i": 0.0}, {"i": 1.0}, {"i": 2.0}]] * 2
    servicer.AnalyzeStack(stack, None)  # the first AnalyzeStack ended the preview: nothing is remembered
    assert calls[0] == 3


@pytest.mark.parametrize(("method", "digest", "ours"), [
    (conversion.SDK_ANALYZE_STACK, conversion.SDK_ANALYZE_STACK_SHA256, "_analyze_stack"),
    (conversion.SDK_ANALYZE, conversion.SDK_ANALYZE_SHA256, "_analyze")])
def test_the_reproduced_methods_are_the_installed_sdks(method: Any, digest: str, ours: str) -> None:
    source = inspect.getsource(method)
    assert hashlib.sha256(source.encode()).hexdigest() == digest, (
        f"pulumi_policy's {method.__name__} changed: port the change to policies/conversion.py:{ours}")


def test_analyze_stack_answers_what_the_sdk_answers() -> None:
    conversion.install()
    req = analyzer_pb2.AnalyzeStackRequest()
    for i in range(3):
        res = req.resources.add(type="t", urn=f"urn:{i}", name=f"r{i}", parent="urn:0" if i else "",
                                dependencies=["urn:0", "urn:missing"] if i == 2 else [])
        res.propertyDependencies["a"].urns.extend(["urn:1"])
        res.properties.update({"i": i, "u": "04da6b54-80e4-46f7-96ec-b56ff0331ba9"})

    def linked(args: Any, report: Any) -> None:
        for r in args.resources:
            report(f"{r.name} parent={r.parent.name if r.parent else None} deps={[d.name for d in r.dependencies]} "
                   f"a={[d.name for d in r.property_dependencies['a']]}", r.urn)

    def unknown(args: Any, report: Any) -> None:
        del report
        _ = args.resources[0].props["u"]  # an unknown: the SDK reports "can't run policy"

    def not_applicable(args: Any, report: Any) -> None:
        del report
        args.not_applicable("only on Tuesdays")

    policies: list[Any] = [StackValidationPolicy("linked", "d", linked, EnforcementLevel.REMEDIATE),
                           StackValidationPolicy("unknown", "d", unknown, EnforcementLevel.MANDATORY),
                           StackValidationPolicy("na", "d", not_applicable, EnforcementLevel.ADVISORY),
                           StackValidationPolicy("off", "d", linked, EnforcementLevel.DISABLED)]
    servicer = sdk._PolicyAnalyzerServicer(
        "pack", "0.0.1", policies, EnforcementLevel.ADVISORY, None, None, None, None, None, None, None)
    ours = servicer.AnalyzeStack(req, None)
    theirs = conversion.SDK_ANALYZE_STACK(servicer, req, None)
    assert ours == theirs
    assert len(ours.diagnostics) == 4  # three resources of "linked" (remediate -> mandatory) and "can't run"
    assert "r2 parent=r0 deps=['r0'] a=['r1']" in [d.message.splitlines()[-1] for d in ours.diagnostics]
    assert [n.reason for n in ours.not_applicable] == ["only on Tuesdays"]


def test_levels_a_configure_call_sets_apply_to_the_next_analyze() -> None:
    """The enabled resource policies are selected once per Configure, not once per call: a new level counts."""
    conversion.install()
    servicer = _servicer([])
    assert len(servicer.Analyze(_request(), None).diagnostics) == POLICIES
    request = analyzer_pb2.ConfigureAnalyzerRequest()
    request.policyConfig["p0"].enforcementLevel = analyzer_pb2.DISABLED
    request.policyConfig["p1"].enforcementLevel = analyzer_pb2.REMEDIATE
    servicer.Configure(request, None)
    response = servicer.Analyze(_request(), None)
    assert response == conversion.SDK_ANALYZE(servicer, _request(), None)
    assert [(d.policyName, d.enforcementLevel) for d in response.diagnostics][:2] == [
        ("p1", analyzer_pb2.MANDATORY), ("p2", analyzer_pb2.MANDATORY)]


def _edge_struct() -> Any:
    from google.protobuf import struct_pb2

    s = struct_pb2.Struct()
    s.update({"z": None, "a": [1, 2.5, "x", True, None, [], {}, [{"k": [False]}]], "empty": {}, "list": [],
              "unicodé": "ü\u2028", "n": -0.0, "big": 1e300, "secret": {
                  "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", "value": "s"}})
    return s


def test_struct_conversion_is_json_formats_for_every_request_the_gate_sends() -> None:
    """``struct_to_python`` replaces ``MessageToDict`` for Structs: the same dict, keys in the same order."""
    import json

    from slmctl.gate import Requests
    from slmctl.loader import REPO_ROOT, load_stack_file
    from slmctl.plan import record_stack

    structs = [_edge_struct()]
    for stack in ("dev", "prod"):
        regs = record_stack(load_stack_file(REPO_ROOT / "stacks" / f"Pulumi.{stack}.yaml")).registrations
        requests = Requests(regs)
        for reg in regs:
            req = requests.stack_resource(reg)
            structs += [req.properties, req.provider.properties]
    assert len(structs) > 300
    for s in structs:
        ours, theirs = struct_to_python(s), json_format.MessageToDict(s)
        assert json.dumps(ours) == json.dumps(theirs)  # values and key order
        assert ours == theirs


def test_a_non_finite_number_raises_json_formats_error() -> None:
    from google.protobuf import struct_pb2

    s = struct_pb2.Struct()
    s.update({"a": {"b": [float("nan")]}})
    with pytest.raises(ValueError, match="NaN") as theirs:
        json_format.MessageToDict(s)
    req = analyzer_pb2.AnalyzeRequest(type="t", urn="urn:x", name="x")
    req.properties.CopyFrom(s)
    conversion.install()
    with pytest.raises(ValueError, match="NaN") as ours:
        _servicer([]).Analyze(req, None)
    assert str(ours.value) == str(theirs.value)


@pytest.fixture
def collector_restored(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Full collections counted; the collector's thresholds, frozen set and the pack's flags restored after."""
    import gc

    thresholds = gc.get_threshold()
    full: list[int] = []
    collect = gc.collect

    def counted(generation: int = 2) -> int:
        full.append(generation)
        return collect(generation)

    monkeypatch.setattr(conversion.gc, "collect", counted)
    monkeypatch.setattr(conversion, "_full_collections_deferred", False)
    monkeypatch.setattr(conversion, "_full_collection_due", False)
    try:
        yield full
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def test_the_pack_process_defers_full_collections_to_once_per_preview(collector_restored: list[int]) -> None:
    """What a preview's calls share is long-lived: no automatic full collection traverses it again and again
    (a third of Analyze's CPU at 10,035 resources); one runs when the next preview's first call arrives."""
    import gc

    conversion.install()
    conversion.defer_full_collections()
    assert gc.get_threshold()[2] == conversion.NO_AUTOMATIC_FULL_COLLECTION
    assert gc.get_freeze_count() > 0  # the imports are never traversed again
    collector_restored.clear()
    servicer = _servicer([])
    for _ in range(3):
        servicer.Analyze(_request(), None)
    assert collector_restored == []  # none during a preview's Analyze calls
    servicer.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(), None)
    assert collector_restored == []  # nor on the preview's last call (the engine is waiting for it)
    servicer.Analyze(_request(), None)
    assert collector_restored == [2]  # the next call, after the memo was dropped: one full collection
    servicer.Analyze(_request(), None)
    assert collector_restored == [2]


def test_outside_the_pack_process_the_collector_is_left_alone(collector_restored: list[int]) -> None:
    import gc

    conversion.install()
    before = gc.get_threshold()
    servicer = _servicer([])
    servicer.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(), None)
    servicer.Analyze(_request(), None)
    assert (collector_restored, gc.get_threshold()) == ([], before)


def test_the_entry_point_the_engine_runs_defers_full_collections() -> None:
    """``policies/__main__.py`` (what ``pulumi preview --policy-pack`` runs) sets it up before serving."""
    import subprocess
    import sys
    from pathlib import Path

    main = Path(conversion.__file__).with_name("__main__.py")
    probe = ("import gc, runpy, pulumi_policy\n"
             "pulumi_policy.PolicyPack = lambda **kwargs: print('served', len(kwargs['policies']))\n"
             f"runpy.run_path({str(main)!r}, run_name='__main__')\n"
             "print('thresholds', gc.get_threshold()[2], 'frozen', gc.get_freeze_count() > 0)\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    served, thresholds = done.stdout.splitlines()
    assert int(served.split()[1]) > 100  # the pack's policies, handed to the server
    assert thresholds == f"thresholds {conversion.NO_AUTOMATIC_FULL_COLLECTION} frozen True"
