"""Physical Azure names that fail loudly instead of being truncated (STYLE P8).

Azure enforces a length and a character set per resource type, and several names are global (a
storage account, a registry, a vault and a Foundry custom subdomain become DNS names). Truncating a
name that is too long can make two environments collide, so ``azure_name`` raises instead and says
which part to shorten. Add a kind to ``AZURE_NAME_RULES`` when a component needs one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, kw_only=True)
class NameRule:
    """What Azure accepts as the name of one resource type."""

    min_length: int
    max_length: int
    pattern: str
    """A regular expression the whole name must match (``re.fullmatch``)."""
    description: str
    """The rule in words, for the error message."""
    globally_unique: bool = False
    """Whether the name becomes a public DNS label (unique across all of Azure)."""


AZURE_NAME_RULES: Final[Mapping[str, NameRule]] = {
    "storage_account": NameRule(
        min_length=3, max_length=24, pattern=r"[a-z0-9]+",
        description="lowercase letters and digits only", globally_unique=True,
    ),
    "container_registry": NameRule(
        min_length=5, max_length=50, pattern=r"[a-z0-9]+",
        description="letters and digits only (kept lowercase: it is the login server's DNS label)",
        globally_unique=True,
    ),
    "key_vault": NameRule(
        min_length=3, max_length=24, pattern=r"[a-z](?!.*--)[a-z0-9-]*[a-z0-9]",
        description="letters, digits and hyphens; starts with a letter, ends with a letter or digit, "
                    "no consecutive hyphens",
        globally_unique=True,
    ),
    "cognitive_services": NameRule(
        min_length=2, max_length=64, pattern=r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?",
        description="letters, digits and hyphens; starts and ends with a letter or digit "
                    "(it is also the custom subdomain)",
        globally_unique=True,
    ),
    "blob_container": NameRule(
        min_length=3, max_length=63, pattern=r"[a-z0-9](?!.*--)[a-z0-9-]*[a-z0-9]",
        description="lowercase letters, digits and hyphens; starts and ends with a letter or digit, "
                    "no consecutive hyphens",
    ),
}
"""Azure naming rules by kind (learn.microsoft.com "Naming rules and restrictions for Azure resources")."""


def azure_name(kind: str, *parts: str, separator: str = "") -> str:
    """Build the physical name of a ``kind`` resource from ``parts``, or raise ``ValueError``.

    The parts are lowercased and joined with ``separator``. Nothing is truncated or rewritten
    beyond that: a name that breaks the rule is an error naming the kind, the candidate, the rule
    and the fix.

    Args:
        kind: a key of ``AZURE_NAME_RULES``, e.g. ``"storage_account"``.
        *parts: the pieces of the name, e.g. the environment's ``name_prefix`` and a suffix.
        separator: put between the parts. Default: nothing.
    """
    if kind not in AZURE_NAME_RULES:
        msg = f"unknown Azure name kind {kind!r}; use one of: {', '.join(sorted(AZURE_NAME_RULES))}"
        raise ValueError(msg)
    rule = AZURE_NAME_RULES[kind]
    candidate = separator.join(parts).lower()
    if not rule.min_length <= len(candidate) <= rule.max_length:
        msg = (f"{kind} name {candidate!r} is {len(candidate)} characters; Azure allows "
               f"{rule.min_length}-{rule.max_length}. Shorten a part of it (e.g. name_prefix) "
               "instead of relying on truncation, which can make two environments collide")
        raise ValueError(msg)
    if not re.fullmatch(rule.pattern, candidate):
        msg = (f"{kind} name {candidate!r} is not a valid Azure name: {rule.description}. "
               "Change the part that brings in the offending characters")
        raise ValueError(msg)
    return candidate
