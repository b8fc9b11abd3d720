"""The rules' shape tests answer exactly what ``Mapping`` / ``Sequence`` answer, on every value a rule sees.

``is_map`` and ``is_list`` skip the ABC check for the exact types that decide it (the pack asks ~170
times per resource); a value of any other type still gets the ABC's answer.
"""

from __future__ import annotations

import types
from collections import OrderedDict, UserDict, UserList
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from pulumi_policy.proxy import unknown_checking_proxy

from policies.rules.wire import KnownDict, Unknown, get, is_list, is_map, with_unknowns


class _Text(str):
    __slots__ = ()


class _Number(float):
    __slots__ = ()


VALUES: list[Any] = [
    {}, {"a": 1}, KnownDict(a=1), OrderedDict(a=1), UserDict(a=1), types.MappingProxyType({"a": 1}),
    unknown_checking_proxy({"a": [1]}), unknown_checking_proxy([1, {"b": 2}]),
    [], [1], (), (1,), UserList([1]), range(2), "", "text", _Text("x"), b"bytes", bytearray(b"x"),
    0, 1.5, _Number(2.0), True, None, Unknown("a.b"), object(), {1, 2}, frozenset(),
]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_shape_tests_agree_with_the_abcs(value: Any) -> None:
    assert is_map(value) is isinstance(value, Mapping)
    assert is_list(value) is (isinstance(value, Sequence) and not isinstance(value, str | bytes))


def test_paths_walk_maps_lists_and_proxies_alike() -> None:
    data = {"spec": {"containers": [{"name": "vllm", "args": ["--port", "8000"]}]}}
    for props in (data, with_unknowns(data), unknown_checking_proxy(data)):
        assert get(props, "spec.containers.0.args.1") == "8000"
        assert get(props, "spec.containers.1.name", "none") == "none"
        assert get(props, "spec.containers.0.name.x", "none") == "none"  # a string is not walked into
