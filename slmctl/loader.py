"""Load a stack file the way Pulumi would, and validate it before anything is declared.

A stack file is ``stacks/Pulumi.<stack>.yaml``: a ``config:`` map of ``<namespace>:<key>`` values.
``slm-platform:settings`` holds the typed environment (``stacks.settings.EnvironmentSettings``);
``secure:`` values are Pulumi secrets, which offline are replaced by placeholder secrets that are
never printed. Every problem becomes one ``StackFileError`` line with the file, line, YAML path,
the offending value and the fix — never a traceback.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import ValidationError

from components.domain import CONFIG_NAMESPACE
from policies.environments import tier_problem
from slmctl.errors import UsageError
from slmctl.messages import display, validation_problems
from stacks.settings import EDGE_REGISTRY_TOKEN_PASSWORD_KEY, SETTINGS_KEY, EnvironmentSettings

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
STACKS_DIR: Final = REPO_ROOT / "stacks"
REQUIRED_SECRETS: Final = ("engineApiKey", "grafanaAdminPassword")
DEPLOY_RUNNER_SECRET: Final = "deployRunnerAppKey"  # noqa: S105 (a config key name)
"""The GitHub App private key the in-VNet deploy runner registers with (components.deploy_runner)."""
"""Secret config keys the program reads; ``pulumi config set --secret slm-platform:<key>`` sets them."""
GATED_MODEL_SECRET: Final = "huggingFaceToken"  # noqa: S105 (a config key name)
"""Required as well when a model in the catalogue is gated on Hugging Face (Gemma)."""
PLACEHOLDER_SECRET: Final = "offline-placeholder-secret"  # noqa: S105 (a marker, not a credential)


class StackFileError(UsageError):
    """One or more problems with a stack file, each a single line (exit 2)."""


@dataclass(frozen=True)
class LoadedStack:
    """A validated stack file and the config the engine would hand the program."""

    stack: str
    path: Path
    settings: EnvironmentSettings
    config: dict[str, str]
    """Pulumi config as the engine passes it: ``namespace:key`` -> string (objects as JSON)."""
    secret_keys: list[str]
    placeholder_secrets: list[str] = field(default_factory=list)
    """Secret keys that were absent or encrypted and got an offline placeholder."""
    lines: Mapping[str, int] = field(default_factory=dict)
    """Dotted settings path -> line in the stack file (for error and SARIF locations)."""


_SAFE_LOADER: Final[type[yaml.SafeLoader]] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's parser where PyYAML was built with it (the wheels are): ~8x faster than the pure-Python one."""


class _UniqueKeyLoader(_SAFE_LOADER):
    """SafeLoader that refuses duplicate mapping keys (PyYAML keeps the last one silently)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
        if key in seen:
            msg = (f"duplicate key {key!r} (first at line {seen[key]}, again at line "
                   f"{key_node.start_mark.line + 1}); each name may appear once")
            raise yaml.constructor.ConstructorError(None, None, msg, key_node.start_mark)
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


MAX_EXPANDED_NODES: Final = 100_000
"""A stack file is a few hundred values; '*alias' references that expand beyond this are an alias bomb."""


def _expanded_size(root: yaml.Node | None) -> int:
    """How many values the document holds once every alias is expanded, computed without expanding.

    Aliases share their anchor's node object, so sizes are memoized per node: linear in the *written*
    document even for a billion-laughs bomb (which would otherwise hang every consumer walking it).
    """
    sizes: dict[int, int] = {}

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        sizes[key] = 1  # a (non-constructible) recursive alias counts once
        children: list[yaml.Node] = []
        if isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        total = 1
        for child in children:
            total = min(total + size(child), MAX_EXPANDED_NODES + 1)
        sizes[key] = total
        return total

    return 0 if root is None else size(root)


def _line_index(node: yaml.Node | None, prefix: str = "") -> dict[str, int]:
    index: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            path = f"{prefix}.{key_node.value}" if prefix else str(key_node.value)
            index[path] = key_node.start_mark.line + 1
            index.update(_line_index(value_node, path))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            path = f"{prefix}[{i}]"
            index[path] = item.start_mark.line + 1
            index.update(_line_index(item, path))
    return index


STACK_NAME_RE: Final = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
"""What ``pulumi stack init`` accepts (pkg/backend: alphanumerics, hyphens, underscores, periods; at most 100)."""


def shipped_stacks() -> list[str]:
    """The stacks of this repository: one per ``stacks/Pulumi.<name>.yaml``."""
    return sorted(p.name.split(".", 1)[1].rsplit(".", 1)[0] for p in STACKS_DIR.glob("Pulumi.*.yaml"))


def _check_stack_name(name: str, source: str) -> None:
    if not STACK_NAME_RE.fullmatch(name):
        msg = (f"{source}: {name!r} is not a stack name Pulumi accepts; use letters, digits, '-', '_' or '.'"
               " (at most 100 characters)")
        raise StackFileError([msg])


def stack_name_of(path: Path) -> str:
    """The stack a file is for: ``Pulumi.<name>.yaml`` -> ``<name>``, else the file's stem."""
    match = re.fullmatch(r"Pulumi\.(.+)\.ya?ml", path.name)
    return match.group(1) if match else path.stem


