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

Across calls, a Struct with the same bytes is converted once: the engine sends every resource (and
its provider, the same for hundreds of resources) to ``Analyze`` and then again, all together, to
``AnalyzeStack``. The conversion is a pure function of the bytes, so the reused result is the one a
fresh conversion would build. What is remembered across calls is dropped when an ``AnalyzeStack``
call ends (the engine's last call of a preview) or when it reaches ``ACROSS_CALLS_LIMIT`` entries.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import os
import threading
from collections.abc import Callable
from typing import Any, Final

import pulumi_policy.policy as sdk
from google.protobuf import json_format
from google.protobuf.message import Message

from policies.structs import struct_dict

_sdk: Any = sdk
"""The SDK module as seen at call time (its names include the ones ``install`` replaces)."""
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


ACROSS_CALLS_LIMIT: Final = 60_000
"""Entries kept across calls (about five per resource: its dict, deserialized and proxied properties and the
pack's known copies) before they are all dropped: ~12,000 resources."""
_across: dict[Any, tuple[object, Any]] = {}


def across_calls_get(key: Any, source: object) -> Any:
    """What :func:`across_calls` remembers for ``(key, source)``, or None (also outside a call)."""
    hit = _across.get(key) if _memo() is not None else None
    return hit[1] if hit is not None and hit[0] is source else None


def across_calls(key: Any, source: object, compute: Callable[[], Any]) -> Any:
    """``compute()`` remembered across calls until the next AnalyzeStack ends; ``source`` held as in ``per_request``.

    Only inside a call (``per_request`` semantics outside one: nothing is remembered)."""
    if _memo() is None:
        return compute()
    hit = _across.get(key)
    if hit is None or hit[0] is not source:
        if len(_across) >= ACROSS_CALLS_LIMIT:
            _drop_across_calls()
        hit = (source, compute())
        _across[key] = hit
    return hit[1]


def _drop_across_calls() -> None:
    global _full_collection_due  # noqa: PLW0603 (process-wide, like the memo itself)
    _across.clear()
    _full_collection_due = _full_collections_deferred


NO_AUTOMATIC_FULL_COLLECTION: Final = 1_000_000
"""The collector's third threshold under :func:`defer_full_collections`: young collections before an
automatic full one (about 10**10 allocations: never, within one preview)."""
_full_collections_deferred = False
_full_collection_due = False


def defer_full_collections() -> None:
    """In the pack's own process (``policies/__main__.py``): no automatic full collection during a preview.

    What the calls remember across calls (every resource's converted properties, dozens of containers
    each) is long-lived by design, and each automatic full collection traversed all of it again: at
    10,035 resources that was a third of Analyze's CPU, growing with the stack. Young collections still
    run, so short-lived cycles are still freed; the imports are frozen (never traversed again); and the
    first call after the memo is dropped (an AnalyzeStack ended, or the memo reached its limit) runs one
    full collection first, so cyclic garbage that outlived the young generations lasts one preview at most.
    """
    global _full_collections_deferred  # noqa: PLW0603
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, NO_AUTOMATIC_FULL_COLLECTION)
    _full_collections_deferred = True


def _collect_if_due() -> None:
    global _full_collection_due  # noqa: PLW0603
    if _full_collection_due:
        _full_collection_due = False
        gc.collect()


_struct_dict_of = struct_dict  # one name the tests can count conversions through


def _struct_dict(message: Message) -> dict[str, Any]:
    """``MessageToDict`` of a Struct, the same dict object for the same bytes (within a call: the same message)."""
    return per_request(("dict", id(message)), message, lambda: across_calls(
        ("dict", message.SerializeToString(deterministic=True)), None, lambda: _struct_dict_of(message)))


