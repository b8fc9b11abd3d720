"""Run the Pulumi program under the SDK's own mock monitor and record every registration.

This is real Pulumi: the program's resources are registered through the SDK's ``MockMonitor``
(Outputs resolve, components parent their children, dependencies are tracked). Our subclass only
keeps what the engine would have seen for each ``RegisterResource`` call: type, name, parent,
inputs on the wire (camelCase, secrets still wrapped), dependencies and options. Nothing leaves the
machine and no provider plugin runs; the mocks below answer with deterministic stand-in outputs
(ids, endpoints, principal ids) so downstream wiring resolves.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import gc
import hashlib
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final

import pulumi
from google.protobuf import struct_pb2
from pulumi.output import Unknown
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import resource as sdk_resource
from pulumi.runtime import rpc
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.proto import resource_pb2, source_pb2
from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

from policies.structs import struct_dict

SECRET_SIG: Final = "4dabf18193072939515e22adb298388d"  # noqa: S105 (Pulumi wire signature)
SECRET_VALUE_SIG: Final = "1b47061264138c4ac30d75fd1eb44270"  # noqa: S105 (Pulumi wire signature)
RESOURCE_REF_SIG: Final = "5cf8f73096256a8f31e491e813e4eb8e"
UNKNOWN: Final = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
REDACTED: Final = "[secret]"
PROJECT: Final = "slm-platform"
"""The project every recording runs as: ``name`` in Pulumi.yaml (URNs carry it)."""

MOCK_SUBSCRIPTION_ID: Final = "00000000-0000-0000-0000-000000000000"
MOCK_TENANT_ID: Final = "11111111-1111-1111-1111-111111111111"


@dataclass(kw_only=True)
class Registration:
    """One resource as the engine would have received it."""

    urn: str
    type: str
    name: str
    custom: bool
    parent: str | None
    inputs: dict[str, Any]
    """Wire form: camelCase keys, numbers as floats, secrets as signature envelopes."""
    dependencies: list[str] = field(default_factory=list)
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)
    protect: bool = False
    ignore_changes: list[str] = field(default_factory=list)
    delete_before_replace: bool = False
    provider: str = ""
    read: bool = False
    """True for ``Resource.get`` reads (existing resources), which ``pulumi up`` does not create."""
    aliases: list[str] = field(default_factory=list)
    """The URNs this resource answers to besides its own (``ResourceOptions.aliases``), so ``pulumi up``
    updates a resource found under one of them instead of replacing it."""


def _det_uuid(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join(parts)))


def _arm_id(typ: str, name: str, inputs: Mapping[str, Any]) -> str:
    _, module, kind = [*typ.split(":"), "", ""][:3]
    rg = inputs.get("resourceGroupName")
    rg = rg if isinstance(rg, str) else "rg"
    if kind == "ResourceGroup":
        return f"/subscriptions/{MOCK_SUBSCRIPTION_ID}/resourceGroups/{name}"
    return (f"/subscriptions/{MOCK_SUBSCRIPTION_ID}/resourceGroups/{rg}/providers/"
            f"Microsoft.{module}/{kind[0].lower()}{kind[1:]}s/{name}")


def _physical_name(typ: str, name: str, inputs: Mapping[str, Any]) -> str:
    kind = typ.rsplit(":", 1)[-1]
    candidates = [f"{kind[0].lower()}{kind[1:]}Name", "resourceName", "accountName", "vaultName",
                  "registryName", "clusterName", "workspaceName", "name"]
    for key in candidates:
        value = inputs.get(key)
        if isinstance(value, str) and value:
            return value
    return name


def _identity_output(identity: Any) -> dict[str, Any]:
    """An ``identity`` output: user-assigned ids are a list on input but a map (id -> ids) on output."""
    out = dict(identity or {})
    assigned = out.get("userAssignedIdentities")
    if isinstance(assigned, list):
        out["userAssignedIdentities"] = {
            str(rid): {"principalId": _det_uuid(str(rid), "principal"), "clientId": _det_uuid(str(rid), "client")}
            for rid in assigned}
    return out


def computed_outputs(typ: str, name: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Deterministic stand-ins for the outputs the provider would compute."""
    physical = _physical_name(typ, name, inputs)
    out: dict[str, Any] = {"name": physical}
    if typ.startswith("azure-native:"):
        out["id"] = _arm_id(typ, physical, inputs)
        out["azureApiVersion"] = "mock"
    if typ == "azure-native:containerservice:ManagedCluster":
        out["identityProfile"] = {"kubeletidentity": {
            "objectId": _det_uuid(name, "kubelet-object"), "clientId": _det_uuid(name, "kubelet-client"),
            "resourceId": f"{out['id']}/kubelet"}}
        out["oidcIssuerProfile"] = {"enabled": True,
                                    "issuerURL": f"https://oidc.mock.azure.example/{_det_uuid(name)}/"}
        out["identity"] = {**_identity_output(inputs.get("identity")),
                           "principalId": _det_uuid(name, "cluster-principal"), "tenantId": MOCK_TENANT_ID}
        out["fqdn"] = f"{physical}.hcp.mock.azmk8s.io"
        profile = dict(inputs.get("ingressProfile") or {})
        if (profile.get("webAppRouting") or {}).get("enabled"):
            # The add-on's own identity (webapprouting-<cluster> in the node resource group), created by AKS.
            out["ingressProfile"] = {**profile, "webAppRouting": {**profile["webAppRouting"], "identity": {
                "objectId": _det_uuid(name, "app-routing-object"), "clientId": _det_uuid(name, "app-routing-client"),
                "resourceId": f"{out['id']}/webapprouting"}}}
    elif typ == "azure-native:containerregistry:Registry":
        out["loginServer"] = f"{physical}.azurecr.io"
    elif typ == "azure-native:cognitiveservices:Account":
        out["properties"] = {**dict(inputs.get("properties") or {}),
                             "endpoint": f"https://{physical}.cognitiveservices.azure.com/"}
        out["identity"] = {**dict(inputs.get("identity") or {}),
                           "principalId": _det_uuid(name, "principal"), "tenantId": MOCK_TENANT_ID}
    elif typ == "azure-native:managedidentity:UserAssignedIdentity":
        out["principalId"] = _det_uuid(name, "principal")
        out["clientId"] = _det_uuid(name, "client")
        out["tenantId"] = MOCK_TENANT_ID
    elif typ == "azure-native:keyvault:Vault":
        out["properties"] = {**dict(inputs.get("properties") or {}),
                             "vaultUri": f"https://{physical}.vault.azure.net/"}
    elif typ == "azure-native:storage:StorageAccount":
        out["primaryEndpoints"] = {"blob": f"https://{physical}.blob.core.windows.net/"}
    elif typ == "azure-native:monitor:AzureMonitorWorkspace":
        out["metrics"] = {"internalId": _det_uuid(name, "amw"),
                          "prometheusQueryEndpoint": f"https://{physical}.mock.prometheus.monitor.azure.com"}
    elif typ == "azure-native:operationalinsights:Workspace":
        out["customerId"] = _det_uuid(name, "customer")
    elif typ == "azure-native:dashboard:Grafana":
        out["identity"] = {**dict(inputs.get("identity") or {}), "principalId": _det_uuid(name, "principal")}
        out["properties"] = {**dict(inputs.get("properties") or {}),
                             "endpoint": f"https://{physical}.grafana.azure.com"}
    elif typ == "azure-native:network:PublicIPAddress":
        digest = hashlib.sha256(physical.encode()).digest()
        out["ipAddress"] = f"198.51.100.{digest[0] % 254 + 1}"  # TEST-NET-2: a public-looking, unroutable address
    elif typ == "azure-native:iothub:IotHubResource":
        out["properties"] = {**dict(inputs.get("properties") or {}),
                             "hostName": f"{physical}.azure-devices.net"}
    elif typ == "random:index/randomString:RandomString":
        out["result"] = random_string(name, inputs)
    elif typ.startswith("docker:") and "Image" in typ:
        image_name = str(inputs.get("imageName") or inputs.get("tags") or physical)
        digest = hashlib.sha256(image_name.encode()).hexdigest()
        out["repoDigest"] = f"{image_name.split(':', maxsplit=1)[0]}@sha256:{digest}"
        out["digest"] = f"sha256:{digest}"
    return out


