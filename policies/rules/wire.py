"""Reading wire-form properties (camelCase keys, numbers as floats) without pulumi.

The pack receives properties as read-only proxies (``Mapping`` / ``Sequence``), the components pass
plain dicts; these helpers treat both alike. Nothing here echoes a value into a message unless the
caller chose to: rule messages must never contain a secret.
"""

from __future__ import annotations

import functools
import re
import shlex
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Final

Props = Mapping[str, Any]

WORKLOAD_TYPES: Final = frozenset({
    "kubernetes:apps/v1:Deployment",
    "kubernetes:apps/v1:StatefulSet",
    "kubernetes:apps/v1:DaemonSet",
    "kubernetes:apps/v1:ReplicaSet",
    "kubernetes:batch/v1:Job",
    "kubernetes:batch/v1:CronJob",
    "kubernetes:core/v1:Pod",
    "kubernetes:core/v1:ReplicationController",
})
"""Kubernetes types that carry a pod spec (catalogue group D)."""

INFERENCE_COMPONENT_LABEL: Final = "app.kubernetes.io/component"
INFERENCE_COMPONENT_VALUE: Final = "inference"
GPU_RESOURCE: Final = "nvidia.com/gpu"


# --------------------------------------------------------------------------- the types a rule judges

ResourceRule = Callable[[str, Props, Mapping[str, Any]], list[str]]