class _JsonFormatOncePerRequest:
    """Stands in for the ``json_format`` module inside ``pulumi_policy.policy`` only."""

    def __getattr__(self, name: str) -> Any:
        return getattr(json_format, name)

    @staticmethod
    def MessageToDict(message: Message, *args: Any, **kwargs: Any) -> dict[str, Any]:  # noqa: N802 (protobuf's name)
        """``json_format.MessageToDict``, remembered per message during one analyzer call."""
        if args or kwargs:
            return json_format.MessageToDict(message, *args, **kwargs)
        if message.DESCRIPTOR.full_name == "google.protobuf.Struct":
            return _struct_dict(message)
        return per_request(("dict", id(message)), message, lambda: json_format.MessageToDict(message))


def _deserialize_once(props: dict[str, Any], proxy_secrets: bool = False) -> dict[str, Any]:
    return across_calls(("deserialized", id(props), proxy_secrets), props,
                         lambda: _deserialize_properties(props, proxy_secrets))


def _proxy_once(props: dict[str, Any]) -> Any:
    return across_calls(("proxy", id(props)), props, lambda: _unknown_checking_proxy(props))


def _once_per_message(method: Callable[[Any, Any], Any], name: str) -> Callable[[Any, Any], Any]:
    """A servicer helper that only reads one request message (options, provider), remembered per message."""

    @functools.wraps(method)
    def helper(self: Any, message: Any) -> Any:
        return per_request((name, id(message)), message, lambda: method(self, message))

    return helper


_RUNTIME_ENV: Final = ("PULUMI_CONFIG", "PULUMI_PROJECT", "PULUMI_STACK", "PULUMI_DRY_RUN", "PULUMI_ORGANIZATION")


def _once_per_environment(method: Callable[[Any], None]) -> Callable[[Any], None]:
    """``_configure_runtime_settings`` (config and settings from the environment) again only when that changed.

    The SDK re-reads the environment, re-sets every config key and re-creates the runtime settings on
    every call; the pack's environment is fixed when the engine starts it.
    """

    @functools.wraps(method)
    def configure(self: Any) -> None:
        seen = tuple(os.environ.get(k) for k in _RUNTIME_ENV)
        if getattr(self, "_slm_runtime_env", None) != seen:
            method(self)
            self._slm_runtime_env = seen

    return configure


SDK_ANALYZE_STACK_SHA256: Final = "3917a008482c2387d7da37f65d889970933e8df8efc57270559e20b36be837bf"
"""sha256 of the SDK's ``AnalyzeStack`` source that ``_analyze_stack`` reproduces (pulumi-policy 1.21.0).

``tests/policies/test_conversion_once.py`` fails when an SDK upgrade changes it: re-read the SDK's
method and port the change before updating this digest."""


SDK_ANALYZE_STACK: Final[Callable[..., Any]] = sdk._PolicyAnalyzerServicer.AnalyzeStack
"""The SDK's own method (captured before ``install`` replaces it), for the tests that compare the two."""
SDK_ANALYZE: Final[Callable[..., Any]] = sdk._PolicyAnalyzerServicer.Analyze
SDK_ANALYZE_SHA256: Final = "75db9cf8fc9d158596909b9b3f77bf48815990a6f513f2bb35728a67e4d8a515"
"""sha256 of the SDK's ``Analyze`` source that ``_analyze`` reproduces (pulumi-policy 1.21.0); see above."""


