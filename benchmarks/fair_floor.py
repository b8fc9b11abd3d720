"""The fair floor: replay a plan's exact resource tree under the same mock monitor, as a whole process.

``python benchmarks/fair_floor.py TREE.json [--imports]`` registers every resource of ``TREE.json``
(written by ``plan_bench.py --dump``: the recorded type tokens, names, parents, wire inputs, protect
flags and the alias specs the SDK sent) as plain ``CustomResource`` / ``ComponentResource`` /
``ProviderResource`` objects through ``slmctl.recorder.record`` (the same ``PlatformMocks`` and
``RecordingMonitor``), and nothing else: no settings, no components' logic, no provider SDK classes.
With ``--imports`` it first imports the provider SDK modules the real plan process had loaded, the way
the plan loads them (``components/_lean_sdk.py``: one module per class, not whole service packages),
which separates what the provider SDKs cost to import from what our program costs.
Existing-resource reads are not replayed (no shipped stack has one).
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pulumi

from slmctl.recorder import keep_recordings_frozen, record


def _depth(urn: str, parents: dict[str, str | None]) -> int:
    depth = 0
    while parents.get(urn):
        urn = parents[urn] or ""
        depth += 1
    return depth


def replay(tree: dict[str, Any]) -> None:
    """Register ``tree``'s resources, parents first."""
    parents = {r["urn"]: r["parent"] for r in tree["resources"]}
    made: dict[str, pulumi.Resource] = {}
    for r in sorted(tree["resources"], key=lambda r: _depth(r["urn"], parents)):
        aliases: list[Any] = [pulumi.Alias(**{k: v for k, v in (("name", n), ("type_", t)) if v})
                              for n, t in r["aliases"]]
        opts = pulumi.ResourceOptions(parent=made.get(r["parent"] or ""), protect=r["protect"],
                                      aliases=aliases or None)
        typ, name = r["type"], r["name"]
        if typ.startswith("pulumi:providers:"):
            made[r["urn"]] = pulumi.ProviderResource(typ.rsplit(":", 1)[-1], name, r["inputs"], opts)
        elif r["custom"]:
            made[r["urn"]] = pulumi.CustomResource(typ, name, r["inputs"], opts)
        else:
            made[r["urn"]] = pulumi.ComponentResource(typ, name, None, opts)


def main() -> None:
    """Replay the tree named on the command line."""
    tree = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    # As `slmctl` does (cli.main). Without it the floor paid a full collection after recording that the plan
    # does not (0.9 s of 6 at 2,542 resources), which flattered the plan / floor ratio.
    keep_recordings_frozen()
    if "--imports" in sys.argv[2:]:
        import components  # noqa: F401 (its __init__ makes azure-native's service packages lean, as in the plan)

        for module in tree["modules"]:
            importlib.import_module(module)
    recording = record(lambda: replay(tree), stack=tree["stack"])
    if len(recording.registrations) != len(tree["resources"]):
        msg = f"floor registered {len(recording.registrations)} resources, the plan {len(tree['resources'])}"
        raise SystemExit(msg)


if __name__ == "__main__":
    main()
