"""VM sizes, GPU memory, prices and model-family serving facts the domain reasons with.

One source of truth: the tables live in ``policies/rules/catalog.py``, which the CrossGuard pack owns
because the pack must judge a plan with the same numbers and be publishable on its own (it never imports
``components``). Components and stacks read them from here, never from the pack directly.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, WithJsonSchema

from policies.rules.catalog import (
    FAMILY_SERVING,
    HOURS_PER_MONTH,
    SPOT_PRICE_FACTOR,
    VALID_TOOL_CALL_PARSERS,
    VM_SKUS,
    FamilyServing,
    GpuModel,
    ModelFamily,
    VmSku,
    monthly_usd,
)

__all__ = [
    "FAMILY_SERVING", "HOURS_PER_MONTH", "SPOT_PRICE_FACTOR", "VALID_TOOL_CALL_PARSERS", "VM_SKUS",
    "FamilyServing", "GpuModel", "ModelFamily", "VmSize", "VmSku", "monthly_usd",
]


def _known_vm_size(value: str) -> str:
    if value not in VM_SKUS:
        msg = (f"{value!r} is not a VM size this framework knows (prices, GPU memory); use one of: "
               f"{', '.join(VM_SKUS)}; or add it to policies/rules/catalog.py")
        raise ValueError(msg)
    return value


VmSize = Annotated[str, AfterValidator(_known_vm_size), WithJsonSchema({"type": "string", "enum": list(VM_SKUS)})]
"""An Azure VM size from ``policies.rules.catalog.VM_SKUS`` (the table is the allow-list)."""
