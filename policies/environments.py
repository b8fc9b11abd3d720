"""Which environment a stack is gated at: from the stack's NAME, never from what its file declares.

The engine knows only the stack name (``PULUMI_STACK``, ``organization/project/<name>``); CI runs
``pulumi preview --stack <name> --policy-pack-config policies/config/<name>.json``. The offline gate,
the pack under the engine and the stack loader all derive the environment here, the same way:

* ``policies/environments.json`` maps extra stack names to an environment (``perf`` -> ``staging``);
* a stack named like an environment (``local``, ``dev``, ``staging``, ``prod``) is that environment;
* any other name gets ``prod``: an unknown stack is gated at the strictest levels (fail closed).

``settings.tier`` must equal the stack's environment (``tier_problem``); a stack file therefore cannot
lower its own levels. The policy config is ``policies/config/<stack>.json`` when it exists, else
``policies/config/<environment>.json``. This module imports nothing heavy (the loader uses it).
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Final

POLICY_DIR: Final = Path(__file__).resolve().parent
CONFIG_DIR: Final = POLICY_DIR / "config"
MAPPING_FILE: Final = POLICY_DIR / "environments.json"
ENVIRONMENTS: Final = ("local", "dev", "staging", "prod")
STRICTEST: Final = "prod"
_STACK_NAME_RE: Final = re.compile(r"^[A-Za-z0-9_.-]+$")


@cache
def stack_mapping() -> dict[str, str]:
    """``policies/environments.json`` ``stacks``: stack name -> environment (validated)."""
    doc = json.loads(MAPPING_FILE.read_text(encoding="utf-8"))
    stacks = doc.get("stacks", {}) if isinstance(doc, dict) else {}
    out: dict[str, str] = {}
    for name, env in dict(stacks).items():
        if env not in ENVIRONMENTS:
            msg = f"{MAPPING_FILE}: stacks.{name}: {env!r} is not one of {', '.join(ENVIRONMENTS)}"
            raise ValueError(msg)
        out[str(name)] = str(env)
    return out


def short_stack_name(stack: str | None) -> str:
    """``organization/project/prod`` -> ``prod``."""
    return (stack or "").rsplit("/", 1)[-1]


def environment_of_stack(stack: str | None) -> str:
    """The environment ``stack`` is gated at (see the module docstring); unknown names get prod."""
    name = short_stack_name(stack)
    mapped = stack_mapping().get(name)
    if mapped is not None:
        return mapped
    return name if name in ENVIRONMENTS else STRICTEST


def is_declared(stack: str | None) -> bool:
    """True when the stack's environment comes from its name or the mapping (not the prod fallback)."""
    name = short_stack_name(stack)
    return name in ENVIRONMENTS or name in stack_mapping()


def config_path_for_stack(stack: str | None) -> Path:
    """``config/<stack>.json`` when it exists (what ``--policy-pack-config`` would get), else the environment's."""
    name = short_stack_name(stack)
    if _STACK_NAME_RE.match(name) and (CONFIG_DIR / f"{name}.json").is_file():
        return CONFIG_DIR / f"{name}.json"
    return CONFIG_DIR / f"{environment_of_stack(stack)}.json"


def tier_problem(stack: str | None, tier: str) -> str | None:
    """Why ``settings.tier`` may not be used for ``stack``, or None when it matches the stack's environment.

    A stack not named like an environment and not mapped is gated at prod levels whatever its tier, so
    its tier cannot lower anything and is accepted.
    """
    if not is_declared(stack):
        return None
    env = environment_of_stack(stack)
    if tier == env:
        return None
    return (f"settings.tier: found {tier!r} but stack {short_stack_name(stack)!r} is the {env!r} environment; "
            f"a stack file cannot choose its own policy levels. Set tier: {env}, or map the stack in "
            "policies/environments.json (reviewed by CODEOWNERS)")