def applies_to(*types: str | Iterable[str]) -> Callable[[ResourceRule], ResourceRule]:
    """Declare the type tokens a resource rule judges; for any other type it returns ``[]`` unread.

    The check is the decorator's own (the rule body only ever sees these types), so the declaration
    cannot drift from what the rule does: the pack reads ``rule.applies_to`` and skips a rule for a
    resource none of whose views has one of its types, without building the rule's arguments.
    A rule without it judges every type.
    """
    judged = frozenset(t for group in types for t in ((group,) if isinstance(group, str) else group))

    def decorate(rule: ResourceRule) -> ResourceRule:
        @functools.wraps(rule)
        def judge(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
            return rule(type_, props, cfg) if type_ in judged else []

        judge.applies_to = judged  # type: ignore[attr-defined]
        return judge

    return decorate


def judged_types(rule: Callable[..., Any]) -> frozenset[str] | None:
    """The types ``rule`` declares with :func:`applies_to`, or None when it judges every type."""
    declared = getattr(rule, "applies_to", None)
    return declared if isinstance(declared, frozenset) else None


# --------------------------------------------------------------------------- unknown values (issue 12.2)

UNKNOWN_SENTINELS: Final = frozenset({
    "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7", "3eeb2bf0-c639-47a8-9e75-3b44932eb421",
    "04da6b54-80e4-46f7-96ec-b56ff0331ba9", "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2",
    "030794c1-ac77-496b-92df-f27374a8bd58", "e48ece36-62e2-4504-bad9-02848725956a",
    "dd056dcd-154b-4c76-9bd3-c8f88648b5ff",
})
"""The engine's unknown-value sentinels (bool, number, string, array, asset, archive, object)."""
_READ: ContextVar[set[str] | None] = ContextVar("slm_unknown_reads", default=None)


class Unknown:
    """A value not known at preview. Any use of it by a rule records its path as read.

    The pack's adapter replaces each unknown leaf with one of these (instead of letting the SDK's proxy
    abort the whole policy), so an unknown blinds only the checks that read *that* value; every read
    becomes a "cannot verify" finding in staging and prod (``tracking_reads``).
    """

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path = path

    def touch(self) -> None:
        """Record that a rule read this value."""
        reads = _READ.get()
        if reads is not None:
            reads.add(self.path)

    def __eq__(self, other: object) -> bool:
        self.touch()
        return False

    def __ne__(self, other: object) -> bool:
        self.touch()
        return True

    def __hash__(self) -> int:
        self.touch()
        return hash(("unknown", self.path))

    def __bool__(self) -> bool:
        self.touch()
        return False

    def __str__(self) -> str:
        self.touch()
        return "(unknown at preview)"

    __repr__ = __str__

    def __iter__(self) -> Iterator[Any]:
        self.touch()
        return iter(())

    def __len__(self) -> int:
        self.touch()
        return 0

    def __contains__(self, item: object) -> bool:
        self.touch()
        return False

    def __lt__(self, other: object) -> bool:
        self.touch()
        return False

    __le__ = __gt__ = __ge__ = __lt__


class KnownDict(dict[str, Any]):
    """Converted properties: a plain dict whose lookups record reads of the unknown values in it."""

    def __getitem__(self, key: str) -> Any:
        value = dict.__getitem__(self, key)
        if isinstance(value, Unknown):
            value.touch()
        return value

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        value = dict.get(self, key, default)
        if isinstance(value, Unknown):
            value.touch()
        return value


def with_unknowns(value: Any, path: str = "") -> Any:
    """Plain data (``KnownDict`` / list) with every sentinel string replaced by an ``Unknown`` at its path."""
    if isinstance(value, Unknown):
        return value
    if isinstance(value, str):
        return Unknown(path) if value in UNKNOWN_SENTINELS else value
    if isinstance(value, Mapping):
        return KnownDict({str(k): with_unknowns(v, f"{path}.{k}" if path else str(k))
                          for k, v in value.items()})  # type: ignore[union-attr]
    if is_list(value):
        return [with_unknowns(v, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


class tracking_reads:  # noqa: N801 (used as a context manager: ``with tracking_reads() as reads``)
    """Collect the paths of the unknown values read inside the block."""

    def __enter__(self) -> set[str]:
        self._reads: set[str] = set()
        self._token = _READ.set(self._reads)
        return self._reads

    def __exit__(self, *exc: object) -> None:
        _READ.reset(self._token)


def _touch(value: Any) -> None:
    if isinstance(value, Unknown):
        value.touch()


_NEITHER: Final = frozenset({str, float, int, bool, type(None), bytes, Unknown})
"""Exact types that are never a mapping or a list: answered without an ``isinstance`` check against an ABC
(the pack asks ~170 times per resource; an ABC check is several times a type lookup)."""
_MAPS: Final = frozenset({dict, KnownDict})
_PATHS: dict[str, tuple[str, ...]] = {}
_PATHS_KEPT: Final = 4096


def is_map(value: Any) -> bool:
    """True for dicts and read-only mapping proxies."""
    kind = type(value)
    if kind in _MAPS:
        return True
    if kind in _NEITHER or kind is list:
        return False
    return isinstance(value, Mapping)


def is_list(value: Any) -> bool:
    """True for lists and sequence proxies, but not strings."""
    kind = type(value)
    if kind is list:
        return True
    if kind in _NEITHER or kind in _MAPS:
        return False
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def _parts(path: str) -> tuple[str, ...]:
    parts = _PATHS.get(path)
    if parts is None:
        parts = tuple(path.split("."))
        if len(_PATHS) < _PATHS_KEPT:  # the rules' paths are literals, a few built from names: bounded anyway
            _PATHS[path] = parts
    return parts


def get(props: Any, path: str, default: Any = None) -> Any:
    """The value at a dotted camelCase path (``properties.networkAcls.defaultAction``), or ``default``."""
    node = props
    for part in _parts(path):
        if is_map(node) and part in node:
            node = node[part]
        elif is_list(node) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            _touch(node)
            return default
    _touch(node)
    return default if node is None else node


def items(value: Any) -> list[Any]:
    """A list value, or an empty list when absent or not a list."""
    _touch(value)
    return list(value) if is_list(value) else []


def mapping(value: Any) -> dict[str, Any]:
    """A mapping value as a dict, or an empty dict when absent or not a mapping (unknowns stay tracked)."""
    _touch(value)
    if isinstance(value, KnownDict):
        return KnownDict(dict.items(value))
    return {str(k): value[k] for k in value} if is_map(value) else {}


def number(value: Any) -> float | None:
    """A wire number (floats) or numeric string as a float; None when absent or not numeric."""
    _touch(value)
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def show(value: Any) -> str:
    """A short, non-secret rendering of a scalar for a message (integral floats as ints)."""
    if isinstance(value, Unknown):
        return str(value)
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str):
        return repr(value if len(value) <= 80 else value[:77] + "...")
    if is_list(value):
        items = list(value)  # type: ignore[arg-type]  # is_list narrows at run time
        return "[" + ", ".join(show(v) for v in items[:8]) + (", ..." if len(items) > 8 else "") + "]"
    return type(value).__name__


def truthy(value: Any) -> bool:
    """Booleans, and the strings Kubernetes/ARM use for them ("true")."""
    _touch(value)
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return value is True


# --------------------------------------------------------------------------- Kubernetes workloads


def _shell_words(text: str) -> list[str]:
    """The words of a shell script (``sh -c "..."``), operators (``&&``, ``;``) dropped; plain split if unbalanced."""
    try:
        lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        return [w for w in lexer if w not in {"&&", "||", ";", "|", "&"}]
    except ValueError:
        return text.split()


@dataclass(frozen=True)
class Container:
    """One container of a pod spec, with the property path it sits at."""

    path: str
    spec: dict[str, Any]
    init: bool = False

    @property
    def name(self) -> str:
        """The container name (or ``?``)."""
        return str(self.spec.get("name", "?"))

    @property
    def image(self) -> str:
        """The image reference, empty when unset."""
        return str(self.spec.get("image") or "")

    @property
    def image_unknown(self) -> bool:
        """The image is unknown at preview: reading it is recorded (a "cannot verify"), and it is no empty image."""
        return isinstance(self.spec.get("image"), Unknown)

    def args(self) -> list[str]:
        """``command`` then ``args`` as the server parses them: ``--flag=value`` split in two, flag names with
        ``_`` read as ``-`` (``--trust_remote_code``, as vLLM's parser does), and a shell's ``-c "vllm serve
        ..."`` script split into its words, so a wrapper hides nothing."""
        out: list[str] = []
        raw = [str(t) for t in [*items(self.spec.get("command")), *items(self.spec.get("args"))]]
        for i, text in enumerate(raw):
            script = i > 0 and re.fullmatch(r"-[a-z]*c", raw[i - 1]) is not None  # sh -c / bash -ec "<script>"
            words = _shell_words(text) if script else [text]
            for word in words:
                if word.startswith("--"):
                    flag, eq, value = word.partition("=")
                    out.extend([flag.replace("_", "-"), value] if eq else [flag.replace("_", "-")])
                else:
                    out.append(word)
        return out

    def flag(self, name: str) -> str | None:
        """The value of ``--name value`` (``""`` for a bare flag), or None when absent."""
        tokens = self.args()
        for i, token in enumerate(tokens):
            if token == name:
                nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
                return "" if nxt.startswith("--") else nxt
        return None

    def env(self) -> list[dict[str, Any]]:
        """The ``env`` entries as dicts."""
        return [mapping(e) for e in items(self.spec.get("env"))]

    def env_names(self) -> set[str]:
        """Names of the ``env`` entries."""
        return {str(e.get("name", "")) for e in self.env()}

    def env_from(self) -> list[str]:
        """The ConfigMaps and Secrets ``envFrom`` imports whole (``configMap/<name>``, ``secret/<name>``)."""
        out = []
        for source in items(self.spec.get("envFrom")):
            src = mapping(source)
            for key, kind in (("configMapRef", "configMap"), ("secretRef", "secret")):
                ref = mapping(src.get(key))
                if ref:
                    out.append(f"{kind}/{ref.get('name', '?')}")
        return out

    def gpu_limit(self) -> float:
        """``resources.limits["nvidia.com/gpu"]`` (0 when unset)."""
        return number(get(self.spec, "resources.limits", {}).get(GPU_RESOURCE)
                      if is_map(get(self.spec, "resources.limits")) else None) or 0.0


@dataclass(frozen=True)
class PodSpec:
    """The pod template of a workload: where it sits, its spec and its metadata."""

    path: str
    spec: dict[str, Any]
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)

    def containers(self, *, include_init: bool = True) -> list[Container]:
        """``containers``, then (optionally) ``initContainers`` and ``ephemeralContainers``."""
        keys = ("containers", "initContainers", "ephemeralContainers") if include_init else ("containers",)
        out: list[Container] = []
        for key in keys:
            for i, c in enumerate(items(self.spec.get(key))):
                out.append(Container(f"{self.path}.{key}[{i}]", mapping(c), init=key != "containers"))
        return out

    @property
    def uses_gpu(self) -> bool:
        """True when any container limits ``nvidia.com/gpu``."""
        return any(c.gpu_limit() > 0 for c in self.containers())


def pod_spec(type_: str, props: Props) -> PodSpec | None:
    """The pod spec of a workload type (``spec.template.spec``, ``spec.jobTemplate...`` or ``spec``)."""
    if type_ not in WORKLOAD_TYPES:
        return None
    if type_ == "kubernetes:core/v1:Pod":
        path, template = "spec", {"spec": get(props, "spec", {}), "metadata": get(props, "metadata", {})}
    elif type_ == "kubernetes:batch/v1:CronJob":
        path, template = "spec.jobTemplate.spec.template.spec", get(props, "spec.jobTemplate.spec.template", {})
    else:
        path, template = "spec.template.spec", get(props, "spec.template", {})
    return PodSpec(path, mapping(get(template, "spec", {})),
                   {k: str(v) for k, v in mapping(get(template, "metadata.labels", {})).items()},
                   {k: str(v) for k, v in mapping(get(template, "metadata.annotations", {})).items()})


def metadata_labels(props: Props) -> dict[str, str]:
    """``metadata.labels`` of a Kubernetes object."""
    return {k: str(v) for k, v in mapping(get(props, "metadata.labels", {})).items()}


_NAMESPACE_KEY: Final = "slm_namespace"
"""Where :func:`namespace_of` keeps its answer on a ``KnownDict`` (in the instance's ``__dict__``, not its items)."""


def namespace_of(props: Props) -> str:
    """``metadata.namespace``; ``default`` when unset (what the API server would use).

    On the pack's converted properties (a ``KnownDict``, never edited once built) the answer is kept
    when finding it read no unknown value: the stack rules ask it for every pair of workloads and
    NetworkPolicies, Services or monitors (4.8 million times for 10,035 resources, half of AnalyzeStack).
    An answer that read an unknown is never kept, so every rule that asks records the read again.
    """
    if type(props) is KnownDict:
        kept = props.__dict__.get(_NAMESPACE_KEY)
        if kept is not None:
            return kept
        meta = dict.get(props, "metadata")
        ns = dict.get(meta, "namespace") if isinstance(meta, dict) else None
        if (meta is None or isinstance(meta, dict)) and (ns is None or type(ns) is str):
            kept = props.__dict__[_NAMESPACE_KEY] = ns or "default"
            return kept
    return str(get(props, "metadata.namespace") or "default")


def is_inference(type_: str, props: Props) -> bool:
    """A workload labelled ``app.kubernetes.io/component: inference`` (object or pod template)."""
    pod = pod_spec(type_, props)
    labels = {**metadata_labels(props), **(pod.labels if pod else {})}
    return labels.get(INFERENCE_COMPONENT_LABEL) == INFERENCE_COMPONENT_VALUE


def selector_matches(selector: Any, labels: Mapping[str, str]) -> bool:
    """Kubernetes label-selector semantics (``matchLabels`` + ``matchExpressions``); empty selects all."""
    sel = mapping(selector)
    for key, value in mapping(sel.get("matchLabels")).items():
        if labels.get(key) != str(value):
            return False
    for expr in items(sel.get("matchExpressions")):
        e = mapping(expr)
        key, op, values = str(e.get("key")), str(e.get("operator")), [str(v) for v in items(e.get("values"))]
        if (op == "In" and labels.get(key) not in values) or (op == "NotIn" and labels.get(key) in values) \
                or (op == "Exists" and key not in labels) or (op == "DoesNotExist" and key in labels):
            return False
    return True


IMAGE_RE: Final = re.compile(
    r"^(?:(?P<registry>[a-zA-Z0-9.-]+(?::\d+)?|localhost(?::\d+)?)/)?"
    r"(?P<repo>[a-z0-9._/-]+?)(?::(?P<tag>[\w.-]+))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?$"
)


@dataclass(frozen=True)
class ImageRef:
    """A parsed image reference (registry defaults to docker.io, as the container runtime does)."""

    registry: str
    repository: str
    tag: str | None
    digest: str | None

    @property
    def qualified(self) -> str:
        """``registry/repository`` (``docker.io/library/x`` for official images)."""
        return f"{self.registry}/{self.repository}"


def parse_image(image: str) -> ImageRef | None:
    """Parse ``[registry/]repo[:tag][@sha256:...]``; None when it is not an image reference."""
    m = IMAGE_RE.match(image.strip())
    if not image or m is None:
        return None
    registry = m.group("registry")
    repo = m.group("repo")
    if registry is None or ("." not in registry and ":" not in registry and registry != "localhost"):
        repo = f"{registry}/{repo}" if registry else repo
        registry = "docker.io"
        if "/" not in repo:
            repo = f"library/{repo}"
    return ImageRef(registry, repo, m.group("tag"), m.group("digest"))
