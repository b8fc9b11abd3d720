"""The policy gate: run the CrossGuard pack over a recording exactly as the Pulumi engine would.

``run_gate`` starts ``policies/`` as the engine does (``python -u -m pulumi.policy <engine> .`` in the
pack directory, with PULUMI_PROJECT / PULUMI_STACK / PULUMI_DRY_RUN / PULUMI_CONFIG), reads the port
from its stdout and speaks the analyzer protocol with the stubs shipped in the ``pulumi`` wheel:
Handshake (UNIMPLEMENTED tolerated), ConfigureStack, GetAnalyzerInfo, Configure (the environment's
config reconciled with the pack's schema defaults and initial config, as the engine's
``ReconcilePolicyPackConfig`` does), Analyze per custom resource, AnalyzeStack with every resource.

What it cannot reproduce (PULUMI_FACTS 2.3): provider defaults and normalization, and provider
*outputs* for AnalyzeStack (the recorded inputs are sent instead). ``pulumi preview --policy-pack``
in CI stays the authoritative gate; this is the offline pre-gate.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import grpc
import yaml
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from policies.environments import config_path_for_stack, environment_of_stack
from slmctl.loader import (
    ENV_STRING_MAX,
    LoadedStack,
    StackFileError,
    environment_string_bytes,
    go_json,
    load_stack_file,
)
from slmctl.recorder import PROJECT, Recording, Registration

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
POLICY_DIR: Final = REPO_ROOT / "policies"
ENGINE_ADDRESS: Final = "127.0.0.1:0"
"""No engine is listening offline; the pack only needs the argument (it logs to stderr without one)."""
START_TIMEOUT_SECONDS: Final = 30.0
RPC_TIMEOUT_SECONDS: Final = 60.0
IN_FLIGHT: Final = 8
"""Analyze calls outstanding at once (the pack serves 4 at a time; a few more keep it busy)."""
MAX_MESSAGE_BYTES: Final = 400 * 1024 * 1024
"""The largest message either side accepts: the pack's own receive limit (``pulumi_policy`` serves with
``grpc.max_receive_message_length`` 400 MiB, as the engine does; gRPC's default is 4 MiB). AnalyzeStack
carries every resource in one message, about 2.9 KB each: 4 MiB would end near 1,400 resources, 10,000
are about 28 MiB. A stack above it is refused with its size before the pack starts, not by gRPC."""
STACK_SECONDS_PER_RESOURCE: Final = 0.05
"""AnalyzeStack carries every resource in one call: its deadline grows with the stack."""
LEVELS: Final = {analyzer_pb2.ADVISORY: "advisory", analyzer_pb2.MANDATORY: "mandatory",
                 analyzer_pb2.DISABLED: "disabled", analyzer_pb2.REMEDIATE: "remediate"}
LEVEL_CODES: Final = {v: k for k, v in LEVELS.items()}
EXEMPT_RE: Final = re.compile(r"^exempt (?P<name>\S+) \(pattern (?P<pattern>'.*?'|\".*?\"), (?P<n>\d+) suppressed\): "
                              r"(?P<reason>.+)$")
DEFERRED_RE: Final = re.compile(r"^deferred (?P<name>\S+) \((?P<n>\d+) unknown\): ")
"""The pack's note for unknowns on a resource a targeted up does not touch (``policies.pack.deferred_note``)."""
Format = Literal["text", "json", "sarif", "junit", "markdown"]


class GateError(Exception):
    """The pack could not be started, configured or queried (an internal error: exit 3)."""


class GateInputError(GateError):
    """What was given to the gate cannot be gated as it is (bad input: exit 2)."""


class GateConfigError(GateInputError):
    """The policy config is invalid (bad input: exit 2)."""


@dataclass(frozen=True)
class PolicyMeta:
    """A policy as the pack describes it (GetAnalyzerInfo) with the level the gate configured."""

    name: str
    description: str
    level: str
    tags: tuple[str, ...] = ()
    stack: bool = False


@dataclass(frozen=True)
class Violation:
    """One diagnostic from the pack."""

    policy: str
    level: str
    message: str
    urn: str = ""
    resource: str = ""
    type: str = ""
    description: str = ""

    @property
    def detail(self) -> str:
        """The message without the policy description the pack prepends."""
        head = self.description + "\n"
        return self.message[len(head):] if self.description and self.message.startswith(head) else self.message


@dataclass(frozen=True)
class Exemption:
    """A violation suppressed by a written exemption."""

    policy: str
    resource: str
    pattern: str
    reason: str
    suppressed: int


@dataclass(frozen=True)
class Deferred:
    """Unknown values a targeted step's preview left to the untargeted up (``SLM_POLICY_TARGETS``)."""

    policy: str
    resource: str
    unknown: int