def resolve_stack_path(stack: str | None, stack_file: Path | None) -> tuple[str, Path]:
    """Map ``plan dev`` or ``--stack-file PATH`` to (stack name, path); refuse what Pulumi would not run."""
    if stack_file is not None:
        if stack_file.is_dir():
            files = sorted(p.name for p in stack_file.glob("Pulumi.*.yaml"))
            hint = f" such as {stack_file / files[0]}" if files else " (Pulumi.<stack>.yaml)"
            msg = f"--stack-file {stack_file}: is a folder; pass one stack file{hint}, or a stack name"
            raise StackFileError([msg])
        name = stack_name_of(stack_file)
        _check_stack_name(name, f"--stack-file {stack_file}")
        if stack is not None and stack != name:
            msg = (f"stack {stack!r} does not match --stack-file {stack_file} (the file of stack {name!r}); "
                   f"pass only the file, or name the stack {name!r}")
            raise StackFileError([msg])
        return name, stack_file
    if not stack:
        msg = f"name a stack ({', '.join(shipped_stacks())}) or pass --stack-file PATH"
        raise StackFileError([msg])
    _check_stack_name(stack, "stack")
    return stack, STACKS_DIR / f"Pulumi.{stack}.yaml"


def _read_text(path: Path, rel: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        line = exc.object[:exc.start].count(b"\n") + 1
        msg = (f"{rel}:{line}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x}); "
               "save the file as UTF-8 (Pulumi reads stack files as UTF-8)")
        raise StackFileError([msg]) from None
    except OSError as exc:
        msg = f"{rel}: cannot read the stack file ({exc.strerror or exc})"
        raise StackFileError([msg]) from None


def _too_deep(rel: str) -> str:
    return f"{rel}: YAML nests too deeply to read; a stack file is a few levels of maps and lists"


def load_stack_file(path: Path, *, stack: str | None = None) -> LoadedStack:
    """Read, validate and return a stack file, or raise ``StackFileError``."""
    stack_name = stack or stack_name_of(path)
    try:
        rel = str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        rel = str(path)
    if not path.is_file():
        available = shipped_stacks()
        close = difflib.get_close_matches(stack_name, available, n=1)
        guess = f"did you mean {close[0]!r}? " if close else ""
        msg = f"{rel}: stack file not found; {guess}shipped stacks: {', '.join(available)}, or pass --stack-file PATH"
        raise StackFileError([msg])
    text = _read_text(path, rel)
    try:
        loader = _UniqueKeyLoader(text)
        try:  # parsed once: the alias check reads the same node tree the constructor builds from
            node = loader.get_single_node()
            expanded = _expanded_size(node)
            if expanded > MAX_EXPANDED_NODES:
                msg = (f"{rel}: YAML aliases expand to more than {MAX_EXPANDED_NODES:,} values; a stack "
                       "file needs no '*alias' fan-out, write the values out")
                raise StackFileError([msg])
            doc = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except RecursionError:
        raise StackFileError([_too_deep(rel)]) from None
    except yaml.YAMLError as exc:
        if "maximum nesting depth" in str(exc):  # libyaml's own limit, where the pure-Python parser recurses
            raise StackFileError([_too_deep(rel)]) from None
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"{rel}:{mark.line + 1}" if mark else rel
        problem = getattr(exc, "problem", None) or str(exc)
        hint = "" if "duplicate key" in problem else "; fix the syntax (indentation, quotes, colons)"
        if mark and "\t" in (text.splitlines()[mark.line:mark.line + 1] or [""])[0]:
            hint = "; the line holds a tab: YAML indents with spaces only"  # libyaml does not name the character
        msg = f"{where}: YAML error: {problem}{hint}"
        raise StackFileError([msg]) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("config"), dict):
        msg = f"{rel}: a stack file needs a top-level 'config:' map with '{SETTINGS_KEY}:'"
        raise StackFileError([msg])
    all_lines = _line_index(node)
    prefix = f"config.{SETTINGS_KEY}."
    lines = {k.removeprefix(prefix): v for k, v in all_lines.items() if k.startswith(prefix)}
    raw_config: dict[str, Any] = doc["config"]
    if SETTINGS_KEY not in raw_config:
        msg = f"{rel}: config has no '{SETTINGS_KEY}' object; see stacks/Pulumi.dev.yaml for the shape"
        raise StackFileError([msg])
    lines = {"": all_lines.get(f"config.{SETTINGS_KEY}", 0), **lines}
    if not isinstance(raw_config[SETTINGS_KEY], dict):
        msg = (f"{rel}:{lines['']}: config.{SETTINGS_KEY} must be a map of settings (tier, name_prefix, "
               f"models, ...), not {display(raw_config[SETTINGS_KEY])}; see stacks/Pulumi.dev.yaml for the shape")
        raise StackFileError([msg])
    try:
        settings = EnvironmentSettings.model_validate(raw_config[SETTINGS_KEY])
    except ValidationError as exc:
        raise StackFileError(validation_problems(exc, rel, lines, text.splitlines())) from None
    problem = tier_problem(stack_name, settings.tier)
    if problem is not None:
        where = lines.get("tier")
        raise StackFileError([f"{rel}:{where}: {problem}" if where else f"{rel}: {problem}"])
    required = [*REQUIRED_SECRETS, *([GATED_MODEL_SECRET] if settings.needs_hugging_face_token else []),
                *(fleet.kubeconfig_key(name).split(":", 1)[1] for name, fleet in sorted(settings.edge.fleets.items())
                  if fleet.delivery == "kubernetes"),
                *([EDGE_REGISTRY_TOKEN_PASSWORD_KEY.partition(":")[2]] if settings.uses_azure and any(
                    f.delivery != "foundry-local" for f in settings.edge.fleets.values()) else []),
                *(k.partition(":")[2] for k in settings.monitoring.secret_keys()
                  if k.startswith(f"{CONFIG_NAMESPACE}:")),
                *([DEPLOY_RUNNER_SECRET] if settings.deployer.runner is not None else [])]
    secret_names = {*REQUIRED_SECRETS, GATED_MODEL_SECRET, *required}
    plain = [key for key in raw_config if key.split(":", 1)[-1] in secret_names and key.startswith(f"{CONFIG_NAMESPACE}:")
             and not (isinstance(raw_config[key], dict) and set(raw_config[key]) == {"secure"})]
    if plain:
        raise StackFileError([
            f"{rel}:{all_lines.get(f'config.{key}', 0)}: config.{key}: found a plain-text value (not shown) for a key "
            f"the program reads as a secret; delete the line and run `pulumi config set --secret {key} <value>` "
            "(the file then holds only its encrypted 'secure:' form)" for key in plain])
    config, secret_keys, placeholders = _engine_config(raw_config, rel, required)
    problem = _config_size_problem(raw_config, config, rel)
    if problem is not None:
        raise StackFileError([problem])
    return LoadedStack(stack=stack_name, path=path, settings=settings, config=config,
                       secret_keys=secret_keys, placeholder_secrets=placeholders, lines=lines)


