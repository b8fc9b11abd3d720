"""Plan every shipped stack at a git revision and at the working tree, and report what differs.

    .venv/bin/python scripts/compare_plans.py [REV] [--stack dev ...]

``REV`` (default ``main``) is checked out into a temporary git worktree and planned there with this
interpreter, the working tree is planned in place (both offline, ``slmctl plan --no-gate``). Resources are
matched by URN, or through one of the new resource's aliases to an old URN: a match through an alias is
what ``pulumi up`` updates in place instead of replacing. URNs are compared in the engine's form (the mock
monitor's ``pulumi:pulumi:Stack$`` type prefix removed). Printed per stack: resources only at REV (``pulumi
up`` would delete them), only now (create), moved through an alias, and matched ones whose type, inputs,
parent, dependencies or protect flag differ. Exit 0 when no resource would be deleted, created or changed
except the listed components (``--allow-new-type``, ``--allow-gone-type``), 1 otherwise, 2 on bad usage.

The InferenceCluster split (issue 16) compares as:

    scripts/compare_plans.py <rev before it> --allow-new-type slm:compute:ServingWorkloads \
        --allow-gone-type slm:compute:InferenceCluster
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
STACKS = ("local", "dev", "staging", "prod")
STACK_PREFIX = "pulumi:pulumi:Stack$"


def engine_urn(urn: str | None) -> str | None:
    """The URN as the engine writes it: the root stack's type is not part of a child's type chain."""
    return urn.replace(STACK_PREFIX, "") if urn else urn


def plan(checkout: Path, stack: str, out: Path) -> dict[str, Any]:
    """``slmctl plan`` of ``stack`` in ``checkout`` (its own code), as the plan.json document."""
    result = subprocess.run(
        [sys.executable, "-m", "slmctl", "plan", stack, "--no-gate", "--quiet", "--out", str(out)],
        cwd=checkout, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        msg = f"plan {stack} in {checkout} failed: {result.stderr.strip().splitlines()[-1:]}"
        raise RuntimeError(msg)
    return json.loads((out / "plan.json").read_text(encoding="utf-8"))


def moved(old: Sequence[Mapping[str, Any]], new: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """New URN -> the old URN it answers to (itself, or through an alias), for every matched resource."""
    old_urns = {engine_urn(r["urn"]) for r in old}
    out: dict[str, str] = {}
    for r in new:
        for candidate in (r["urn"], *r.get("aliases", ())):
            if engine_urn(candidate) in old_urns:
                out[str(engine_urn(r["urn"]))] = str(engine_urn(candidate))
                break
    return out


def compare(old_doc: Mapping[str, Any], new_doc: Mapping[str, Any],
            allow_new_types: Sequence[str] = (), allow_gone_types: Sequence[str] = ()) -> tuple[list[str], bool]:
    """Report lines, and whether the difference is only aliases plus the allowed new (or gone) components.

    A component resource has no cloud state: creating or deleting one changes nothing in Azure or a cluster."""
    old = {engine_urn(r["urn"]): r for r in old_doc["resources"]}
    mapping = moved(old_doc["resources"], new_doc["resources"])

    def as_old(urn: str | None) -> str | None:
        urn = engine_urn(urn)
        return mapping.get(urn, urn) if urn else urn

    lines: list[str] = []
    ok = True
    for r in new_doc["resources"]:
        urn = str(engine_urn(r["urn"]))
        if urn not in mapping:
            allowed = r["type"] in allow_new_types and not r["custom"]
            ok &= allowed
            lines.append(f"  + {urn}" + ("  (new component, allowed)" if allowed else ""))
            continue
        before = old[mapping[urn]]
        if mapping[urn] != urn:
            lines.append(f"  ~ {mapping[urn]}\n      -> {urn}  (alias: updated in place)")
        fields = {
            "type": (before["type"], r["type"]),
            "name": (before["name"], r["name"]),
            "custom": (before["custom"], r["custom"]),
            "protect": (before["protect"], r["protect"]),
            "inputs": (before["inputs"], r["inputs"]),
            "parent": (engine_urn(before["parent"]), as_old(r["parent"])),
            "dependencies": (sorted(map(str, map(engine_urn, before["dependencies"]))),
                             sorted(map(str, map(as_old, r["dependencies"])))),
        }
        for key, (was, now) in fields.items():
            if was != now and not (key == "parent" and _moved_parent(was, now, r, allow_new_types, new_doc)):
                ok = False
                lines.append(f"  ! {mapping[urn]}: {key} changed")
    for urn in sorted(set(old) - set(mapping.values())):
        allowed = old[urn]["type"] in allow_gone_types and not old[urn]["custom"]
        ok &= allowed
        lines.append(f"  - {urn}" + ("  (component no longer declared, allowed)" if allowed else ""))
    return lines, ok


def _moved_parent(was: str | None, now: str | None, resource: Mapping[str, Any], allow_new_types: Sequence[str],
                  new_doc: Mapping[str, Any]) -> bool:
    """A new parent is expected when the resource moved into an allowed new component through an alias."""
    del was, resource
    parents = {engine_urn(r["urn"]): r["type"] for r in new_doc["resources"]}
    return now is None or parents.get(now) in allow_new_types


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rev", nargs="?", default="main", help="git revision to compare against (default: main)")
    parser.add_argument("--stack", action="append", choices=STACKS, help="only these stacks (default: all)")
    parser.add_argument("--allow-new-type", action="append", default=[],
                        help="a component type that may be new (its children must still match through aliases)")
    parser.add_argument("--allow-gone-type", action="append", default=[],
                        help="a component type that may no longer be declared")
    args = parser.parse_args(argv)
    all_ok = True
    with tempfile.TemporaryDirectory(prefix="compare-plans-") as tmp:
        base = Path(tmp) / "base"
        added = subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "--quiet", str(base), args.rev],
                               capture_output=True, text=True, check=False)
        if added.returncode != 0:
            sys.stderr.write(f"rev: {args.rev!r} cannot be checked out: {added.stderr.strip()}\n")
            return 2
        try:
            for stack in args.stack or STACKS:
                old_doc = plan(base, stack, Path(tmp) / "old" / stack)
                new_doc = plan(REPO, stack, Path(tmp) / "new" / stack)
                lines, ok = compare(old_doc, new_doc, args.allow_new_type, args.allow_gone_type)
                all_ok &= ok
                sys.stdout.write(f"{stack}: {'same resources and inputs' if ok else 'DIFFERS'}"
                                 + (f" ({len(lines)} line(s))" if lines else "") + "\n")
                sys.stdout.writelines(f"{line}\n" for line in lines)
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(base)],
                           capture_output=True, check=False)
    return 0 if all_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
