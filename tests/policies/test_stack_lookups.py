"""The lookups stack rules repeat for every pair of resources answer what a fresh lookup answers.

``namespace_of`` keeps its answer on the pack's converted properties, and the stack index serves
by-URN, by-type and workload lookups of the stack tuple the pack hands every stack rule; both exist
because AnalyzeStack of 10,035 resources spent most of its time repeating them.
"""

from __future__ import annotations

import pytest

from policies.rules import stack as stack_rules
from policies.rules.plan_graph import by_urn, clusters
from policies.rules.stack import StackResource, of_type, workloads_of
from policies.rules.wire import KnownDict, Unknown, namespace_of, tracking_reads, with_unknowns

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SERVICE = "kubernetes:core/v1:Service"
CLUSTER = "azure-native:containerservice:ManagedCluster"


def _known(namespace: object) -> KnownDict:
    return with_unknowns({"metadata": {"name": "x", "namespace": namespace}})


def test_a_known_namespace_is_kept_and_is_the_fresh_answer() -> None:
    props = _known("inference")
    assert namespace_of(props) == "inference"
    assert namespace_of(props) == "inference"  # the kept answer
    assert namespace_of({"metadata": {"namespace": "inference"}}) == "inference"  # plain dicts: computed
    assert namespace_of(with_unknowns({"metadata": {}})) == "default"
    assert namespace_of(with_unknowns({})) == "default"
    assert namespace_of(_known("")) == "default"
    assert dict(props) == {"metadata": {"name": "x", "namespace": "inference"}}  # its items are untouched


def test_an_unknown_namespace_is_read_again_by_every_rule_that_asks() -> None:
    sentinel = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # the engine's unknown string
    props = _known(sentinel)
    assert isinstance(props["metadata"]["namespace"], Unknown)
    for _ in range(2):  # two rules: each must record the read (fail closed in staging and prod)
        with tracking_reads() as reads:
            assert namespace_of(props) == "default"
        assert reads == {"metadata.namespace"}
    unknown_metadata = with_unknowns({"metadata": sentinel})
    for _ in range(2):
        with tracking_reads() as reads:
            namespace_of(unknown_metadata)
        assert reads == {"metadata"}


def _resources() -> list[StackResource]:
    return [
        StackResource(CLUSTER, "aks", "urn:aks", {}),
        StackResource(DEPLOYMENT, "a", "urn:a", {}),
        StackResource(SERVICE, "a", "urn:a-svc", {}),
        StackResource("kubernetes:batch/v1:Job", "j", "urn:j", {}),
        StackResource(DEPLOYMENT, "b", "urn:b", {}),
        StackResource(DEPLOYMENT, "b-again", "urn:b", {}),  # a duplicate URN: the last wins, as in a dict
    ]


def test_the_stack_index_answers_what_a_scan_answers_in_stack_order() -> None:
    listed = _resources()
    for resources in (tuple(listed), listed):  # the pack's tuple (indexed) and any other sequence (scanned)
        assert of_type(resources, DEPLOYMENT) == [r for r in listed if r.type == DEPLOYMENT]
        assert of_type(resources, "kubernetes:core/v1:Pod") == []
        assert workloads_of(resources) == [listed[1], listed[3], listed[4], listed[5]]
        assert dict(by_urn(resources)) == {r.urn: r for r in listed}
        assert list(by_urn(resources)) == list({r.urn: r for r in listed})
        assert clusters(resources) == [listed[0]]


def test_a_new_tuple_is_indexed_anew_and_answers_cannot_edit_the_index() -> None:
    first = tuple(_resources())
    of_type(first, DEPLOYMENT).clear()  # a caller's list is its own
    assert len(of_type(first, DEPLOYMENT)) == 3
    second = (*first, StackResource(DEPLOYMENT, "c", "urn:c", {}))
    assert len(of_type(second, DEPLOYMENT)) == 4
    assert len(of_type(first, DEPLOYMENT)) == 3
    with pytest.raises(TypeError):  # the URN index is shared by every stack rule of a call: read-only
        by_urn(first)["urn:new"] = first[0]  # type: ignore[index]
    assert stack_rules._last_index is not None
    assert stack_rules._last_index.resources is first
