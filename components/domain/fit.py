"""Memory-fit: the bounded vLLM flags derived from a model and a GPU.

The estimate itself (``estimate``, ``ModelShape``) is the pack's ``policies/rules/memory_fit.py``, so the
settings, the engine adapters and the policy that blocks a workload which could not start agree.
"""

from __future__ import annotations

from typing import Final

from components.domain.catalogue import VM_SKUS
from components.domain.deployments import VllmDeployment
from components.domain.models import ModelSpec
from policies.rules.memory_fit import (
    BYTES_PER_PARAMETER,
    CPU_RUNTIME_OVERHEAD_GIB,
    ModelShape,
    estimate,
    shape_annotations,
)

__all__ = [
    "BYTES_PER_PARAMETER",
    "CPU_RUNTIME_OVERHEAD_GIB",
    "DEFAULT_CONTEXT_TOKENS",
    "MAX_NUM_SEQS_CAP",
    "MIN_CONTEXT_TOKENS",
    "NODE_ALLOCATABLE_FRACTION",
    "ModelShape",
    "estimate",
    "serving_fit_problem",
    "shape_annotations",
    "vllm_fit_problem",
    "vllm_max_model_len",
    "vllm_max_num_seqs",
]

DEFAULT_CONTEXT_TOKENS: Final = 16384
MIN_CONTEXT_TOKENS: Final = 512
"""The smallest context any deployment may be given (``max_model_len_tokens``, ``context_tokens``)."""
MAX_NUM_SEQS_CAP: Final = 64
NODE_ALLOCATABLE_FRACTION: Final = 0.8
"""Share of a node's memory a pod can be given after kubelet/system reservations (AKS reserves more)."""

def vllm_max_model_len(dep: VllmDeployment, model: ModelSpec) -> int:
    """The bounded ``--max-model-len`` a vLLM deployment is started with."""
    return dep.max_model_len_tokens or min(model.max_context_tokens, DEFAULT_CONTEXT_TOKENS)


def vllm_max_num_seqs(dep: VllmDeployment, model: ModelSpec, gpu_memory_gib: float) -> int:
    """``--max-num-seqs``: the explicit value, else what the memory-fit estimate allows (cap 64)."""
    if dep.max_num_seqs is not None:
        return dep.max_num_seqs
    assert model.artifacts.safetensors is not None  # noqa: S101 (settings validated it)
    fit = estimate(model.shape(model.artifacts.safetensors.quantization), memory_gib=gpu_memory_gib,
                   context_tokens=vllm_max_model_len(dep, model),
                   utilization=dep.gpu_memory_utilization)
    return max(1, min(MAX_NUM_SEQS_CAP, fit.max_sequences))


def vllm_fit_problem(path: str, dep: VllmDeployment, model: ModelSpec, vm_size: str) -> str | None:
    """Why a vLLM deployment cannot start on one GPU of ``vm_size`` (with the context or GPU that fits), or None.

    ``path`` prefixes the message (the stack-file path of the deployment)."""
    sku = VM_SKUS[vm_size]
    assert model.artifacts.safetensors is not None  # noqa: S101 (checked by the caller)
    quant = model.artifacts.safetensors.quantization
    ctx = vllm_max_model_len(dep, model)
    if ctx > model.max_context_tokens:
        return (f"{path}.max_model_len_tokens: {ctx} exceeds the model's "
                f"{model.max_context_tokens}-token context; lower it")
    if quant not in BYTES_PER_PARAMETER:
        return None
    fit = estimate(model.shape(quant), memory_gib=sku.gpu_memory_gib, context_tokens=ctx,
                   utilization=dep.gpu_memory_utilization)
    if not fit.fits:
        fitting = sorted(
            (s.name for s in VM_SKUS.values() if s.is_gpu and estimate(
                model.shape(quant), memory_gib=s.gpu_memory_gib, context_tokens=ctx,
                utilization=dep.gpu_memory_utilization).fits),
            key=lambda n: VM_SKUS[n].usd_per_hour,
        )
        gpus = (f"use a GPU that fits: {', '.join(fitting[:3])}" if fitting
                else "quantize the model (no listed GPU fits it)")
        most = fit.max_context_tokens_one_sequence
        fix = (f"lower it to at most {most}, or {gpus}" if most >= MIN_CONTEXT_TOKENS else
               f"the weights alone leave no room for a {MIN_CONTEXT_TOKENS}-token KV cache, so no context "
               f"length fits: {gpus}, or a quantized artifact")
        return (f"{path}: {dep.model} ({quant}, {fit.weights_gib} GiB) does not fit one "
                f"{sku.gpu_model} ({sku.gpu_memory_gib} GiB) of pool {dep.pool!r} at "
                f"max_model_len_tokens={ctx}; {fix}")
    if dep.max_num_seqs is not None and dep.max_num_seqs > fit.max_sequences:
        return (f"{path}.max_num_seqs: {dep.max_num_seqs} sequences of {ctx} tokens need "
                f"{dep.max_num_seqs * fit.kv_per_sequence_gib:.1f} GiB of KV cache; "
                f"{sku.gpu_model} leaves {fit.usable_kv_gib} GiB, so use at most {fit.max_sequences}")
    return None


def serving_fit_problem(path: str, model_id: str, model: ModelSpec, *, quantization: str, context_tokens: int,
                        vm_size: str) -> str | None:
    """Why a non-vLLM engine's model does not fit ``vm_size`` (its GPU, else the node's allocatable memory)."""
    sku = VM_SKUS[vm_size]
    memory = sku.gpu_memory_gib if sku.is_gpu else sku.memory_gib * NODE_ALLOCATABLE_FRACTION
    fit = estimate(model.shape(quantization), memory_gib=memory, context_tokens=context_tokens,
                   utilization=1.0, overhead_gib=CPU_RUNTIME_OVERHEAD_GIB)
    if fit.fits:
        return None
    return (f"{path}: {model_id} ({quantization}) needs {fit.weights_gib} GiB of weights"
            f" + {fit.kv_per_sequence_gib} GiB KV cache at {context_tokens} tokens, more than "
            f"the {memory:.0f} GiB {vm_size} offers; lower context_tokens or "
            "choose a larger vm_size")
