"""Pure engine adapters: engine + model spec + hardware -> ``ContainerSpec`` (no Pulumi here)."""

from __future__ import annotations

from typing import cast

from components.domain import ENGINES, AksDeployment, ModelSpec
from components.domain.catalogue import VmSku
from components.engines.spec import Adapter, AdapterInputs, ContainerSpec, RegistryFill

__all__ = ["ContainerSpec", "container_for"]


def container_for(
    name: str,
    dep: AksDeployment,
    model: ModelSpec,
    sku: VmSku | None,
    *,
    api_key_secret: str,
    onnx_server_image: str | None = None,
    digest_pinned_default: bool = False,
    registry: RegistryFill | None = None,
) -> ContainerSpec:
    """Dispatch to the registered adapter of ``dep.target``; anything else (e.g. Foundry) is not a workload.

    ``registry``: the weights come from the ModelRegistry through the fill init step.
    """
    target = getattr(dep, "target", type(dep).__name__)
    engine = ENGINES.get(target)
    if engine is None or engine.adapter is None or "cluster" not in engine.runs_on:
        msg = (f"deployment {name!r}: target {target!r} is not a cluster workload (Foundry models are managed "
               "deployments; Foundry Local is a desktop runtime with no container, seed defect D8; a new engine "
               "needs a registration with an adapter in components/domain/engines.py)")
        raise TypeError(msg)
    adapter = cast("Adapter", engine.resolve_adapter())
    inputs = AdapterInputs(api_key_secret=api_key_secret, built_image=onnx_server_image,
                           digest_pinned_default=digest_pinned_default, registry=registry)
    return adapter(name, dep, model, sku, inputs)
