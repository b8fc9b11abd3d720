"""Node pools: what a workload runs on."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from components.domain._base import FrozenModel as _Model
from components.domain.catalogue import VM_SKUS, VmSize

PoolName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9]{0,11}$")]
"""AKS Linux node pool names: lowercase alphanumerics, at most 12 characters."""


class NodePool(_Model):
    """An AKS user pool (GPU or CPU, decided by ``vm_size``)."""

    vm_size: VmSize
    min_count: int = Field(default=0, ge=0)
    max_count: int = Field(default=1, ge=1, le=100)
    spot: bool = False
    """Default: regular capacity. Spot pools are evicted (Delete) when Azure needs the capacity."""
    zones: tuple[Literal["1", "2", "3"], ...] = Field(default=(), strict=False)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.min_count > self.max_count:
            msg = f"min_count={self.min_count} is greater than max_count={self.max_count}"
            raise ValueError(msg)
        return self

    @property
    def is_gpu(self) -> bool:
        """Whether this pool has GPUs."""
        return VM_SKUS[self.vm_size].is_gpu


class SystemPool(_Model):
    """The inline system pool (tainted ``CriticalAddonsOnly``)."""

    vm_size: VmSize = "Standard_D4ds_v5"
    count: int = Field(default=2, ge=1, le=10)
    zones: tuple[Literal["1", "2", "3"], ...] = Field(default=(), strict=False)