_GO_HTML_ESCAPES: Final = {"&": "\\u0026", "<": "\\u003c", ">": "\\u003e", "\u2028": "\\u2028",
                            "\u2029": "\\u2029"}


def go_json(value: Any) -> str:
    """``value`` as Go's ``json.Marshal`` writes it, which is how the engine hands config to a program and a
    policy pack (``PropertyMapToConfig``, ``constructConfig``): compact, keys sorted, UTF-8, and ``& < >``
    U+2028 U+2029 escaped. The bytes matter where Linux limits an environment variable (131,072)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    for char, escaped in _GO_HTML_ESCAPES.items():  # these only ever occur inside JSON strings
        text = text.replace(char, escaped)
    return text


ENV_STRING_MAX: Final = 131_072
"""Linux's MAX_ARG_STRLEN: the most bytes one ``NAME=value`` environment string may hold at exec."""
CONFIG_VARIABLE: Final = "PULUMI_CONFIG"


def environment_string_bytes(name: str, value: str) -> int:
    """The bytes ``NAME=value`` takes in a process's environment, its terminating NUL included."""
    return len(f"{name}={value}".encode()) + 1


def config_variable_bytes(config: Mapping[str, str]) -> int:
    """The bytes ``PULUMI_CONFIG=<config>`` takes, the config written as the engine writes it."""
    return environment_string_bytes(CONFIG_VARIABLE, go_json(dict(config)))


