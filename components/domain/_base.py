"""The base of every domain type: a frozen, strict, closed pydantic model.

Pydantic (not dataclasses) because these types are validated where a user writes them (a stack file, a
program's own arguments) and their JSON Schema is the editor schema of the stack file: a pattern or a bound
belongs to the type, not to one loader.
"""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field

CONFIG_NAMESPACE: Final = "slm-platform"
"""The Pulumi project's config namespace: bare secret config keys (alert receivers, the edge kubeconfigs)
live in it."""

GitRevision = Annotated[str, Field(pattern=r"^[0-9a-f]{40}$")]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class FrozenModel(BaseModel):
    """Frozen, strict and closed: unknown keys are refused, values never change after validation."""

    # strict: a number is only a number (``max_count: "1"`` is refused, as the JSON Schema refuses it).
    # YAML lists become tuples and ISO strings dates (the engine's JSON config), so tuple and date
    # fields say ``Field(strict=False)``.
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, strict=True)

