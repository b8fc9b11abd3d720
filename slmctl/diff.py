"""``slmctl diff A.json B.json``: what a change adds, changes and removes, resource by resource.

Resources are matched by URN (Pulumi's identity: a renamed resource is a delete and a create, as
``pulumi preview`` shows it). Inputs are compared property by property as dotted paths
(``spec.template.spec.containers[0].image``). Secrets are already redacted in plan.json, so a diff
never shows one. Formats: text (terminal) and markdown (the PR comment, next to the gate).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from slmctl.errors import UsageError

DiffFormat = Literal["text", "markdown", "json"]
MAX_VALUE_CHARS: Final = 120
MARKDOWN_MAX_RESOURCES: Final = 60


@dataclass(frozen=True)
class PropertyChange:
    """One input that differs: its dotted path, the old and the new value (``None`` when absent)."""

    path: str
    before: Any
    after: Any


@dataclass(frozen=True)
class ResourceChange:
    """A resource that is created, deleted or updated."""

    kind: Literal["create", "delete", "update"]
    urn: str
    type: str
    name: str
    properties: list[PropertyChange] = field(default_factory=list)


@dataclass(frozen=True)
class PlanDiff:
    """Every change between two plans, plus the cost before and after."""

    stack_before: str
    stack_after: str
    changes: list[ResourceChange]
    usd_before: float
    usd_after: float

    def count(self, kind: str) -> int:
        """How many resources are created, updated or deleted."""
        return sum(1 for c in self.changes if c.kind == kind)


def read_plan(path: Path, *, option: str = "plan") -> dict[str, Any]:
    """A plan.json document, or a one-line UsageError saying what is wrong with the file."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        msg = f"{option} {path}: no such file; write one with `python -m slmctl plan <stack>` (build/<stack>/plan.json)"
        raise UsageError(msg) from None
    except IsADirectoryError:
        msg = f"{option} {path}: is a folder; pass its plan.json"
        raise UsageError(msg) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        msg = f"{option} {path}: not a plan.json ({exc}); write one with `python -m slmctl plan <stack>`"
        raise UsageError(msg) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("resources"), list):
        msg = f"{option} {path}: not a plan.json (no 'resources' list); write one with `python -m slmctl plan <stack>`"
        raise UsageError(msg)
    return doc


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping) and value:
        flat: dict[str, Any] = {}
        for key in sorted(value):
            flat.update(_flatten(value[key], f"{prefix}.{key}" if prefix else str(key)))
        return flat
    if isinstance(value, list) and value:
        flat = {}
        for i, item in enumerate(value):
            flat.update(_flatten(item, f"{prefix}[{i}]"))
        return flat
    return {prefix: value}


def _properties(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[PropertyChange]:
    old, new = _flatten(before.get("inputs") or {}), _flatten(after.get("inputs") or {})
    changes = [PropertyChange(path, old.get(path), new.get(path)) for path in sorted(old.keys() | new.keys())
               if old.get(path) != new.get(path) or (path in old) != (path in new)]
    for option in ("protect", "parent", "dependencies"):
        if before.get(option) != after.get(option):
            changes.append(PropertyChange(f"({option})", before.get(option), after.get(option)))
    return changes


def diff_documents(before: Mapping[str, Any], after: Mapping[str, Any]) -> PlanDiff:
    """Compare two plan.json documents resource by resource (by URN) and property by property."""
    old = {r["urn"]: r for r in before.get("resources", [])}
    new = {r["urn"]: r for r in after.get("resources", [])}
    changes: list[ResourceChange] = []
    for urn in sorted(old.keys() | new.keys(), key=lambda u: ((new.get(u) or old[u])["type"], u)):
        a, b = old.get(urn), new.get(urn)
        if a is None and b is not None:
            changes.append(ResourceChange("create", urn, b["type"], b["name"]))
        elif b is None and a is not None:
            changes.append(ResourceChange("delete", urn, a["type"], a["name"]))
        elif a is not None and b is not None:
            props = _properties(a, b)
            if props:
                changes.append(ResourceChange("update", urn, b["type"], b["name"], props))
    return PlanDiff(stack_before=str(before.get("stack", "")), stack_after=str(after.get("stack", "")),
                    changes=changes, usd_before=float(before.get("estimated_monthly_usd") or 0),
                    usd_after=float(after.get("estimated_monthly_usd") or 0))


def _value(value: Any) -> str:
    if value is None:
        return "(absent)"
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS - 3] + "..."


SYMBOL: Final = {"create": "+", "delete": "-", "update": "~"}


def _headline(d: PlanDiff) -> str:
    cost = d.usd_after - d.usd_before
    cost_text = f"; monthly cost {'+' if cost >= 0 else '-'}${abs(cost):,.2f}" if cost else ""
    return (f"+{d.count('create')} to create, ~{d.count('update')} to update, -{d.count('delete')} to delete"
            f"{cost_text}")


def _text(d: PlanDiff) -> str:
    lines = [f"Diff {d.stack_before or '?'} -> {d.stack_after or '?'}: {_headline(d)}"]
    for c in d.changes:
        lines.append(f"  {SYMBOL[c.kind]} {c.type} {c.name}")
        lines.extend(f"      ~ {p.path}: {_value(p.before)} -> {_value(p.after)}" for p in c.properties)
    if not d.changes:
        lines.append("  no changes")
    return "\n".join(lines) + "\n"


def _md_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("`", "'").replace("\n", " ")


def _markdown(d: PlanDiff) -> str:
    lines = [f"#### Plan diff: `{_md_cell(d.stack_after or d.stack_before)}`", "", f"**{_headline(d)}**", ""]
    if not d.changes:
        return "\n".join([*lines, "No resource changes.", ""])
    lines += ["| | Type | Name | Properties |", "|---|---|---|---|"]
    for c in d.changes[:MARKDOWN_MAX_RESOURCES]:
        props = "<br>".join(f"`{_md_cell(p.path)}`: `{_md_cell(_value(p.before))}` → `{_md_cell(_value(p.after))}`"
                            for p in c.properties[:20])
        more = f"<br>… {len(c.properties) - 20} more" if len(c.properties) > 20 else ""
        lines.append(f"| {SYMBOL[c.kind]} | `{_md_cell(c.type)}` | `{_md_cell(c.name)}` | {props}{more} |")
    if len(d.changes) > MARKDOWN_MAX_RESOURCES:
        lines.append(f"| | | | … {len(d.changes) - MARKDOWN_MAX_RESOURCES} more resources (run `slmctl diff`) |")
    return "\n".join(lines) + "\n"


def _json(d: PlanDiff) -> str:
    doc = {"create": d.count("create"), "update": d.count("update"), "delete": d.count("delete"),
           "estimatedMonthlyUsd": {"before": d.usd_before, "after": d.usd_after},
           "changes": [{"kind": c.kind, "urn": c.urn, "type": c.type, "name": c.name,
                        "properties": [{"path": p.path, "before": p.before, "after": p.after}
                                       for p in c.properties]} for c in d.changes]}
    return json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n"


def format_diff(d: PlanDiff, fmt: DiffFormat) -> str:
    """Render a diff as text, markdown (PR comment) or json."""
    return {"text": _text, "markdown": _markdown, "json": _json}[fmt](d)
