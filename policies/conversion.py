"""Convert a request's properties once per request, not once per policy (pulumi_policy does the latter).

``pulumi_policy``'s analyzer runs ``deserialize_properties(json_format.MessageToDict(props))`` inside its
loop over policies: for the ~80 resource policies of this pack that is 80 identical conversions of every
resource (and of its provider), 55 % of the pack's CPU, and for ``AnalyzeStack`` every resource again
for each stack policy. ``install`` makes both calls return the first result for the same message within
one ``Analyze`` / ``AnalyzeStack`` call (a per-thread memo that ends with the call). The results are the
same objects the SDK would have built; policies only read them (through its unknown-checking proxy and
``policies.pack.known_props``, which copies), so every finding is unchanged: the gate matrix tests prove it.

The SDK also wraps the converted properties in a fresh unknown-checking proxy for every policy; that
proxy is only read (``known_props`` copies it before any rule runs), so it is built once per message too. ``per_request`` lets the
pack remember its own per-resource work (``known_props``, the coverage views) for the same call.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

import pulumi_policy.policy as sdk
from google.protobuf import json_format
from google.protobuf.message import Message

_scope = threading.local()
_deserialize_properties: Callable[..., dict[str, Any]] = getattr(sdk, "deserialize_properties")  # noqa: B009
_unknown_checking_proxy: Callable[[dict[str, Any]], Any] = getattr(sdk, "unknown_checking_proxy")  # noqa: B009


def _memo() -> dict[Any, tuple[object, Any]] | None:
    return getattr(_scope, "memo", None)


def per_request(key: Any, source: object, compute: Callable[[], Any]) -> Any:
    """``compute()``, remembered for ``(key, source)`` until the current Analyze / AnalyzeStack call ends.

    ``key`` must contain ``id(source)``; ``source`` is held by the memo, so that id is not reused during
    the call. Outside a call (tests, tools importing the pack) nothing is remembered.
    """
    memo = _memo()
    if memo is None:
        return compute()
    hit = memo.get(key)
    if hit is None or hit[0] is not source:  # the source is held, so its id cannot be reused meanwhile
        hit = (source, compute())
        memo[key] = hit
    return hit[1]


class _JsonFormatOncePerRequest:
    """Stands in for the ``json_format`` module inside ``pulumi_policy.policy`` only."""

    def __getattr__(self, name: str) -> Any:
        return getattr(json_format, name)

    @staticmethod
    def MessageToDict(message: Message, *args: Any, **kwargs: Any) -> dict[str, Any]:  # noqa: N802 (protobuf's name)
        """``json_format.MessageToDict``, remembered per message during one analyzer call."""
        if args or kwargs:
            return json_format.MessageToDict(message, *args, **kwargs)
        return per_request(("dict", id(message)), message, lambda: json_format.MessageToDict(message))


def _deserialize_once(props: dict[str, Any], proxy_secrets: bool = False) -> dict[str, Any]:
    return per_request(("deserialized", id(props), proxy_secrets), props,
                       lambda: _deserialize_properties(props, proxy_secrets))


def _proxy_once(props: dict[str, Any]) -> Any:
    return per_request(("proxy", id(props)), props, lambda: _unknown_checking_proxy(props))


def _per_request(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(self: Any, request: Any, context: Any) -> Any:
        _scope.memo = {}
        try:
            return method(self, request, context)
        finally:
            _scope.memo = None

    return call


def install() -> None:
    """Make the SDK's analyzer convert each message once per ``Analyze`` / ``AnalyzeStack`` call (idempotent)."""
    servicer: Any = sdk._PolicyAnalyzerServicer
    if getattr(servicer, "_slm_converts_once", False):
        return
    setattr(sdk, "json_format", _JsonFormatOncePerRequest())  # noqa: B010 (replaces a module attribute)
    setattr(sdk, "deserialize_properties", _deserialize_once)  # noqa: B010
    setattr(sdk, "unknown_checking_proxy", _proxy_once)  # noqa: B010
    servicer.Analyze = _per_request(servicer.Analyze)
    servicer.AnalyzeStack = _per_request(servicer.AnalyzeStack)
    servicer._slm_converts_once = True
