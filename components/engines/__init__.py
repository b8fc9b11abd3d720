"""Pure engine adapters: engine + model spec + hardware -> ``ContainerSpec`` (no Pulumi here)."""

from __future__ import annotations

from components.domain import AksDeployment, ModelSpec, OllamaDeployment, OnnxGenAIDeployment, VllmDeployment
from components.domain.catalogue import VmSku
from components.engines.ollama import ollama_container
from components.engines.onnx_genai import onnx_genai_container
from components.engines.spec import ContainerSpec, RegistryFill
from components.engines.vllm import vllm_container

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
    """Dispatch to the adapter for ``dep.target``; anything else (e.g. Foundry) is not a workload.

    ``registry``: the weights come from the ModelRegistry through the fill init step.
    """
    match dep:
        case VllmDeployment():
            return vllm_container(name, dep, model, sku, api_key_secret=api_key_secret,
                                  digest_pinned_default=digest_pinned_default, registry=registry)
        case OllamaDeployment():
            return ollama_container(name, dep, model, sku, registry=registry)
        case OnnxGenAIDeployment():
            return onnx_genai_container(name, dep, model, sku, image=onnx_server_image,
                                        api_key_secret=api_key_secret, registry=registry)
        case _:
            msg = (f"deployment {name!r}: target {getattr(dep, 'target', type(dep).__name__)!r} is not a "
                   "cluster workload (Foundry models are managed deployments; Foundry Local is a desktop "
                   "runtime with no container, seed defect D8)")
            raise TypeError(msg)
