"""Memory-fit is a domain rule: a program that never writes a stack file gets the same answer and the same fix."""

from __future__ import annotations

from components.domain import ModelSpec, OllamaDeployment, VllmDeployment
from components.domain.fit import serving_fit_problem, vllm_fit_problem
from tests.inference.builders import MODELS

QWEN = ModelSpec.model_validate(MODELS["qwen3-8b"])


def test_a_vllm_model_too_big_for_one_t4_names_gpus_that_fit() -> None:
    dep = VllmDeployment(target="vllm", model="qwen3-8b", pool="gput4", max_model_len_tokens=32768)
    problem = vllm_fit_problem("deployments.q", dep, QWEN, "Standard_NC4as_T4_v3")
    assert problem is not None
    assert problem.startswith("deployments.q: qwen3-8b (bf16, ")
    assert "does not fit one T4 (16 GiB) of pool 'gput4'" in problem
    assert "use a GPU that fits: Standard_NV36ads_A10_v5" in problem


def test_the_same_model_fits_an_a100() -> None:
    dep = VllmDeployment(target="vllm", model="qwen3-8b", pool="a100", max_model_len_tokens=32768)
    assert vllm_fit_problem("deployments.q", dep, QWEN, "Standard_NC24ads_A100_v4") is None


def test_a_cpu_engine_is_sized_against_the_nodes_allocatable_memory() -> None:
    dep = OllamaDeployment(target="ollama", model="qwen3-8b", pool="cpu", context_tokens=32768)
    small = serving_fit_problem("deployments.o", dep.model, QWEN, quantization="q4_k_m",
                                context_tokens=dep.context_tokens, vm_size="Standard_D2ds_v5")
    assert small is not None
    assert "more than the 6 GiB Standard_D2ds_v5 offers; lower context_tokens or choose a larger vm_size" in small
    assert serving_fit_problem("deployments.o", dep.model, QWEN, quantization="q4_k_m",
                               context_tokens=dep.context_tokens, vm_size="Standard_E16ds_v5") is None