def _config_size_problem(raw: Mapping[str, Any], config: Mapping[str, str], rel: str) -> str | None:
    """A stack config the Pulumi engine cannot start the program with, as one line; None when it fits.

    The Python language host and the policy-pack host both pass the whole config in one environment
    variable (``pulumiConfigVar`` in pulumi-language-python and in the analyzer plugin), and Linux refuses
    exec with E2BIG ("argument list too long") above :data:`ENV_STRING_MAX`; deploy.yml runs on Linux.
    Each secret counts at its encrypted size from the file, which is at least its plaintext's (a
    ciphertext is base64 of the plaintext and more), not at the offline placeholder's.
    """
    sized = {key: raw[key]["secure"] if isinstance(raw.get(key), dict) and isinstance(raw[key].get("secure"), str)
             else value for key, value in config.items()}
    size = config_variable_bytes(sized)
    if size <= ENV_STRING_MAX:
        return None
    return (f"{rel}: the stack config is {size:,} bytes as {CONFIG_VARIABLE}, above the {ENV_STRING_MAX:,} bytes "
            "Linux passes in one environment variable; the Pulumi engine hands the program and the policy pack "
            "their config that way, so `pulumi preview` would fail to start ('argument list too long'); split "
            "the stack, or leave out settings that repeat a default (a prod deployment's image is the "
            "digest-pinned default)")


def _engine_config(
    raw: Mapping[str, Any], rel: str, required: Iterable[str]
) -> tuple[dict[str, str], list[str], list[str]]:
    config: dict[str, str] = {}
    secret_keys: list[str] = []
    placeholders: list[str] = []
    for key, value in raw.items():
        if ":" not in key:
            msg = f"{rel}: config key {key!r} needs a namespace, e.g. '{CONFIG_NAMESPACE}:{key}'"
            raise StackFileError([msg])
        if isinstance(value, dict) and set(value) == {"secure"}:
            config[key] = PLACEHOLDER_SECRET
            secret_keys.append(key)
            placeholders.append(key)
        elif isinstance(value, (dict, list)):
            config[key] = go_json(value)  # as the engine passes it; YAML dates -> ISO strings
        else:
            config[key] = str(value).lower() if isinstance(value, bool) else str(value)
    for name in required:
        key = f"{CONFIG_NAMESPACE}:{name}"
        if key not in config:
            config[key] = PLACEHOLDER_SECRET
            secret_keys.append(key)
            placeholders.append(key)
    return config, sorted(secret_keys), sorted(placeholders)