@dataclass
class GateResult:
    """Everything the gate found, with enough context to format any report."""

    environment: str
    stack: str
    project: str
    pack: str
    pack_version: str
    policies: list[PolicyMeta]
    violations: list[Violation]
    exemptions: list[Exemption]
    resources_analyzed: int
    stack_file: str
    seconds: float
    lines: dict[str, int] = field(default_factory=dict)
    """Resource name -> line of its declaration in the stack file (best effort)."""
    deviations: list[str] = field(default_factory=list)
    """Every difference between the policy config used and the levels the pack generates for the environment."""
    targets: int = 0
    """How many URNs scoped this run (a targeted step's ``--target`` list); 0 for an untargeted up."""
    deferred: list[Deferred] = field(default_factory=list)

    @property
    def mandatory(self) -> list[Violation]:
        """Violations that block."""
        return [v for v in self.violations if v.level == "mandatory"]

    @property
    def advisory(self) -> list[Violation]:
        """Violations that only warn."""
        return [v for v in self.violations if v.level != "mandatory"]

    @property
    def exit_code(self) -> int:
        """1 when any mandatory violation was reported, else 0."""
        return 1 if self.mandatory else 0


@dataclass
class _Found:
    """What the pack's responses said, collected across Analyze and AnalyzeStack calls."""

    violations: list[Violation] = field(default_factory=list)
    exemptions: list[Exemption] = field(default_factory=list)
    deferred: list[Deferred] = field(default_factory=list)


# --------------------------------------------------------------------------- config (engine semantics)


