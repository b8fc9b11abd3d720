"""``slmctl plan``: what ``pulumi up`` would create, computed offline from the real program."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pulumi

from slmctl.loader import REPO_ROOT, LoadedStack
from slmctl.recorder import Recording, record, redact
from stacks.platform import PlatformSecrets, build, estimated_monthly_usd

BUILD_DIR: Final = REPO_ROOT / "build"


def record_stack(loaded: LoadedStack) -> Recording:
    """Run ``stacks.platform.build`` for a loaded stack under the mock monitor."""

    def program() -> None:
        config = pulumi.Config("slm-platform")
        outputs = build(loaded.settings, PlatformSecrets.from_config(config, loaded.settings))
        for key, value in outputs.items():
            pulumi.export(key, value)

    return record(program, stack=loaded.stack, config=loaded.config, secret_keys=loaded.secret_keys)


@dataclass(frozen=True)
class Plan:
    """A recorded stack in the shape of ``build/<stack>/plan.json``."""

    loaded: LoadedStack
    recording: Recording

    def document(self) -> dict[str, Any]:
        """The plan.json document: sorted, secrets redacted, integral floats as ints."""
        return {
            "stack": self.loaded.stack,
            "tier": self.loaded.settings.tier,
            "estimated_monthly_usd": estimated_monthly_usd(self.loaded.settings),
            "resources": [
                {
                    "urn": r.urn,
                    "type": r.type,
                    "name": r.name,
                    "parent": r.parent if r.parent and "pulumi:pulumi:Stack::" not in r.parent.split("$")[-1]
                    else None,
                    "custom": r.custom,
                    "protect": r.protect,
                    "inputs": redact(r.inputs),
                    "dependencies": r.dependencies,
                }
                for r in self.recording.registrations
            ],
            "outputs": redact(self.recording.outputs),
        }

    def to_json(self) -> str:
        """Deterministic JSON: same stack file in, same bytes out."""
        return json.dumps(self.document(), indent=2, sort_keys=True) + "\n"

    def write(self, build_dir: Path = BUILD_DIR) -> Path:
        """Write ``build/<stack>/plan.json`` and return its path."""
        out = build_dir / self.loaded.stack / "plan.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(self.to_json(), encoding="utf-8")
        return out

    def counts(self) -> Counter[str]:
        """Resources by type token (components included)."""
        return Counter(r.type for r in self.recording.registrations)


def make_plan(loaded: LoadedStack) -> Plan:
    """Record a loaded stack and wrap it as a plan."""
    return Plan(loaded=loaded, recording=record_stack(loaded))