AKS_SERVER_APP_ID: Final = "6dae42f8-4368-4678-94ff-3960e28e3630"
AZURE_CLI_CLIENT_APP_ID: Final = "80faf920-1908-4b52-b5ef-a8e7bedfc67a"
"""The public Entra client kubelogin's device-code flow signs in with (as ``az aks get-credentials`` writes it)."""


def aks_exec_kubeconfig(cluster: str) -> str:
    """What ``listClusterUserCredential(format=exec)`` answers for an Entra ID cluster: an exec kubeconfig
    whose kubelogin user logs in with ``--login devicecode`` (interactive: it waits for a browser)."""
    return (
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: {cluster}\n  cluster:\n    certificate-authority-data: bW9jaw==\n"
        f"    server: https://{cluster}.hcp.mock.azmk8s.io:443\n"
        f"contexts:\n- name: {cluster}\n  context:\n    cluster: {cluster}\n    user: clusterUser_{cluster}\n"
        f"current-context: {cluster}\npreferences: {{}}\n"
        f"users:\n- name: clusterUser_{cluster}\n  user:\n    exec:\n"
        "      apiVersion: client.authentication.k8s.io/v1beta1\n"
        "      args:\n      - get-token\n      - --environment\n      - AzurePublicCloud\n"
        f"      - --server-id\n      - {AKS_SERVER_APP_ID}\n"
        f"      - --client-id\n      - {AZURE_CLI_CLIENT_APP_ID}\n"
        f"      - --tenant-id\n      - {MOCK_TENANT_ID}\n"
        "      - --login\n      - devicecode\n"
        "      command: kubelogin\n      env: null\n"
        "      installHint: |2\n\n        kubelogin is not installed which is required to connect to AAD enabled cluster.\n"
        "      provideClusterInfo: false\n"
    )