def _analyze(self: Any, request: Any, _context: Any) -> Any:
    """The SDK's ``Analyze`` with the resource's properties, options and provider built once per call.

    The SDK builds them again for each of the ~80 resource policies (the same values: ``install`` already
    made the conversion itself once per call), and a report closure for each; here a policy that
    reports nothing (``SILENT_ATTR``) gets none. Everything else is the SDK's loop unchanged.
    """
    self._configure_runtime_settings()
    response = _sdk.proto.AnalyzeResponse()
    shared: tuple[Any, Any, Any] | None = None
    for policy, level, validates in _resource_policies(self):
        if not validates:
            response.not_applicable.append(_sdk.proto.PolicyNotApplicable(
                policy_name=policy.name, reason="Policy does not implement validate"))
            continue
        if shared is None:
            props = _sdk.unknown_checking_proxy(_sdk.deserialize_properties(
                _sdk.json_format.MessageToDict(request.properties)))
            shared = (props, self._get_resource_options(request), self._get_provider_resource(request))
        props, opts, provider = shared
        silent = getattr(policy, SILENT_ATTR, None)
        if silent is not None and silent(request.type, props, self._PolicyAnalyzerServicer__policy_pack_config.get(
                policy.name)):
            continue  # it would report nothing: the SDK path below would add nothing to the response
        report_violation = self._create_report_violation(response, policy.name, policy.description, level,
                                                         policy.severity)
        args = _sdk.ResourceValidationArgs(request.type, props, request.urn, request.name, opts, provider,
                                           self._get_policy_config(policy.name),
                                           self._PolicyAnalyzerServicer__stack_tags)
        _validate(self, policy, args, report_violation, response)
    return response


SILENT_ATTR: Final = "slm_silent"
"""A resource policy may carry ``slm_silent(type, props, config) -> bool``: True when its validator would
report nothing for this resource (no violation, no not-applicable, no raise). ``_analyze`` asks it first
and skips the SDK's per-policy work (report closure, args, config copy, validate) for such a policy;
any other answer runs the policy exactly as the SDK does. ``policies.pack`` sets it on its own policies."""


def _resource_policies(self: Any) -> list[tuple[Any, Any, bool]]:
    """The SDK's per-call selection, ``(policy, level, has_validation)`` of each enabled resource policy
    (remediate as mandatory), made again only when ``Configure`` replaced the levels."""
    levels = self._PolicyAnalyzerServicer__policy_pack_config_enforcement_level
    cached = getattr(self, "_slm_resource_policies", None)
    if cached is None or cached[0] is not levels:
        cached = (levels, [(p, level, p.has_validation()) for p, level in _enabled(self, _sdk.ResourceValidationPolicy)])
        self._slm_resource_policies = cached
    return cached[1]


def _enabled(self: Any, kind: type) -> list[tuple[Any, Any]]:
    """The SDK's selection: ``(policy, level)`` of each policy of ``kind`` not disabled, remediate as mandatory."""
    selected: list[tuple[Any, Any]] = []
    for policy in self._PolicyAnalyzerServicer__policies:
        level = self._get_enforcement_level(policy)
        if level == _sdk.EnforcementLevel.DISABLED or not isinstance(policy, kind):
            continue
        if level == _sdk.EnforcementLevel.REMEDIATE:
            level = _sdk.EnforcementLevel.MANDATORY
        selected.append((policy, level))
    return selected


def _validate(self: Any, policy: Any, args: Any, report_violation: Any, response: Any) -> None:
    """The SDK's per-policy step, shared by Analyze and AnalyzeStack: run the validator (awaiting a
    coroutine), and report an unknown value as the SDK's advisory "can't run" diagnostic and a
    not-applicable policy as such."""
    name, version = self._PolicyAnalyzerServicer__policy_pack_name, self._PolicyAnalyzerServicer__policy_pack_version
    try:
        result = policy.validate(args, report_violation)
        if result is not None and _sdk.isawaitable(result):  # the pack's validators return None
            loop = asyncio.new_event_loop()
            loop.run_until_complete(asyncio.Task(result, loop=loop))
            loop.close()
    except _sdk.UnknownValueError as e:
        response.diagnostics.append(_sdk.proto.AnalyzeDiagnostic(
            policyName=policy.name, policyPackName=name, policyPackVersion=version,
            message=(f"can't run policy '{policy.name}' from policy pack '{name}@v{version}' during preview: "
                     f"{e.message}"),
            urn="", description=policy.description,
            enforcementLevel=self._map_enforcement_level(_sdk.EnforcementLevel.ADVISORY)))
    except _sdk._NotApplicableError as e:
        response.not_applicable.append(_sdk.proto.PolicyNotApplicable(policy_name=policy.name,
                                                                      reason=e.reason or ""))


