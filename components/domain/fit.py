"""Memory-fit: the bounded vLLM flags derived from a model and a GPU.

The estimate itself (``estimate``, ``ModelShape``) is the pack's ``policies/rules/memory_fit.py``, so the
settings, the engine adapters and the policy that blocks a workload which could not start agree.
"""

from __future__ import annotations

from typing import Final

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
    "BYTES_PER_PARAMETER", "CPU_RUNTIME_OVERHEAD_GIB", "DEFAULT_CONTEXT_TOKENS", "MAX_NUM_SEQS_CAP",
    "MIN_CONTEXT_TOKENS", "NODE_ALLOCATABLE_FRACTION", "ModelShape", "estimate", "shape_annotations",
    "vllm_max_model_len", "vllm_max_num_seqs",
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
