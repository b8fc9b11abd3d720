"""Memory-fit: will a model at a given context and concurrency fit the memory it is given?

One estimate, used three ways: the settings refuse an impossible deployment at load time, the vLLM
adapter derives ``--max-model-len`` / ``--max-num-seqs`` from it, and the policy pack blocks a
workload whose flags could not start. The estimate is deliberately simple and conservative:

    weights  = parameters x bytes-per-parameter(quantization)
    kv/token = 2 (K and V) x layers x kv_heads x head_dim x bytes(kv dtype)
    usable   = memory x utilization - weights - runtime overhead
    seqs     = usable // (kv/token x context)

Sliding-window attention (Gemma 3) and prefix-cache sharing would let more fit; we ignore both so
a "fits" answer is one vLLM's own start-up check (it fails when ``max_model_len`` does not fit the
KV cache) will agree with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

GIB: Final = 1024**3

BYTES_PER_PARAMETER: Final[dict[str, float]] = {
    "bf16": 2.0,
    "fp16": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "awq-int4": 0.56,
    "gptq-int4": 0.56,
    "int4": 0.56,
    "q8_0": 1.07,
    "q6_k": 0.82,
    "q5_k_m": 0.71,
    "q4_k_m": 0.61,
    "q4_0": 0.57,
}
"""Bytes per weight including quantization scales (GGUF figures are llama.cpp's bits-per-weight / 8)."""

GPU_RUNTIME_OVERHEAD_GIB: Final = 1.5
"""CUDA context, CUDA graphs and activation workspace that vLLM reserves before the KV cache."""
CPU_RUNTIME_OVERHEAD_GIB: Final = 0.75
"""Process, tokenizer and compute buffers of a CPU engine (Ollama / llama.cpp / ONNX Runtime)."""


@dataclass(frozen=True, kw_only=True)
class ModelShape:
    """The numbers of a model that decide its memory use."""

    parameters_billion: float
    layers: int
    kv_heads: int
    head_dim: int
    quantization: str = "bf16"

    @property
    def weights_gib(self) -> float:
        """Memory taken by the weights alone."""
        return self.parameters_billion * 1e9 * BYTES_PER_PARAMETER[self.quantization] / GIB

    def kv_bytes_per_token(self, kv_cache_bytes: float = 2.0) -> float:
        """Bytes of KV cache one token of context holds (K and V, every layer)."""
        return 2 * self.layers * self.kv_heads * self.head_dim * kv_cache_bytes


@dataclass(frozen=True, kw_only=True)
class Fit:
    """The result of a memory-fit estimate."""

    memory_gib: float
    weights_gib: float
    kv_per_sequence_gib: float
    usable_kv_gib: float
    max_sequences: int
    max_context_tokens_one_sequence: int

    @property
    def fits(self) -> bool:
        """True when at least one sequence of the requested context fits."""
        return self.max_sequences >= 1


def estimate(
    shape: ModelShape,
    *,
    memory_gib: float,
    context_tokens: int,
    utilization: float = 0.9,
    kv_cache_bytes: float = 2.0,
    overhead_gib: float = GPU_RUNTIME_OVERHEAD_GIB,
) -> Fit:
    """Estimate how many sequences of ``context_tokens`` fit in ``memory_gib`` x ``utilization``."""
    kv_token = shape.kv_bytes_per_token(kv_cache_bytes)
    usable = memory_gib * utilization - shape.weights_gib - overhead_gib
    kv_seq_gib = kv_token * context_tokens / GIB
    seqs = math.floor(usable / kv_seq_gib) if usable > 0 else 0
    max_ctx = math.floor(usable * GIB / kv_token) if usable > 0 else 0
    return Fit(
        memory_gib=memory_gib,
        weights_gib=round(shape.weights_gib, 2),
        kv_per_sequence_gib=round(kv_seq_gib, 3),
        usable_kv_gib=round(max(usable, 0.0), 2),
        max_sequences=max(seqs, 0),
        max_context_tokens_one_sequence=max(max_ctx, 0),
    )


# The workload carries the numbers the estimate needs, so the policy pack (which sees only the
# Kubernetes object on the wire) can run the same estimate the settings ran. One rule, two enforcers.
ANNOTATION_PREFIX: Final = "slm.io/"
SHAPE_ANNOTATIONS: Final = ("model-parameters-billion", "model-layers", "model-kv-heads", "model-head-dim",
                            "model-quantization", "gpu-memory-gib")


def shape_annotations(shape: ModelShape, *, gpu_memory_gib: float) -> dict[str, str]:
    """Annotations that let ``shape_from_annotations`` rebuild ``shape`` and the GPU's memory."""
    values = (shape.parameters_billion, shape.layers, shape.kv_heads, shape.head_dim, shape.quantization,
              gpu_memory_gib)
    return {f"{ANNOTATION_PREFIX}{key}": str(value) for key, value in zip(SHAPE_ANNOTATIONS, values, strict=True)}


def shape_from_annotations(annotations: dict[str, object]) -> tuple[ModelShape, float] | None:
    """The (shape, GPU memory GiB) a workload declares, or None when it declares none or is malformed."""
    raw = [annotations.get(f"{ANNOTATION_PREFIX}{key}") for key in SHAPE_ANNOTATIONS]
    if any(v is None for v in raw):
        return None
    params, layers, kv_heads, head_dim, quant, memory = (str(v) for v in raw)
    try:
        shape = ModelShape(parameters_billion=float(params), layers=int(layers), kv_heads=int(kv_heads),
                           head_dim=int(head_dim), quantization=quant)
        sizes = (shape.parameters_billion, shape.layers, shape.kv_heads, shape.head_dim, float(memory))
        if not all(math.isfinite(v) and v > 0 for v in sizes):
            return None  # a zero head count would divide by zero; a negative size means nothing
        return (shape, float(memory)) if quant in BYTES_PER_PARAMETER else None
    except ValueError:
        return None


def declares_shape(annotations: dict[str, object]) -> bool:
    """True when any ``slm.io/model-*`` shape annotation is present (then all must parse)."""
    return any(f"{ANNOTATION_PREFIX}{key}" in annotations for key in SHAPE_ANNOTATIONS)
