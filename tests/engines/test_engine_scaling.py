"""KEDA scaling plans per engine (pure)."""

from __future__ import annotations

from components.domain import ModelSpec, OllamaDeployment, OnnxGenAIDeployment, VllmDeployment
from components.engines.ollama import ollama_container
from components.engines.onnx_genai import onnx_genai_container
from components.engines.scaling import scale_plan
from components.engines.vllm import vllm_container
from policies.rules.catalog import VM_SKUS
from tests.inference.builders import MODELS

PHI = ModelSpec.model_validate(MODELS["phi-4-mini"])
T4 = VM_SKUS["Standard_NC4as_T4_v3"]
CPU = VM_SKUS["Standard_D8ds_v5"]


def test_vllm_threshold_is_the_slo_backlog() -> None:
    spec = vllm_container("v", VllmDeployment(target="vllm", model="phi-4-mini"), PHI, T4, api_key_secret="s")
    plan = scale_plan(spec, min_replicas=2, max_replicas=4, queue_threshold=5)
    (trigger,) = plan.triggers
    assert trigger.metadata["threshold"] == "5"
    assert trigger.metadata["query"] == 'sum(vllm:num_requests_waiting{model_name="v"})'
    assert (plan.min_replicas, plan.max_replicas) == (2, 4)


def test_scale_to_zero_adds_a_working_hours_cron_trigger() -> None:
    spec = vllm_container("v", VllmDeployment(target="vllm", model="phi-4-mini"), PHI, T4, api_key_secret="s")
    plan = scale_plan(spec, min_replicas=0, max_replicas=1, queue_threshold=8)
    assert [t.type for t in plan.triggers] == ["prometheus", "cron"]
    assert plan.triggers[1].metadata["desiredReplicas"] == "1"


def test_onnx_scales_on_its_own_queue_gauge() -> None:
    spec = onnx_genai_container("x", OnnxGenAIDeployment(target="onnx-genai", model="phi-4-mini"), PHI, CPU,
                                image="img", api_key_secret="s")
    (trigger,) = scale_plan(spec, min_replicas=1, max_replicas=2, queue_threshold=3).triggers
    assert trigger.type == "prometheus"
    assert "onnxgenai_requests_waiting" in trigger.metadata["query"]


def test_ollama_without_metrics_scales_on_cpu_utilization() -> None:
    spec = ollama_container("o", OllamaDeployment(target="ollama", model="phi-4-mini"), PHI, CPU)
    (trigger,) = scale_plan(spec, min_replicas=1, max_replicas=2, queue_threshold=3).triggers
    assert trigger.type == "cpu"
    assert trigger.metric_type == "Utilization"