def load_policy_config(path: Path) -> dict[str, Any]:
    """Read a ``--policy-pack-config`` file: ``{policy: level | {enforcementLevel, ...props}}``."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        msg = f"{path}: cannot read policy config ({exc}); it must be a JSON object"
        raise GateConfigError(msg) from exc
    if not isinstance(raw, dict):
        msg = f"{path}: the policy config must be a JSON object of policy name -> level or object"
        raise GateConfigError(msg)
    return raw


def _split(entry: Any) -> tuple[str | None, dict[str, Any]]:
    if isinstance(entry, str):
        return entry, {}
    if isinstance(entry, Mapping):
        props = {k: v for k, v in entry.items() if k != "enforcementLevel"}
        return entry.get("enforcementLevel"), props
    return None, {}


def _check_type(value: Any, schema: Mapping[str, Any], path: str) -> list[str]:
    """The subset of JSON Schema the pack's config schemas use."""
    kinds = {"string": str, "boolean": bool, "object": dict, "array": list}
    kind = schema.get("type")
    errors: list[str] = []
    if kind in ("number", "integer"):
        ok = isinstance(value, int | float) and not isinstance(value, bool) and (
            kind == "number" or float(value).is_integer())
        if not ok:
            return [f"{path}: expected {kind}, found {json.dumps(value)}"]
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{path}: {value} is below the minimum {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{path}: {value} is above the maximum {schema['maximum']}")
        return errors
    if kind in kinds and not isinstance(value, kinds[kind]):
        return [f"{path}: expected {kind}, found {json.dumps(value)}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {json.dumps(value)} is not one of {json.dumps(schema['enum'])}")
    if isinstance(value, str) and len(value) < schema.get("minLength", 0):
        errors.append(f"{path}: must be at least {schema['minLength']} characters (found {len(value)})")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            errors.extend(_check_type(item, schema["items"], f"{path}[{i}]"))
    if isinstance(value, dict) and "properties" in schema:
        errors.extend(f"{path}.{req}: required" for req in schema.get("required", []) if req not in value)
        for k, v in value.items():
            if k in schema["properties"]:
                errors.extend(_check_type(v, schema["properties"][k], f"{path}.{k}"))
            elif schema.get("additionalProperties") is False:
                errors.append(f"{path}.{k}: unknown key")
    return errors


def reconcile_config(info: analyzer_pb2.AnalyzerInfo, config: Mapping[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Defaults from each schema, then the pack's initial config, then ``config`` ("all" first); validated."""
    result: dict[str, tuple[str, dict[str, Any]]] = {}
    schemas: dict[str, dict[str, Any]] = {}
    for p in info.policies:
        props_schema = json_format.MessageToDict(p.configSchema).get("properties", {})
        schemas[p.name] = props_schema
        defaults = {k: v["default"] for k, v in props_schema.items() if isinstance(v, dict) and "default" in v}
        result[p.name] = (LEVELS.get(p.enforcementLevel, "advisory"), defaults)
    initial = {k: (LEVELS.get(v.enforcementLevel) if v.enforcementLevel in LEVELS else None,
                   json_format.MessageToDict(v.properties)) for k, v in info.initialConfig.items()}
    for layer in (initial, {k: _split(v) for k, v in config.items()}):
        all_level = layer.get("all", (None, {}))[0]
        if all_level:
            result = {k: (all_level, props) for k, (_, props) in result.items()}
        for name, (level, props) in layer.items():
            if name == "all" or name not in result:
                continue
            old_level, old_props = result[name]
            result[name] = (level or old_level, {**old_props, **props})
    errors = [f"{name}: unknown policy" for name in config if name != "all" and name not in result]
    for name, (level, props) in result.items():
        if level not in LEVEL_CODES:
            errors.append(f"{name}.enforcementLevel: {level!r} is not advisory, mandatory, remediate or disabled")
        for key, value in props.items():
            if key not in schemas[name]:
                errors.append(f"{name}.{key}: not in the policy's config schema")
            else:
                errors.extend(_check_type(value, schemas[name][key], f"{name}.{key}"))
    if errors:
        msg = "invalid policy pack config:\n  " + "\n  ".join(errors)
        raise GateConfigError(msg)
    return result


FAIL_CLOSED_ENVIRONMENTS: Final = frozenset({"staging", "prod"})
LITERAL_NAME_RE: Final = re.compile(r"^[A-Za-z0-9_-]+$")


def config_integrity(info: analyzer_pb2.AnalyzerInfo, resolved: Mapping[str, tuple[str, dict[str, Any]]],
                     environment: str) -> list[str]:
    """Every deviation of ``resolved`` from the generated ``environment`` config; raises on a forbidden one.

    In staging and prod a mandatory policy may not be lowered (advisory or disabled, also through
    ``all``), and an exemption must name one resource literally (no regex): a reviewer then sees the
    exact resource and reason instead of a policy switched off (issue 12.9).
    """
    from policies.pack import environment_config

    generated = reconcile_config(info, environment_config(environment))
    deviations: list[str] = []
    refusals: list[str] = []
    for name, (level, props) in resolved.items():
        gen_level, gen_props = generated.get(name, (level, {}))
        if level != gen_level:
            deviations.append(f"{name}: enforcementLevel {level} (generated: {gen_level})")
            if environment in FAIL_CLOSED_ENVIRONMENTS and gen_level == "mandatory" and level in ("advisory",
                                                                                                 "disabled"):
                refusals.append(f"{name}: enforcementLevel {level!r} lowers a mandatory {environment} policy; keep "
                                "it mandatory and exempt the exact resource with a reason (exempt: [{pattern: "
                                "<resource name>, type: <type token>, reason: ...}])")
        deviations.extend(f"{name}.{key}: {json.dumps(props.get(key))} (generated: {json.dumps(gen_props.get(key))})"
                          for key in sorted(set(props) | set(gen_props)) if props.get(key) != gen_props.get(key))
        if environment in FAIL_CLOSED_ENVIRONMENTS:
            for i, entry in enumerate(props.get("exempt") or []):
                pattern = str(dict(entry).get("pattern") or "")
                if not LITERAL_NAME_RE.match(pattern):
                    refusals.append(f"{name}.exempt[{i}].pattern: {pattern!r} is a pattern; in {environment} an "
                                    "exemption names one resource exactly (its logical name, no regex)")
    if refusals:
        msg = "policy config refused:\n  " + "\n  ".join(refusals)
        raise GateConfigError(msg)
    return deviations


# --------------------------------------------------------------------------- the pack process


def _check_environment_size(env: Mapping[str, str]) -> None:
    """Refuse, as input, a variable the pack cannot be started with (exec fails with E2BIG).

    ``load_stack_file`` already refuses a stack config too large for ``PULUMI_CONFIG`` (the engine could
    not start the program either); the target list of a ``--step`` is the gate's own.
    """
    if not sys.platform.startswith("linux"):
        return
    for name, what, fix in (("PULUMI_CONFIG", "the stack config", "shorten its settings"),
                            ("SLM_POLICY_TARGETS", "the step's target list", "target fewer resources")):
        if name not in env:
            continue
        size = environment_string_bytes(name, env[name])
        if size > ENV_STRING_MAX:
            msg = (f"{what} is {size:,} bytes as {name}, above the {ENV_STRING_MAX:,} bytes Linux passes in one "
                   f"environment variable (the Pulumi engine passes it the same way); split the stack, or {fix}")
            raise GateInputError(msg)


def _pack_key(project: str, stack: str, config: Mapping[str, str], targets: Sequence[str],
              policy_dir: Path) -> tuple[str, ...]:
    return (project, stack, json.dumps(dict(config), sort_keys=True), "\n".join(targets), str(policy_dir))


class PackProcess:
    """The policy pack running as the engine runs it; one process and one channel per gate run.

    Starting it only spawns the process: the port is read, and the channel opened, on first use of
    :attr:`stub`, so a caller can start the pack before planning and let it import on the other core.
    """

    def __init__(self, *, project: str, stack: str, config: Mapping[str, str], policy_dir: Path | None = None,
                 targets: Sequence[str] = ()) -> None:
        env = {**os.environ, "PULUMI_PROJECT": project, "PULUMI_STACK": stack, "PULUMI_DRY_RUN": "true",
               "PULUMI_CONFIG": go_json(dict(config))}
        env.pop("PULUMI_ORGANIZATION", None)
        env.pop("SLM_POLICY_TARGETS", None)  # only what this run says: a caller's variable must not scope it
        if targets:  # as deploy.yml sets it beside `--target` (policies.pack.TARGETS_ENV)
            env["SLM_POLICY_TARGETS"] = "".join(f"{urn}\n" for urn in targets)
        _check_environment_size(env)
        self.policy_dir = policy_dir or POLICY_DIR
        self.proc = subprocess.Popen(  # the engine's exact argv (PULUMI_FACTS 2.1)
            [sys.executable, "-u", "-m", "pulumi.policy", ENGINE_ADDRESS, "."], cwd=self.policy_dir, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.key = _pack_key(project, stack, config, targets, self.policy_dir)
        """What this process was started with: a run that needs anything else starts its own."""
        self._stderr: list[bytes] = []
        threading.Thread(target=self._drain, daemon=True).start()
        self.channel: grpc.Channel | None = None
        self._stub: analyzer_pb2_grpc.AnalyzerStub | None = None
        self._closed = False

    @property
    def stub(self) -> analyzer_pb2_grpc.AnalyzerStub:
        """The analyzer client; the first use waits for the pack's port."""
        if self._stub is None:
            port = self._read_port()
            self.channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES)])
            self._stub = analyzer_pb2_grpc.AnalyzerStub(self.channel)
        return self._stub

    def _drain(self) -> None:
        assert self.proc.stderr is not None  # noqa: S101 (opened with PIPE)
        for line in self.proc.stderr:
            self._stderr.append(line)

    def _read_port(self) -> int:
        assert self.proc.stdout is not None  # noqa: S101 (opened with PIPE)
        result: list[bytes] = []
        reader = threading.Thread(target=lambda: result.append(self.proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(START_TIMEOUT_SECONDS)
        line = result[0].strip() if result else b""
        if not line.isdigit():
            self.close()
            stderr = b"".join(self._stderr).decode(errors="replace").strip()[-2000:]
            msg = f"the policy pack in {self.policy_dir} did not start (no port on stdout): {stderr or 'no output'}"
            raise GateError(msg)
        return int(line)

    def close(self) -> None:
        """Stop the pack (it never exits on its own) and close the channel; again, nothing."""
        if self._closed:
            return
        self._closed = True
        if self.channel is not None:
            self.channel.close()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> PackProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------- requests


def _struct(values: Mapping[str, Any]) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(dict(values))  # secrets stay wrapped in their signature envelopes (engine KeepSecrets)
    return s


def _options(reg: Registration) -> analyzer_pb2.AnalyzerResourceOptions:
    return analyzer_pb2.AnalyzerResourceOptions(
        protect=reg.protect, ignoreChanges=list(reg.ignore_changes), parent=reg.parent or "",
        deleteBeforeReplace=reg.delete_before_replace, deleteBeforeReplaceDefined=reg.delete_before_replace)


class Requests:
    """The engine's analyzer messages for one recording's registrations.

    Each registration's inputs become a ``Struct`` once (``Struct.update`` is pure Python): the engine
    sends them in its ``Analyze`` call, in ``AnalyzeStack``, and a provider's with every resource it
    manages (hundreds share the Kubernetes provider). ``wire``: the serialized Structs the recording
    process kept (``Recording.wire``), parsed instead of rebuilt from ``inputs``: the same message.
    """

    def __init__(self, registrations: Sequence[Registration], wire: Mapping[str, bytes] | None = None) -> None:
        self.by_urn: dict[str, Registration] = {r.urn: r for r in registrations}
        self._wire = wire or {}
        self._structs: dict[str, struct_pb2.Struct] = {}
        self._providers: dict[str, analyzer_pb2.AnalyzerProviderResource | None] = {}

    def _properties(self, reg: Registration) -> struct_pb2.Struct:
        found = self._structs.get(reg.urn)
        if found is None:
            recorded = self._wire.get(reg.urn)
            found = self._structs[reg.urn] = (_struct(reg.inputs) if recorded is None
                                              else struct_pb2.Struct.FromString(recorded))
        return found

    def _provider(self, reg: Registration) -> analyzer_pb2.AnalyzerProviderResource | None:
        if not reg.provider:
            return None
        if reg.provider not in self._providers:  # a provider reference is "<urn>::<id>"
            prov = self.by_urn.get("::".join(reg.provider.split("::")[0:-1]))
            self._providers[reg.provider] = None if prov is None else analyzer_pb2.AnalyzerProviderResource(
                type=prov.type, urn=prov.urn, name=prov.name, properties=self._properties(prov))
        return self._providers[reg.provider]

    def analyze(self, reg: Registration) -> analyzer_pb2.AnalyzeRequest:
        """The ``AnalyzeRequest`` of one resource."""
        req = analyzer_pb2.AnalyzeRequest(type=reg.type, urn=reg.urn, name=reg.name,
                                          properties=self._properties(reg), options=_options(reg))
        prov = self._provider(reg)
        if prov is not None:
            req.provider.CopyFrom(prov)
        return req

    def stack_resource(self, reg: Registration) -> analyzer_pb2.AnalyzerResource:
        """One resource of the ``AnalyzeStackRequest``."""
        res = analyzer_pb2.AnalyzerResource(
            type=reg.type, urn=reg.urn, name=reg.name, properties=self._properties(reg), options=_options(reg),
            parent=reg.parent or "", dependencies=list(reg.dependencies))
        for key, urns in reg.property_dependencies.items():
            res.propertyDependencies[key].urns.extend(urns)
        prov = self._provider(reg)
        if prov is not None:
            res.provider.CopyFrom(prov)
        return res


# --------------------------------------------------------------------------- the run


def start_pack(loaded: LoadedStack, *, project: str = PROJECT, policy_dir: Path | None = None) -> PackProcess | None:
    """Start the pack for an untargeted run of ``loaded`` now, to pass to :func:`run_gate` later.

    It imports pulumi_policy and the rules (~0.5 s) on the other core while the caller plans. None
    when it cannot start as asked (the config too large: :func:`run_gate` then says why).
    """
    try:
        return PackProcess(project=project, stack=loaded.stack, config=engine_config(loaded), policy_dir=policy_dir)
    except GateInputError:
        return None


def default_config_path(environment: str) -> Path:
    """``policies/config/<environment>.json``."""
    return POLICY_DIR / "config" / f"{environment}.json"


def engine_config(loaded: LoadedStack) -> dict[str, str]:
    """The config the engine hands the pack, secret keys left out (the pack never needs them, and offline they
    are placeholders anyway)."""
    return {k: v for k, v in loaded.config.items() if k not in loaded.secret_keys}


def _stack_config(stack_file: Path | None) -> dict[str, str]:
    """The stack config as the engine passes it (``namespace:key`` -> string), from the stack file if given.

    Read through the same loader as ``plan`` so both see identical config (:func:`engine_config`).
    """
    if stack_file is None or not stack_file.is_file():
        return {}
    try:
        loaded = load_stack_file(stack_file)
    except StackFileError:  # a fragment (tests, SARIF locations only): pass its plain values through
        doc = yaml.safe_load(stack_file.read_text(encoding="utf-8")) or {}
        return {str(k): v if isinstance(v, str) else json.dumps(v, default=str)
                for k, v in (doc.get("config") or {}).items()
                if not (isinstance(v, Mapping) and "secure" in v)}
    return engine_config(loaded)


def run_gate(recording: Recording, *, environment: str | None = None, config_path: Path | None = None,
             stack_file: Path | None = None, policy_dir: Path | None = None,
             targets: Sequence[str] = (), pack: PackProcess | None = None,
             loaded: LoadedStack | None = None) -> GateResult:
    """Analyze ``recording`` with the pack (``policy_dir``, default the repo's ``policies/``); see the module docstring.

    ``pack``: a pack process started earlier (:func:`start_pack`, beside planning); used when it was
    started for this stack, config and scope, else a new one is started. Closed either way.

    ``loaded``: the stack file as the caller already read it (the CLI's): its path and config are
    used instead of reading ``stack_file`` again.

    ``targets``: the URNs a targeted step's ``pulumi up --target`` changes, passed to the pack as the
    engine passes the workflow's environment (``SLM_POLICY_TARGETS``); unknowns elsewhere are deferred.

    Without ``environment`` the levels are the stack's own, derived from its name exactly as the pack
    under the engine derives them (``policies.environments``): ``config/<stack>.json`` when it exists,
    else ``config/<environment>.json``. An explicit ``environment`` uses ``config/<environment>.json``.
    """
    try:
        return _gate(recording, environment=environment, config_path=config_path, stack_file=stack_file,
                     policy_dir=policy_dir, targets=targets, pack=pack, loaded=loaded)
    finally:  # the pack it was handed never outlives the run, whatever it ended with (closing twice is harmless)
        if pack is not None:
            pack.close()


def _gate(recording: Recording, *, environment: str | None, config_path: Path | None, stack_file: Path | None,
          policy_dir: Path | None, targets: Sequence[str], pack: PackProcess | None,
          loaded: LoadedStack | None) -> GateResult:
    start = time.perf_counter()
    if environment is None:
        environment = environment_of_stack(recording.stack)
        path = config_path or config_path_for_stack(recording.stack)
    else:
        path = config_path or default_config_path(environment)
    policy_config = load_policy_config(path)
    if loaded is not None:
        stack_file, stack_config = loaded.path, engine_config(loaded)
    else:
        stack_config = _stack_config(stack_file)
    requests = Requests(recording.registrations, recording.wire)
    by_urn = requests.by_urn
    found = _Found()
    stack_req = analyzer_pb2.AnalyzeStackRequest(
        resources=[requests.stack_resource(r) for r in recording.registrations])
    if stack_req.ByteSize() > MAX_MESSAGE_BYTES:
        msg = (f"the stack's {len(recording.registrations)} resources make a {stack_req.ByteSize():,}-byte "
               f"AnalyzeStack message, above the pack's limit of {MAX_MESSAGE_BYTES:,} bytes; split it into stacks")
        raise GateInputError(msg)
    if pack is not None and pack.key != _pack_key(recording.project, recording.stack, stack_config, targets,
                                                  policy_dir or POLICY_DIR):
        pack.close()
        pack = None
    if pack is None:
        pack = PackProcess(project=recording.project, stack=recording.stack, config=stack_config,
                           policy_dir=policy_dir, targets=targets)
    with pack:
        stub = pack.stub
        try:
            stub.Handshake(analyzer_pb2.AnalyzerHandshakeRequest(
                engine_address=ENGINE_ADDRESS, root_directory=str(REPO_ROOT), program_directory=str(REPO_ROOT)),
                timeout=RPC_TIMEOUT_SECONDS)
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.UNIMPLEMENTED:  # type: ignore[attr-defined]
                raise
        configure_stack = analyzer_pb2.AnalyzerStackConfigureRequest(
            stack=recording.stack, project=recording.project, organization="organization", dry_run=True)
        configure_stack.config.update(stack_config)
        stub.ConfigureStack(configure_stack, timeout=RPC_TIMEOUT_SECONDS)
        info = stub.GetAnalyzerInfo(empty_pb2.Empty(), timeout=RPC_TIMEOUT_SECONDS)
        resolved = reconcile_config(info, policy_config)
        deviations = config_integrity(info, resolved, environment)
        request = analyzer_pb2.ConfigureAnalyzerRequest()
        for name, (level, props) in resolved.items():
            request.policyConfig[name].enforcementLevel = LEVEL_CODES[level]  # type: ignore[assignment]
            request.policyConfig[name].properties.update(props)
        stub.Configure(request, timeout=RPC_TIMEOUT_SECONDS)
        analyzed = [r for r in recording.registrations if r.custom and not r.read
                    and not r.type.startswith("pulumi:providers:")]
        _analyze_each(stub, analyzed, requests, found)
        stack_timeout = RPC_TIMEOUT_SECONDS + STACK_SECONDS_PER_RESOURCE * len(recording.registrations)
        _collect(stub.AnalyzeStack(stack_req, timeout=stack_timeout), None, by_urn, found)
    policies = [PolicyMeta(p.name, p.description, resolved[p.name][0], tuple(p.tags),
                           p.policy_type == analyzer_pb2.POLICY_TYPE_STACK) for p in info.policies]
    unique = list(dict.fromkeys(found.violations))
    unique.sort(key=lambda v: (v.level != "mandatory", v.policy, v.resource, v.message))
    return GateResult(
        environment=environment, stack=recording.stack, project=recording.project, pack=info.name,
        pack_version=_pack_version(info.version), policies=policies, violations=unique,
        exemptions=sorted(set(found.exemptions), key=lambda e: (e.policy, e.resource)),
        resources_analyzed=len(analyzed), stack_file=_relative(stack_file, recording.stack),
        seconds=round(time.perf_counter() - start, 3),
        lines=_declaration_lines(stack_file, [r.name for r in recording.registrations]), deviations=deviations,
        targets=len(targets), deferred=sorted(set(found.deferred), key=lambda d: (d.resource, d.policy)))


def _analyze_each(stub: analyzer_pb2_grpc.AnalyzerStub, analyzed: Sequence[Registration],
                  requests: Requests, found: _Found) -> None:
    """One Analyze per resource with at most ``IN_FLIGHT`` outstanding, as the engine's step executor does.

    Submitting every call at once (the old way) queues thousands of streams on a 4-thread server: at
    10,000 resources the channel ended in CANCELLED. Each deadline now starts when its call is sent.
    """
    pending: deque[tuple[Registration, Any]] = deque()
    for reg in analyzed:
        pending.append((reg, stub.Analyze.future(requests.analyze(reg), timeout=RPC_TIMEOUT_SECONDS)))
        if len(pending) >= IN_FLIGHT:
            done, fut = pending.popleft()
            _collect(fut.result(), done, requests.by_urn, found)
    while pending:
        done, fut = pending.popleft()
        _collect(fut.result(), done, requests.by_urn, found)


def _pack_version(reported: str) -> str:
    """The engine takes the version from PulumiPolicy.yaml (Python packs always report 0.0.1)."""
    try:
        doc = yaml.safe_load((POLICY_DIR / "PulumiPolicy.yaml").read_text(encoding="utf-8")) or {}
    except OSError:
        return reported
    return str(doc.get("version") or reported)


def _collect(response: analyzer_pb2.AnalyzeResponse, reg: Registration | None, by_urn: Mapping[str, Registration],
             found: _Found) -> None:
    for d in response.diagnostics:
        urn = d.urn or (reg.urn if reg is not None else "")
        owner = by_urn.get(urn)
        found.violations.append(Violation(
            policy=d.policyName, level=LEVELS.get(d.enforcementLevel, "advisory"), message=d.message, urn=urn,
            resource=owner.name if owner else "", type=owner.type if owner else "", description=d.description))
    for na in response.not_applicable:
        for line in na.reason.splitlines():
            if m := EXEMPT_RE.match(line):
                found.exemptions.append(
                    Exemption(na.policy_name, m["name"], m["pattern"][1:-1], m["reason"], int(m["n"])))
            elif m := DEFERRED_RE.match(line):
                found.deferred.append(Deferred(na.policy_name, m["name"], int(m["n"])))


# --------------------------------------------------------------------------- locations


def _relative(stack_file: Path | None, stack: str) -> str:
    path = stack_file or REPO_ROOT / "stacks" / f"Pulumi.{stack}.yaml"
    try:
        return path.resolve().relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return path.as_posix()


def _declaration_lines(stack_file: Path | None, names: Sequence[str]) -> dict[str, int]:
    """Resource name -> the line of the longest stack-file key that is a dash-run of the name's segments."""
    if stack_file is None or not stack_file.is_file():
        return {}
    keys: dict[str, int] = {}
    for number, line in enumerate(stack_file.read_text(encoding="utf-8").splitlines(), start=1):
        m = re.match(r"^\s*([A-Za-z0-9][\w.-]*):", line)
        if m and len(m.group(1)) >= 3 and m.group(1) not in keys:
            keys[m.group(1)] = number
    out: dict[str, int] = {}
    for name in names:
        segments = re.split(r"[-/]", name)
        best = ""
        for i in range(len(segments)):
            for j in range(i + 1, len(segments) + 1):
                cand = "-".join(segments[i:j])
                if cand in keys and len(cand) > len(best) and i > 0:
                    best = cand
        if best:
            out[name] = keys[best]
    return out


# --------------------------------------------------------------------------- formats


def format_result(result: GateResult, fmt: Format) -> str:
    """Render ``result`` as text, json, sarif (2.1.0), junit (XML) or markdown (PR comment)."""
    renderers = {"text": _text, "json": _json, "sarif": _sarif, "junit": _junit, "markdown": _markdown}
    if fmt not in renderers:
        msg = f"unknown format {fmt!r}; use one of: {', '.join(renderers)}"
        raise ValueError(msg)
    return renderers[fmt](result)


def policy_counts(r: GateResult) -> dict[str, int]:
    """Policies that passed (enabled, no finding), that found something, and that are disabled here."""
    found = {v.policy for v in r.violations}
    disabled = sum(1 for p in r.policies if p.level == "disabled")
    with_findings = sum(1 for p in r.policies if p.name in found and p.level != "disabled")
    return {"passed": len(r.policies) - disabled - with_findings, "with_findings": with_findings,
            "disabled": disabled}


def _where(r: GateResult, v: Violation) -> str:
    """`` (stacks/Pulumi.prod.yaml:42)``: the stack-file line the resource comes from, as in SARIF."""
    line = r.lines.get(v.resource)
    return f" ({r.stack_file}:{line})" if line else ""


def scope_line(r: GateResult) -> str:
    """What a targeted step's scope left to the untargeted up; empty for an untargeted run."""
    if not r.targets:
        return ""
    values = sum(d.unknown for d in r.deferred)
    return (f"scope: a targeted up of {r.targets} resources (SLM_POLICY_TARGETS); {values} unknown values on "
            f"{len({d.resource for d in r.deferred})} resources it does not change are deferred to the untargeted "
            "up's preview")


def _text(r: GateResult) -> str:
    counts = policy_counts(r)
    lines = [f"policy gate: {r.pack}@{r.pack_version} on stack {r.stack} ({r.environment} levels), "
             f"{r.resources_analyzed} resources analyzed (custom resources; components and providers are not "
             f"checked one by one), {len(r.policies)} policies, {r.seconds:.2f}s",
             f"  passed: {counts['passed']}   mandatory: {len(r.mandatory)}   advisory: {len(r.advisory)}   "
             f"exempted: {len(r.exemptions)}   disabled: {counts['disabled']}"]
    for title, group in (("MANDATORY", r.mandatory), ("advisory", r.advisory)):
        for v in group:
            lines.append(f"[{title}] {v.policy}: {v.detail}{_where(r, v)}")
    if r.deviations:
        lines.append(f"config deviations from the generated {r.environment} levels ({len(r.deviations)}):")
        lines.extend(f"  {d}" for d in r.deviations)
    if r.targets:
        lines.append(scope_line(r))
    if r.exemptions:
        lines.append("exemptions:")
        lines.extend(f"  {e.policy}: {e.resource} (pattern '{e.pattern}', {e.suppressed} suppressed): {e.reason}"
                     for e in r.exemptions)
    lines.append("result: FAIL (mandatory violations)" if r.exit_code else "result: PASS")
    return "\n".join(lines) + "\n"


def _json(r: GateResult) -> str:
    doc = {"pack": r.pack, "packVersion": r.pack_version, "stack": r.stack, "environment": r.environment,
           "resourcesAnalyzed": r.resources_analyzed, "seconds": r.seconds, "exitCode": r.exit_code,
           "counts": {"mandatory": len(r.mandatory), "advisory": len(r.advisory), "exempted": len(r.exemptions)},
           "violations": [{**asdict(v), "message": v.detail} for v in r.violations],
           "exemptions": [asdict(e) for e in r.exemptions], "configDeviations": r.deviations,
           "targets": r.targets, "deferred": [asdict(d) for d in r.deferred],
           "policies": [asdict(p) for p in r.policies]}
    return json.dumps(doc, indent=2) + "\n"


def _sarif(r: GateResult) -> str:
    rules = [{"id": p.name, "name": p.name, "shortDescription": {"text": p.description},
              "fullDescription": {"text": p.description},
              "defaultConfiguration": {"level": "error" if p.level == "mandatory" else "warning"},
              "properties": {"tags": list(p.tags), "enforcementLevel": p.level}} for p in r.policies]
    index = {p.name: i for i, p in enumerate(r.policies)}
    results = []
    for v in r.violations:
        fingerprint = hashlib.sha256(f"{v.policy}|{v.urn}|{v.detail}".encode()).hexdigest()
        results.append({
            "ruleId": v.policy, "ruleIndex": index.get(v.policy, 0),
            "level": "error" if v.level == "mandatory" else "warning",
            "message": {"text": v.detail},
            "locations": [{"physicalLocation": {
                "artifactLocation": {"uri": r.stack_file, "uriBaseId": "%SRCROOT%"},
                "region": {"startLine": r.lines.get(v.resource, 1)}},
                "logicalLocations": [{"name": v.resource or "stack", "fullyQualifiedName": v.urn or r.stack,
                                      "kind": "resource"}]}],
            "partialFingerprints": {"primaryLocationLineHash": fingerprint[:32], "slmPolicyViolation/v1": fingerprint},
        })
    doc = {"$schema": "https://json.schemastore.org/sarif-2.1.0.json", "version": "2.1.0",
           "runs": [{"tool": {"driver": {"name": "slmctl-gate", "fullName": f"{r.pack} policy pack",
                                         "version": r.pack_version, "semanticVersion": r.pack_version,
                                         "informationUri": "https://www.pulumi.com/docs/iac/crossguard/",
                                         "rules": rules}},
                     "automationDetails": {"id": f"slm-gate/{r.stack}/"},
                     "originalUriBaseIds": {"%SRCROOT%": {"uri": REPO_ROOT.as_uri() + "/"}},
                     "results": results}]}
    return json.dumps(doc, indent=2) + "\n"


def _junit(r: GateResult) -> str:
    suite = ET.Element("testsuite", name=f"policy-gate.{r.stack}", tests=str(len(r.policies)),
                       failures=str(len({v.policy for v in r.mandatory})), errors="0", skipped="0",
                       time=f"{r.seconds:.3f}")
    by_policy: dict[str, list[Violation]] = {}
    for v in r.violations:
        by_policy.setdefault(v.policy, []).append(v)
    for p in r.policies:
        case = ET.SubElement(suite, "testcase", classname=f"{r.pack}.{r.stack}", name=p.name, time="0")
        found = by_policy.get(p.name, [])
        mandatory = [v for v in found if v.level == "mandatory"]
        if mandatory:
            failure = ET.SubElement(case, "failure", type="mandatory",
                                    message=f"{len(mandatory)} mandatory violation(s)")
            failure.text = "\n".join(v.detail for v in mandatory)
        if p.level == "disabled":
            ET.SubElement(case, "skipped", message="disabled in this environment")
        advisory = [v for v in found if v.level != "mandatory"]
        if advisory:
            out = ET.SubElement(case, "system-out")
            out.text = "\n".join(f"advisory: {v.detail}" for v in advisory)
    root = ET.Element("testsuites", name="slmctl gate")
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


_MD_SPECIAL: Final = re.compile(r"([\\`*_{}\[\]()#+!|<>~&@:.-])")


def _md(text: str) -> str:
    """``text`` (a resource name, message, pattern or reason: user input) as inert Markdown table text.

    Every character CommonMark/GFM gives a meaning is backslash-escaped, so ``[x](http://evil)`` and
    ``![img](...)`` render as written, ``<b>`` is not HTML, ``@team`` pings nobody, ``http://...`` is no
    autolink, and ``|`` / newlines cannot break out of the table cell.
    """
    return _MD_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def _code(text: str) -> str:
    """``text`` as a code span inside a table cell: no backtick can close it, no ``|`` can split the cell."""
    return "`" + " ".join(text.split()).replace("`", "'").replace("|", "\\|") + "`"


def _markdown(r: GateResult) -> str:
    icon = ":x:" if r.exit_code else ":white_check_mark:"
    lines = [f"### {icon} Policy gate: {_code(r.stack)} ({r.environment} levels)", "",
             f"**{len(r.mandatory)}** mandatory · **{len(r.advisory)}** advisory · **{len(r.exemptions)}** exempted "
             f"· {r.resources_analyzed} resources · {len(r.policies)} policies · {r.seconds:.1f}s", ""]
    if r.violations:
        lines += ["| Level | Policy | Resource | Finding |", "|---|---|---|---|"]
        for v in r.violations[:100]:
            finding = v.detail.split(": ", 1)[-1] if v.resource else v.detail
            lines.append(f"| {v.level} | {_code(v.policy)} | {_code(v.resource or 'stack')} | {_md(finding)} |")
        if len(r.violations) > 100:
            lines.append(f"| | | | … {len(r.violations) - 100} more (see the SARIF report) |")
        counts = Counter(v.policy for v in r.violations)
        lines += ["", "<details><summary>By policy</summary>", "", *(f"- {_code(k)}: {n}" for k, n in
                                                                   counts.most_common()), "", "</details>"]
    if r.targets:
        lines += ["", _md(scope_line(r))]
    if r.deviations:
        lines += ["", f"**Config deviations from the generated {r.environment} levels**", "",
                  *(f"- {_md(d)}" for d in r.deviations)]
    if r.exemptions:
        lines += ["", "**Exemptions**", "", "| Policy | Resource | Pattern | Reason |", "|---|---|---|---|"]
        lines += [f"| {_code(e.policy)} | {_code(e.resource)} | {_code(e.pattern)} | {_md(e.reason)} |"
                  for e in r.exemptions]
    return "\n".join(lines) + "\n"
