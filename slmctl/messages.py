"""Pydantic validation errors as one line each: file:line, the YAML path, the value, and the fix.

Beyond pydantic's own text: "did you mean" for misspelt keys and enum values (difflib), "quote it"
when YAML turned a string into a number (``zones: [1, 2]``, ``kubernetes_version: 1.30``), and the
fix for the patterns users trip over (a branch as ``revision``, a bare number as ``cost_center``).
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from pydantic import ValidationError

from stacks.settings import EnvironmentSettings

Loc = tuple[int | str, ...]


@cache
def _schema() -> dict[str, Any]:
    return EnvironmentSettings.model_json_schema()


def _resolve(node: Mapping[str, Any]) -> Mapping[str, Any]:
    defs = _schema().get("$defs", {})
    for _ in range(10):
        if "$ref" in node:
            node = defs[node["$ref"].rsplit("/", 1)[-1]]
        elif "anyOf" in node:  # Optional[X]: the non-null branch
            branches = [b for b in node["anyOf"] if b.get("type") != "null"]
            if len(branches) != 1:
                return node
            node = branches[0]
        else:
            return node
    return node


def _node_at(loc: Loc) -> Mapping[str, Any] | None:
    """The schema node of ``loc`` (pydantic's location, discriminator tags included)."""
    node = _resolve(_schema())
    for item in loc:
        if isinstance(item, int):
            items = node.get("items")
            if not isinstance(items, Mapping):
                return None
            node = _resolve(items)
        elif item in node.get("properties", {}):
            node = _resolve(node["properties"][item])
        elif "discriminator" in node and item in node["discriminator"].get("mapping", {}):
            ref = node["discriminator"]["mapping"][item]
            node = _resolve({"$ref": ref})
        elif any(re.search(pattern, item) for pattern in node.get("patternProperties", {})):
            node = _resolve(next(v for k, v in node["patternProperties"].items() if re.search(k, item)))
        elif isinstance(node.get("additionalProperties"), Mapping):
            node = _resolve(node["additionalProperties"])
        else:
            return None
    return node


def _is_tag(loc: Loc, i: int) -> bool:
    node = _node_at(loc[:i]) if i >= 1 else None
    return node is not None and loc[i] in node.get("discriminator", {}).get("mapping", {})


def format_loc(loc: Loc) -> str:
    """``('deployments', 'x', 'vllm', 'pool')`` -> ``deployments.x.pool`` (the tag is pydantic's, not the user's)."""
    parts: list[str] = []
    for i, item in enumerate(loc):
        if isinstance(item, str) and _is_tag(loc, i):
            continue
        parts.append(f"[{item}]" if isinstance(item, int) else (f".{item}" if parts else str(item)))
    return "".join(parts)


def _parent(path: str) -> str:
    match = re.search(r"(\.[^.\[]+|\[\d+\])$", path)
    return path[:match.start()] if match else ""


def display(value: Any) -> str:
    """A value as the user wrote it, short."""
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def did_you_mean(value: Any, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or not choices:
        return ""
    lowered = {c.lower(): c for c in choices}
    if value.lower() in lowered:
        return f"; did you mean {lowered[value.lower()]!r}?"
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _source_literal(line: int, source: Sequence[str]) -> str | None:
    """The scalar as written on a ``key: value`` or ``- value`` line (YAML turned it into a number)."""
    if not 0 < line <= len(source):
        return None
    match = re.match(r"^\s*(?:-\s+|[^:#]+:\s+)([^\s#\[\]{},]+)\s*(?:#.*)?$", source[line - 1])
    return match.group(1) if match else None


class _Problem:
    """One pydantic error, rewritten for a person."""

    def __init__(self, err: Mapping[str, Any], lines: Mapping[str, int], source: Sequence[str]) -> None:
        self.err, self.lines, self.source = err, lines, source
        self.loc: Loc = tuple(err["loc"])
        self.path = format_loc(self.loc)
        self.type = str(err["type"])
        self.value = err.get("input")

    @property
    def line(self) -> int:
        path = self.path
        while path and path not in self.lines:
            path = _parent(path)
        return self.lines.get(path, 0)

    def text(self) -> str:
        message = str(self.err["msg"]).removeprefix("Value error, ")
        got = f" (got {display(self.value)})"
        fixer = getattr(self, f"_fix_{self.type}", None)
        fixed = fixer(message) if fixer is not None else None
        if fixed is not None:
            return fixed
        return f"settings.{self.path}: {message}{got}"

    # one method per pydantic error type that can say more -------------------------------

    def _fix_missing(self, _: str) -> str:
        return f"settings.{self.path}: required field is missing; add it"

    def _fix_extra_forbidden(self, _: str) -> str:
        node = _node_at(self.loc[:-1]) or {}
        key = str(self.loc[-1])
        known = sorted(node.get("properties", {}))
        hint = did_you_mean(key, known) or (f"; known keys here: {', '.join(known)}" if known else "")
        return f"settings.{self.path}: unknown key{hint} (got {display(self.value)})"

    def _fix_literal_error(self, message: str) -> str:
        expected = re.findall(r"'([^']*)'", str(self.err.get("ctx", {}).get("expected", "")))
        if not isinstance(self.value, str) and str(self.value) in expected:
            return (f"settings.{self.path}: {self.value} is a number in YAML; quote it: '{self.value}' "
                    f"(one of: {', '.join(expected)})")
        return (f"settings.{self.path}: {display(self.value)} is not one of: {', '.join(expected)}"
                f"{did_you_mean(self.value, expected)}" if expected else f"settings.{self.path}: {message}")

    _fix_enum = _fix_literal_error

    def _fix_union_tag_invalid(self, _: str) -> str:
        ctx = self.err.get("ctx", {})
        expected = re.findall(r"'([^']*)'", str(ctx.get("expected_tags", "")))
        tag, field = ctx.get("tag"), ctx.get("discriminator", "").strip("'")
        return (f"settings.{self.path}.{field}: {tag!r} is not one of: {', '.join(expected)}"
                f"{did_you_mean(tag, expected)}")

    def _fix_string_type(self, message: str) -> str:
        if isinstance(self.value, bool) or not isinstance(self.value, int | float):
            return f"settings.{self.path}: {message} (got {display(self.value)})"
        written = _source_literal(self.line, self.source) or str(self.value)
        if self.loc[-1] == "cost_center":
            return (f"settings.{self.path}: {written} is a number; cost centers are written 'cc-<4 digits>', "
                    f"e.g. cost_center: cc-{written}")
        return (f"settings.{self.path}: YAML reads {written} as the number {self.value}; quote it: "
                f"{self.loc[-1]}: '{written}'")

    def _fix_string_pattern_mismatch(self, message: str) -> str:
        field = self.loc[-1]
        if field == "revision":
            return (f"settings.{self.path}: {display(self.value)} is not a commit; give the 40-hex commit SHA, "
                    "not a branch or tag (the model page's Files and versions -> History)")
        if field == "cost_center":
            digits = re.sub(r"\D", "", str(self.value))
            example = f"cc-{digits}" if len(digits) == 4 else "cc-1234"
            return f"settings.{self.path}: {display(self.value)} is not a cost center code; write it like {example}"
        return f"settings.{self.path}: {message} (got {display(self.value)})"


def validation_problems(exc: ValidationError, rel: str, lines: Mapping[str, int],
                        source: Sequence[str] = ()) -> list[str]:
    """One line per error: ``file:line: settings.<path>: <what is wrong>; <the fix>``."""
    problems: list[str] = []
    for err in exc.errors(include_url=False):
        problem = _Problem(err, lines, source)
        if not problem.path and problem.type not in {"missing", "extra_forbidden"}:
            # a model-level rule: its message carries its own paths, one per line
            for line in str(err["msg"]).removeprefix("Value error, ").splitlines():
                sub = line.split(":", 1)[0].split(" ")[0]
                where = lines.get(sub, 0) or lines.get("", 0)
                problems.append(f"{rel}:{where}: settings.{line}" if where else f"{rel}: settings.{line}")
            continue
        where = problem.line
        problems.append(f"{rel}:{where}: {problem.text()}" if where else f"{rel}: {problem.text()}")
    return problems
