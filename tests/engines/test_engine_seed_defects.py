"""One test per seed defect (SLM_FACTS D1-D13): the adapters cannot produce it."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Any

import pytest

from components.domain import (
    FoundryDeployment,
    ModelSpec,
    OllamaDeployment,
    OnnxGenAIDeployment,
    VllmDeployment,
)
from components.engines import container_for
from components.engines.ollama import VALID_SERVER_ENV, ollama_container
from components.engines.onnx_genai import onnx_genai_container
from components.engines.scaling import scale_plan
from components.engines.spec import ContainerSpec
from components.engines.vllm import vllm_args, vllm_container
from policies.rules.catalog import FAMILY_SERVING, VM_SKUS
from tests.engines.onnx_server_modules import load
from tests.engines.tiny_onnx_model import CHAIN, build_model
from tests.inference.builders import MODELS, REVISION

T4 = VM_SKUS["Standard_NC4as_T4_v3"]
A100 = VM_SKUS["Standard_NC24ads_A100_v4"]
CPU = VM_SKUS["Standard_D8ds_v5"]


def phi(**changes: Any) -> ModelSpec:
    return ModelSpec.model_validate({**MODELS["phi-4-mini"], **changes})


def vllm(**changes: Any) -> VllmDeployment:
    return VllmDeployment.model_validate({"target": "vllm", "model": "phi-4-mini", **changes})


def ollama() -> OllamaDeployment:
    return OllamaDeployment.model_validate({"target": "ollama", "model": "phi-4-mini"})


def all_specs() -> list[ContainerSpec]:
    onnx = OnnxGenAIDeployment.model_validate({"target": "onnx-genai", "model": "phi-4-mini"})
    return [vllm_container("v", vllm(), phi(), T4, api_key_secret="s"), ollama_container("o", ollama(), phi(), CPU),
            onnx_genai_container("x", onnx, phi(), CPU, image="img", api_key_secret="s")]


@pytest.mark.parametrize("family", sorted(FAMILY_SERVING))
def test_d1_auto_tool_choice_always_comes_with_a_parser(family: str) -> None:
    model = phi(family=family)
    args = vllm_args("m", vllm(), model, A100)
    assert "--enable-auto-tool-choice" in args
    assert args[args.index("--tool-call-parser") + 1] == FAMILY_SERVING[family].tool_call_parser


@pytest.mark.parametrize("quantization", ["bf16", "fp8", "awq-int4", "gptq-int4"])
def test_d2_quantization_is_never_passed_the_checkpoint_declares_it(quantization: str) -> None:
    model = phi(artifacts={"safetensors": {"repo": "org/repo", "revision": REVISION, "quantization": quantization}})
    assert "--quantization" not in vllm_args("m", vllm(), model, A100)


def test_d3_vllm_refuses_a_cpu_node() -> None:
    with pytest.raises(ValueError, match="CUDA-only"):
        vllm_args("m", vllm(), phi(), CPU)


def test_d4_ollama_has_no_metrics_path() -> None:
    assert ollama_container("o", ollama(), phi(), CPU).metrics_path is None


def test_d5_ollama_probes_are_http_on_real_routes() -> None:
    spec = ollama_container("o", ollama(), phi(), CPU)
    paths = {spec.startup_probe.path, spec.readiness_probe.path, spec.liveness_probe.path}
    # Through the API-key gate's open /healthz, which proxies to Ollama's real /api/version.
    assert spec.auth_proxy is not None
    assert paths == {spec.auth_proxy.health_path}
    assert "location = /healthz {\n            proxy_pass http://127.0.0.1:11434/api/version;" in \
        spec.auth_proxy.config_template


def test_d6_ollama_pulls_in_an_init_container_from_the_stock_image() -> None:
    spec = ollama_container("o", ollama(), phi(), CPU)
    (step,) = spec.init_steps
    assert "ollama serve &" in step.args[0]
    assert step.image == spec.image
    assert spec.image.startswith("ollama/ollama:")


def test_d7_ollama_sets_only_real_server_variables_with_valid_values() -> None:
    spec = ollama_container("o", ollama(), phi(), T4)
    env = {**spec.env, **spec.init_steps[0].env}
    assert set(env) - {"HOME"} <= VALID_SERVER_ENV
    assert not {"OLLAMA_NUM_GPU", "OLLAMA_NUM_THREAD", "OLLAMA_GPU_LAYERS", "OLLAMA_MAX_VRAM"} & set(env)
    assert not any(re.fullmatch(r"\d+[GMK]", v) for v in env.values())


def test_d8_foundry_targets_are_not_cluster_workloads() -> None:
    foundry = FoundryDeployment.model_validate({"target": "foundry", "model": "phi-4-mini"})
    with pytest.raises(TypeError, match="not a cluster workload"):
        container_for("f", foundry, phi(), CPU, api_key_secret="s")  # type: ignore[arg-type]


def test_d9_onnx_server_runs_the_generation_loop_token_by_token(tmp_path: Path) -> None:
    # The real runtime on the tiny model built by the test (D9 decoded one forward pass's logits).
    server = load("server")
    generator = server.OgGenerator(str(build_model(tmp_path)), context_tokens=64)
    generation = generator.start(server.GenerationRequest(messages=({"role": "user", "content": "hi"},)))
    assert list(generation.pieces) == list(CHAIN)
    assert generation.finish_reason == "stop"
    assert generation.completion_tokens == len(CHAIN) + 1  # the words, then EOS


def test_d9_onnx_server_stops_at_the_token_budget(tmp_path: Path) -> None:
    server = load("server")
    generator = server.OgGenerator(str(build_model(tmp_path)), context_tokens=64)
    generation = generator.start(server.GenerationRequest(prompt="x", max_tokens=2))
    assert "".join(generation.pieces) == "The quick"
    assert generation.finish_reason == "length"
    assert generation.completion_tokens == 2


def test_d10_no_secret_is_a_literal_environment_variable() -> None:
    secretish = re.compile(r"(KEY|TOKEN|PASSWORD|SECRET)", re.IGNORECASE)
    for spec in all_specs():
        literal = [*spec.env, *(k for step in spec.init_steps for k in step.env)]
        assert not [k for k in literal if secretish.search(k)], spec.engine
        assert "HF_TOKEN" not in literal
    assert [s.name for s in all_specs()[0].secret_env] == ["VLLM_API_KEY"]


def test_d11_vllm_scales_on_queue_depth_never_on_utilization() -> None:
    spec = vllm_container("v", vllm(), phi(), T4, api_key_secret="s")
    plan = scale_plan(spec, min_replicas=1, max_replicas=3, queue_threshold=8)
    assert [t.type for t in plan.triggers] == ["prometheus"]
    assert "vllm:num_requests_waiting" in plan.triggers[0].metadata["query"]
    no_queue = ContainerSpec(**{**spec.__dict__, "queue_metric": None})
    with pytest.raises(ValueError, match="D11"):
        scale_plan(no_queue, min_replicas=1, max_replicas=3, queue_threshold=8)


def test_d12_rendering_needs_no_network_nothing_is_pulled_at_plan_time(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        msg = "network used while rendering"
        raise AssertionError(msg)

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    specs = all_specs()
    assert all(spec.init_steps or spec.engine == "vllm" for spec in specs)


def test_d13_trust_remote_code_only_when_the_model_allows_it() -> None:
    assert "--trust-remote-code" not in vllm_args("m", vllm(), phi(), A100)
    assert "--trust-remote-code" in vllm_args("m", vllm(), phi(trust_remote_code=True), A100)