RANDOM_CHARSETS: Final = (("lower", "abcdefghijklmnopqrstuvwxyz"), ("upper", "ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
                          ("numeric", "0123456789"), ("special", "!@#$%&*()-_=+[]{}<>:?"))
"""The random provider's character sets (each on unless its input is false); ``overrideSpecial`` replaces the last."""


def random_string(name: str, inputs: Mapping[str, Any]) -> str:
    """What ``random.RandomString`` yields: ``length`` characters of the enabled sets, here derived from the
    logical name (stable from plan to plan, as the provider's value is stable in the state)."""
    sets = [str(inputs.get("overrideSpecial") or chars) if key == "special" else chars
            for key, chars in RANDOM_CHARSETS if inputs.get(key) is not False]
    alphabet = "".join(sets)
    length = int(inputs.get("length") or 0)
    digest = hashlib.sha256(f"random/{name}".encode()).digest() * (length // 32 + 1)
    return "".join(alphabet[b % len(alphabet)] for b in digest[:length])


def preview_outputs(inputs: Mapping[str, Any], computed: Mapping[str, Any]) -> dict[str, Any]:
    """What a create step answers at preview: its inputs, and every computed output unknown.

    This is azure-native's ``PreviewOutputs`` ("maps [the inputs] to the outputs shape, adding unknowns
    for all properties that are not defined in inputs"), applied to the outputs :func:`computed_outputs`
    stands in for: a key only the provider fills (``name``, ``principalId``, ``endpoint``, ``result``,
    ``digest``) is the engine's unknown, at any depth; a key whose output has another shape than its
    input (``identity.userAssignedIdentities``: a list of ids in, a map id -> computed ids out) is
    unknown as a whole.
    """
    out: dict[str, Any] = dict(inputs)
    for key, value in computed.items():
        given = inputs.get(key)
        if key not in inputs:
            out[key] = UNKNOWN
        elif isinstance(value, Mapping) and isinstance(given, Mapping):
            out[key] = preview_outputs(given, value)
        elif type(value) is not type(given):
            out[key] = UNKNOWN
    return out


class PlatformMocks(pulumi.runtime.Mocks):
    """Answers registrations and invokes with deterministic, realistic stand-ins.

    With ``first_preview`` it answers as the engine does for a resource a first ``pulumi preview``
    would create: its inputs and nothing else, no id. Every output the provider computes on create
    (ARM ids, principal ids, FQDNs, login servers, keys, random results, image digests) is then
    unknown to the program, so whatever is derived from it reaches the next registration as the
    engine's unknown sentinel. Reads (``Resource.get``, ``StackReference``) exist already and answer
    in full, as they do in a real preview.

    ``existing`` names (by URN) resources an earlier targeted ``pulumi up`` created: at the preview
    of the next update each is an unchanged resource in the state, and the engine answers it with
    its recorded outputs, so they stay known.
    """

    def __init__(self, *, first_preview: bool = False, existing: frozenset[str] = frozenset()) -> None:
        super().__init__()
        self.first_preview = first_preview
        self.existing = existing
        self.registering = threading.local()
        """The URN the monitor is registering on this thread (``new_resource`` is not told it)."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        computed = computed_outputs(args.typ, args.name, args.inputs)
        created_earlier = getattr(self.registering, "urn", None) in self.existing
        if self.first_preview and not args.resource_id and not created_earlier:
            return None, preview_outputs(args.inputs, computed)
        resource_id = computed.pop("id", None) or f"{args.name}-id"
        state = {"name": computed.pop("name"), **dict(args.inputs), **computed}
        return resource_id, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        if args.token == "azure-native:authorization:getClientConfig":  # noqa: S105 (an invoke token)
            return {"clientId": _det_uuid("client"), "objectId": _det_uuid("deployer"),
                    "subscriptionId": MOCK_SUBSCRIPTION_ID, "tenantId": MOCK_TENANT_ID}, []
        if args.token == "kubernetes:helm:template":  # noqa: S105 (an invoke token)
            return {"result": []}, []
        if args.token == "azure-native:containerservice:listManagedClusterUserCredentials":  # noqa: S105
            cluster = str(args.args.get("resourceName") or "aks")
            return {"kubeconfigs": [{"name": "clusterUser",
                                     "value": base64.b64encode(aks_exec_kubeconfig(cluster).encode()).decode()}]}, []
        return {}, []


def _only_a_type(alias: Any) -> bool:
    """A spec naming only another type token: the versioned type aliases generated SDK classes attach."""
    spec = alias.spec
    return not alias.urn and not (spec.name or spec.parentUrn or spec.noParent or spec.stack or spec.project)


def alias_urn(alias: Any, request: Any, urn: str) -> str:
    """The URN an alias names, as the engine derives it from an alias spec (a URN alias is itself)."""
    if alias.urn:
        return str(alias.urn)
    spec = alias.spec
    stack = spec.stack or urn.removeprefix("urn:pulumi:").split("::")[0]
    project = spec.project or urn.split("::")[1]
    parent = "" if spec.noParent else (spec.parentUrn or request.parent)
    chain = (parent.split("::")[2] + "$") if parent else ""
    return f"urn:pulumi:{stack}::{project}::{chain}{spec.type or request.type}::{spec.name or request.name}"


_ABSENT: Final = object()
_SIG_BYTES: Final = SECRET_SIG.encode()
"""The key of every special value on the wire (secret, asset, archive, resource reference, output value)."""


class _InexactError(Exception):
    """A value the direct answer does not model: the SDK's own round trip answers it."""


def _mock_inputs(inputs: dict[str, Any], dry_run: bool) -> dict[str, Any]:
    """What ``rpc.deserialize_properties`` returns for a request whose Struct re-serializes to itself.

    ``inputs`` is the request's Struct as :func:`policies.structs.struct_dict` reads it (what the
    recording keeps); a container is shared where nothing in it differs (the mocks only read their
    inputs). Re-serializing is exact for a Struct with no special values (no secret, asset, archive,
    resource reference or output value), no null in a map (the SDK drops those) and, outside a dry
    run, no unknown (the SDK reads it as None); anything else raises :class:`_InexactError`.
    """
    def value(item: Any) -> Any:
        if isinstance(item, str):
            if item != UNKNOWN:
                return item
            if not dry_run:
                raise _InexactError
            return Unknown()
        if isinstance(item, dict):
            return fields(item)
        if isinstance(item, list):
            read = [value(element) for element in item]
            return item if all(new is old for new, old in zip(read, item, strict=True)) else read
        return item  # a float, a bool, or None in a list (kept, as the SDK keeps it)

    def fields(entries: dict[str, Any]) -> dict[str, Any]:
        read = {}
        for key, item in entries.items():
            if item is None:
                raise _InexactError
            read[key] = value(item)
        return entries if all(read[key] is entries[key] for key in entries) else read

    return fields(inputs)


def _wire(value: Any) -> Any:
    """A mock's output as ``rpc.serialize_property`` sends it; :class:`_InexactError` for anything but plain data."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, Unknown):
        return UNKNOWN
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return {key: _wire(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_wire(item) for item in value]
    raise _InexactError


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """The SDK's ``MockMonitor`` that also keeps each request as the engine would have seen it.

    It answers a registration as the SDK's ``MockMonitor`` does (the mocks' state, serialized) but,
    for the common case, without its round trip: the SDK converts the request's Struct into Python
    for the mocks and the whole state back into a Struct, in a nested event loop on the worker
    thread. Where the inputs re-serialize to themselves (:func:`_mock_inputs`), the answer starts
    from a copy of the request's Struct and serializes only what the mocks added or changed: at
    2,500 resources that conversion was about a tenth of a plan. Everything else takes the SDK's
    path; ``tests/plan/test_monitor_answers.py`` compares the two answers on every registration of
    every shipped stack.
    """

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.registrations: list[Registration] = []
        self.wire: dict[str, bytes] = {}
        """Each registered resource's inputs as the request carried them (``Recording.wire``)."""
        self._urns: set[str] = set()
        self._lock = threading.Lock()

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        if request.type == "pulumi:pulumi:Stack":
            return super().RegisterResource(request)
        wire = request.object.SerializeToString()
        inputs = struct_dict(request.object)
        urn = self.make_urn(request.parent, request.type, request.name)
        if isinstance(self.mocks, PlatformMocks):
            self.mocks.registering.urn = urn
        response = self._answer(request, urn, wire, inputs)
        if response is None:
            response = super().RegisterResource(request)
        opts_deps = {k: list(v.urns) for k, v in request.propertyDependencies.items()}
        reg = Registration(
            urn=response.urn, type=request.type, name=request.name, custom=bool(request.custom),
            parent=request.parent or None,
            inputs=inputs,
            dependencies=sorted(set(request.dependencies)),
            property_dependencies={k: sorted(set(v)) for k, v in sorted(opts_deps.items())},
            protect=bool(request.protect), ignore_changes=sorted(request.ignoreChanges),
            delete_before_replace=bool(request.deleteBeforeReplace), provider=request.provider,
            aliases=[alias_urn(a, request, response.urn) for a in request.aliases if not _only_a_type(a)],
        )
        with self._lock:
            if reg.urn in self._urns:
                msg = f"duplicate resource URN {reg.urn}: two resources share a type and name"
                raise ValueError(msg)
            self._urns.add(reg.urn)
            self.registrations.append(reg)
            self.wire[reg.urn] = wire
        return response

    def _answer(self, request: Any, urn: str, wire: bytes,
                recorded: dict[str, Any]) -> resource_pb2.RegisterResourceResponse | None:
        """The SDK mock's answer, built from the request's Struct (``wire``, ``recorded``: its bytes and
        ``struct_dict``); None where only the SDK's path is exact."""
        if request.transforms or _SIG_BYTES in wire:  # any special value carries this key
            return None
        try:
            inputs = _mock_inputs(recorded, pulumi_settings.is_dry_run())
        except _InexactError:
            return None
        resource_id, state = self.mocks.new_resource(pulumi_mocks.MockResourceArgs(
            typ=request.type, name=request.name, inputs=inputs, provider=request.provider,
            resource_id=request.importId, custom=request.custom or False, transforms=[]))
        answer = struct_pb2.Struct()
        given = request.object.fields
        try:
            for key, value in state.items():  # in the state's order, as the SDK inserts them
                if value is None:  # the SDK drops it
                    continue
                if inputs.get(key, _ABSENT) is value:
                    answer.fields[key].CopyFrom(given[key])
                else:
                    answer[key] = _wire(value)
        except _InexactError:
            _ensure_event_loop()
            answer = _sync_await(rpc.serialize_properties(state, {}))
        # The SDK's mock keeps a None id (a create at a first preview) as it is; on the wire it is "".
        self.resources[urn] = pulumi_mocks.MockMonitor.ResourceRegistration(urn, resource_id, state)  # pyright: ignore[reportArgumentType]
        return resource_pb2.RegisterResourceResponse(urn=urn, id=resource_id or "", object=answer)

    def ReadResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        response = super().ReadResource(request)
        if not response.id:  # the engine answers a read with the resource's id; the SDK's mock leaves it
            response.id = request.id  # empty, which a dry run takes for "unknown"
        with self._lock:
            self.registrations.append(Registration(
                urn=response.urn, type=request.type, name=request.name, custom=True,
                parent=request.parent or None, inputs=struct_dict(request.properties),
                provider=request.provider, read=True))
        return response


@dataclass
class Recording:
    """Everything a program registered, plus its stack outputs."""

    project: str
    stack: str
    registrations: list[Registration]
    outputs: dict[str, Any]
    wire: dict[str, bytes] = field(default_factory=dict, repr=False, compare=False)
    """By URN, the serialized ``Struct`` of inputs the program's ``RegisterResource`` carried, for the gate to
    send as is (the same message ``inputs`` converts back to; ``slmctl.gate.Requests``). Only in the
    process that recorded: never written to a file (it holds secret values)."""

    def by_type(self, type_token: str) -> list[Registration]:
        """Registrations of one type token, in URN order."""
        return sorted((r for r in self.registrations if r.type == type_token), key=lambda r: r.urn)


class _LoopClosingExecutor(ThreadPoolExecutor):
    """The monitor's calls run in worker threads, where the SDK creates an event loop (``_ensure_event_loop``)
    that nobody closes; garbage-collected later, each printed "Exception ignored ... Invalid file
    descriptor" in the middle of ``make bench``. This executor closes every loop its threads were left
    with when it shuts down (``record`` shuts it down before it returns). A worker keeps its loop from
    one call to the next: closing it after each call made the SDK build a new loop (an epoll instance
    and a socket pair) for every registration, 0.4 s of a 2,542-resource plan's worker time.
    """

    def __init__(self) -> None:
        super().__init__()
        self._thread_loops: dict[int, asyncio.AbstractEventLoop] = {}
        self._loops_lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Run ``fn`` in a worker thread and remember the event loop that thread has afterwards."""
        return super().submit(self._call, fn, *args, **kwargs)

    def _call(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        finally:
            thread = threading.get_ident()
            if thread not in self._thread_loops:
                try:
                    thread_loop: asyncio.AbstractEventLoop | None = asyncio.get_event_loop()
                except RuntimeError:  # no loop in this worker thread yet: look again after its next call
                    thread_loop = None
                if thread_loop is not None:
                    with self._loops_lock:
                        self._thread_loops[thread] = thread_loop

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop the workers, then close the loops they were left with (no worker can be running one)."""
        super().shutdown(wait=wait, cancel_futures=cancel_futures)
        if not wait:
            return
        with self._loops_lock:
            loops, self._thread_loops = list(self._thread_loops.values()), {}
        for thread_loop in loops:
            if not thread_loop.is_closed() and not thread_loop.is_running():
                thread_loop.close()


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while a program registers; the collector's state is restored after.

    Registration allocates hundreds of thousands of long-lived objects (the provider SDK modules the
    program imports lazily, Outputs, protobuf requests), so the collector ran ~9 full collections per
    prod plan, each traversing the whole heap: 60 % of a plan's CPU, with no garbage of note to free
    (peak RSS is within 3 % with the collector paused; measured in benchmarks/README.md). The objects
    that were alive before the run are frozen (never traversed) for its duration and unfrozen after,
    so a process that records many times (the tests) does not keep their garbage forever.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    gc.freeze()
    try:
        yield
    finally:
        if _KEEP_FROZEN:
            gc.freeze()  # what the run created too: the next collections traverse only what comes after
        else:
            gc.unfreeze()
        if was_enabled:
            gc.enable()


_KEEP_FROZEN = False


def keep_recordings_frozen() -> None:
    """For a short-lived process (the CLI): leave everything alive after a recording frozen.

    Unfreezing handed the whole heap back to the collector, whose next full collection traversed it
    once more to free almost nothing (1.2 s after recording 2,538 resources). A process that records
    many times (the tests) keeps the default, so their garbage does not stay frozen forever.
    """
    global _KEEP_FROZEN  # noqa: PLW0603 (a process-wide choice, made once by the entry point)
    _KEEP_FROZEN = True


def _is_type_alias(alias: object) -> bool:
    """An alias that only names another type token: what generated SDK classes add for each API version."""
    return (isinstance(alias, pulumi.Alias) and isinstance(alias.type_, str)
            and all(getattr(alias, key) is ... for key in ("name", "parent", "stack", "project")))


def drop_type_aliases(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
    """A stack transformation that removes the versioned type aliases generated SDK classes attach.

    Every typed azure-native resource carries one ``Alias(type_=...)`` per earlier API version (~25 on
    average, 1,591 for prod); the SDK turns each into Outputs and an alias spec on every registration.
    Aliases let the engine match state written under an older type token; they are not part of the URN,
    inputs, parents or dependencies, so a plan without them is byte-identical
    (``tests/plan/test_plan_aliases.py``). Only the offline recorder uses this: ``__main__.py`` never
    does, because a real ``pulumi up`` needs them to find resources an older SDK created.
    """
    aliases = args.opts.aliases
    if not aliases:
        return None
    kept = [a for a in aliases if not _is_type_alias(a)]
    if len(kept) == len(aliases):
        return None
    opts = copy.copy(args.opts)
    opts.aliases = kept or None
    return pulumi.ResourceTransformationResult(args.props, opts)


_SDK_RESOURCE: Final[Any] = sdk_resource
"""The SDK module whose ``_get_stack_trace`` builds each registration's stack trace and source position."""


def _empty_stack_trace() -> source_pb2.StackTrace:
    return source_pb2.StackTrace()


@contextlib.contextmanager
def stack_traces_skipped() -> Iterator[None]:
    """The SDK sends no stack trace or source position with a registration while a program is recorded.

    For every resource the SDK walks the whole Python stack (``traceback.extract_stack``, which also
    stats every file on it) and turns each frame's file into a URI: ~40 frames per resource through the
    components. Skipping it took ``plan --no-gate`` of 2,542 resources from 8.8 to 7.3 s and prod's from
    2.11 to 1.93 s (whole process, fastest of 5 and 7 interleaved runs). The engine keeps them to show where a resource
    was declared; the recorder never reads them (a ``Registration`` has no such field), so a plan and
    everything the gate sends are byte-identical without them (``tests/plan/test_plan_stack_traces.py``).
    Only the offline recorder skips them: ``__main__.py`` under the real engine never enters this.
    The SDK's function is restored afterwards.
    """
    original = getattr(_SDK_RESOURCE, "_get_stack_trace", None)
    if original is None:  # an SDK without it: nothing to skip (the test above notices the change)
        yield
        return
    _SDK_RESOURCE._get_stack_trace = _empty_stack_trace
    try:
        yield
    finally:
        _SDK_RESOURCE._get_stack_trace = original


def record(
    program: Callable[[], object],
    *,
    project: str = PROJECT,
    stack: str = "dev",
    config: Mapping[str, str] | None = None,
    secret_keys: list[str] | None = None,
    type_aliases: bool = False,
    first_preview: bool = False,
    existing: frozenset[str] = frozenset(),
) -> Recording:
    """Run ``program`` under a fresh mock monitor and return what it registered.

    ``first_preview`` runs it as the first ``pulumi preview`` of a stack with no state: the SDK is in
    dry-run mode and every resource is a create whose outputs are unknown (:class:`PlatformMocks`),
    except those whose URNs are in ``existing``: an earlier targeted ``pulumi up`` created them.

    Each call gets its own event loop and settings (the registry otherwise accumulates across
    runs: PULUMI_FACTS section 1.6), so ``record`` can be called repeatedly in one process.
    Versioned type aliases are dropped (:func:`drop_type_aliases`) unless ``type_aliases``; the
    SDK's per-resource stack traces are never built (:func:`stack_traces_skipped`).
    """
    loop = asyncio.new_event_loop()
    loop.set_default_executor(_LoopClosingExecutor())
    asyncio.set_event_loop(loop)
    pulumi_settings.reset_options()
    pulumi.runtime.set_all_config(dict(config or {}), secret_keys or [])
    mocks = PlatformMocks(first_preview=first_preview, existing=existing)
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=first_preview, monitor=monitor)
    outputs: dict[str, Any] = {}

    @pulumi.runtime.test
    def run() -> Any:
        if not type_aliases:
            pulumi.runtime.register_stack_transformation(drop_type_aliases)
        program()
        root = pulumi.runtime.get_root_resource()
        exported: dict[str, Any] = dict(getattr(root, "outputs", {}) or {})

        async def collect() -> None:
            for key in sorted(exported):
                out = pulumi.Output.from_input(exported[key])
                value = await out.future()
                outputs[key] = REDACTED if await out.is_secret() else value

        return asyncio.ensure_future(collect())

    try:
        with collector_paused(), stack_traces_skipped():
            run()
    finally:
        pulumi_settings.reset_options()
        pulumi.runtime.set_all_config({}, [])
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()
        asyncio.set_event_loop(None)
    registrations = sorted(monitor.registrations, key=lambda r: r.urn)
    return Recording(project=project, stack=stack, registrations=registrations, outputs=outputs, wire=monitor.wire)


def redact(value: Any) -> Any:
    """Wire value -> JSON for humans: secrets become ``[secret]``, integral floats become ints."""
    if isinstance(value, dict):
        if value.get(SECRET_SIG) == SECRET_VALUE_SIG:
            return REDACTED
        if value.get(SECRET_SIG) == RESOURCE_REF_SIG:
            return {"urn": value.get("urn")}
        return {k: redact(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if value == UNKNOWN:
        return "[unknown]"
    return value


def secret_paths(value: Any, prefix: str = "") -> list[str]:
    """Property paths (``properties.value``) whose values are secret on the wire."""
    found: list[str] = []
    if isinstance(value, dict):
        if value.get(SECRET_SIG) == SECRET_VALUE_SIG:
            return [prefix or "."]
        for k, v in sorted(value.items()):
            found.extend(secret_paths(v, f"{prefix}.{k}" if prefix else k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found.extend(secret_paths(v, f"{prefix}[{i}]"))
    return found