def _stack_resources(self: Any, request: Any) -> list[Any]:
    """The SDK's ``PolicyResource`` list for an ``AnalyzeStackRequest``: parents and dependencies linked."""
    intermediates: list[tuple[Any, str, list[str], dict[str, list[str]]]] = []
    for r in request.resources:
        props = _sdk.unknown_checking_proxy(_sdk.deserialize_properties(_sdk.json_format.MessageToDict(r.properties)))
        resource = _sdk.PolicyResource(r.type, props, r.urn, r.name, self._get_resource_options(r),
                                      self._get_provider_resource(r), None, [], {})
        property_dependencies = {k: list(v.urns) for k, v in r.propertyDependencies.items()}
        intermediates.append((resource, r.parent, list(r.dependencies), property_dependencies))
    by_urn = {i[0].urn: i[0] for i in intermediates}
    for resource, parent, dependencies, property_dependencies in intermediates:
        if parent is not None and parent in by_urn:
            resource.parent = by_urn[parent]
        resource.dependencies.extend(by_urn[d] for d in dependencies if d in by_urn)
        for k, urns in property_dependencies.items():
            resource.property_dependencies[k] = [by_urn[d] for d in urns if d in by_urn]
    return [i[0] for i in intermediates]


def _analyze_stack(self: Any, request: Any, _context: Any) -> Any:
    """The SDK's ``AnalyzeStack`` with the resource list built once per call instead of once per stack policy.

    Everything else is the SDK's loop unchanged (levels, remediate as mandatory, unknown values and
    not-applicable as the SDK reports them). The stack policies all receive the same list; the pack's
    validators only read it.
    """
    self._configure_runtime_settings()
    response = _sdk.proto.AnalyzeResponse()
    resources: list[Any] | None = None
    for policy, level in _enabled(self, _sdk.StackValidationPolicy):
        report_violation = self._create_report_violation(response, policy.name, policy.description, level,
                                                         policy.severity)
        if resources is None:
            resources = _stack_resources(self, request)
        args = _sdk.StackValidationArgs(resources, self._get_policy_config(policy.name),
                                       self._PolicyAnalyzerServicer__stack_tags)
        _validate(self, policy, args, report_violation, response)
    return response


def _per_request(method: Callable[..., Any], *, last: bool = False) -> Callable[..., Any]:
    """``method`` with a fresh per-call memo; ``last``: it also drops what is remembered across calls."""

    @functools.wraps(method)
    def call(self: Any, request: Any, context: Any) -> Any:
        _collect_if_due()
        _scope.memo = {}
        try:
            return method(self, request, context)
        finally:
            _scope.memo = None
            if last:
                _drop_across_calls()

    return call


def install() -> None:
    """Make the SDK's analyzer convert each message once per ``Analyze`` / ``AnalyzeStack`` call (idempotent)."""
    servicer: Any = sdk._PolicyAnalyzerServicer
    if getattr(servicer, "_slm_converts_once", False):
        return
    setattr(sdk, "json_format", _JsonFormatOncePerRequest())  # noqa: B010 (replaces a module attribute)
    setattr(sdk, "deserialize_properties", _deserialize_once)  # noqa: B010
    setattr(sdk, "unknown_checking_proxy", _proxy_once)  # noqa: B010
    servicer._get_resource_options = _once_per_message(servicer._get_resource_options, "options")
    servicer._get_provider_resource = _once_per_message(servicer._get_provider_resource, "provider")
    servicer._configure_runtime_settings = _once_per_environment(servicer._configure_runtime_settings)
    servicer.Analyze = _per_request(_analyze)
    servicer.AnalyzeStack = _per_request(_analyze_stack, last=True)
    servicer._slm_converts_once = True
