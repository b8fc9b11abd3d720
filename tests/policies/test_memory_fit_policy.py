"""slm-serving-memory-fit runs the settings' memory-fit estimate on what a workload declares."""

from __future__ import annotations

from typing import Any

from policies.rules import serving
from policies.rules.memory_fit import ModelShape, estimate, shape_annotations, shape_from_annotations

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
PHI = ModelShape(parameters_billion=3.84, layers=32, kv_heads=8, head_dim=128, quantization="bf16")


def deployment(max_model_len: str, *, gpu_gib: float = 16, extra_args: tuple[str, ...] = (),
               annotated: bool = True) -> dict[str, Any]:
    return {"metadata": {"annotations": shape_annotations(PHI, gpu_memory_gib=gpu_gib) if annotated else {}},
            "spec": {"template": {"spec": {"containers": [{
                "name": "vllm", "image": "vllm/vllm-openai:v0.11.0",
                "args": ["--model", "microsoft/Phi-4-mini-instruct", "--max-model-len", max_model_len,
                         *extra_args]}]}}}}


def test_annotations_round_trip_to_the_same_estimate() -> None:
    declared = shape_from_annotations(dict(shape_annotations(PHI, gpu_memory_gib=24)))
    assert declared == (PHI, 24.0)
    assert estimate(declared[0], memory_gib=24, context_tokens=16384) == estimate(PHI, memory_gib=24,
                                                                                  context_tokens=16384)


def test_context_that_fits_passes_and_one_that_cannot_start_is_refused() -> None:
    assert serving.memory_fit(DEPLOYMENT, deployment("16384"), {}) == []
    (message,) = serving.memory_fit(DEPLOYMENT, deployment("131072"), {})
    assert message.startswith("spec.template.spec.containers[0].args: found --max-model-len 131072")
    assert "Lower it to at most 47083" in message


def test_fp8_kv_cache_and_higher_utilization_are_taken_into_account() -> None:
    # 60k tokens do not fit a 16 GiB GPU with a bf16 KV cache, but do with an fp8 one.
    assert serving.memory_fit(DEPLOYMENT, deployment("60000"), {}) != []
    assert serving.memory_fit(DEPLOYMENT, deployment("60000", extra_args=("--kv-cache-dtype", "fp8")), {}) == []


def test_workloads_that_declare_no_shape_are_not_judged() -> None:
    assert serving.memory_fit(DEPLOYMENT, deployment("131072", annotated=False), {}) == []
    assert shape_from_annotations({"slm.io/model-layers": "x"}) is None
