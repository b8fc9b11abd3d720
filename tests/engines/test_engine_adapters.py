"""Pure tests of the engine adapters: flags per model family and hardware, probes, volumes."""

from __future__ import annotations

import pytest

from components.domain import ModelSpec, OllamaDeployment, OnnxGenAIDeployment, VllmDeployment
from components.engines import container_for
from components.engines.ollama import VALID_SERVER_ENV, ollama_container, pull_script
from components.engines.onnx_genai import onnx_genai_container
from components.engines.spec import NON_ROOT_UID, image_is_digest_pinned
from components.engines.vllm import DEFAULT_IMAGE, PINNED_IMAGE, vllm_args, vllm_container
from policies.rules.catalog import VM_SKUS
from tests.engines.onnx_server_modules import load
from tests.inference.builders import MODELS, REVISION

T4 = VM_SKUS["Standard_NC4as_T4_v3"]
A100 = VM_SKUS["Standard_NC24ads_A100_v4"]
H100 = VM_SKUS["Standard_NC40ads_H100_v5"]
CPU = VM_SKUS["Standard_D8ds_v5"]


def model(name: str = "phi-4-mini", **changes: object) -> ModelSpec:
    return ModelSpec.model_validate({**MODELS[name], **changes})


def gemma() -> ModelSpec:
    return ModelSpec.model_validate({
        "family": "gemma3", "parameters_billion": 4.3, "layers": 34, "kv_heads": 4, "head_dim": 256,
        "max_context_tokens": 131072,
        "artifacts": {"safetensors": {"repo": "google/gemma-3-4b-it", "revision": REVISION}}})


def vllm(**changes: object) -> VllmDeployment:
    return VllmDeployment.model_validate({"target": "vllm", "model": "phi-4-mini", "pool": "gpu", **changes})


def flag(args: tuple[str, ...], name: str) -> str:
    return args[args.index(name) + 1]


class TestVllmFlags:
    def test_served_model_name_is_the_deployment_name(self) -> None:
        args = vllm_args("phi4", vllm(), model(), A100)
        assert flag(args, "--served-model-name") == "phi4"

    def test_model_is_the_repo_at_its_pinned_revision(self) -> None:
        args = vllm_args("phi4", vllm(), model(), A100)
        assert flag(args, "--model") == "microsoft/Phi-4-mini-instruct"
        assert flag(args, "--revision") == REVISION

    def test_context_and_concurrency_are_always_bounded(self) -> None:
        args = vllm_args("phi4", vllm(), model(), A100)
        assert flag(args, "--max-model-len") == "16384"
        assert 1 <= int(flag(args, "--max-num-seqs")) <= 64
        assert flag(args, "--max-num-batched-tokens") == "8192"
        assert flag(args, "--gpu-memory-utilization") == "0.9"
        assert "--enable-prefix-caching" in args

    def test_explicit_max_model_len_and_seqs_are_passed_through(self) -> None:
        args = vllm_args("phi4", vllm(max_model_len_tokens=8192, max_num_seqs=4), model(), A100)
        assert flag(args, "--max-model-len") == "8192"
        assert flag(args, "--max-num-seqs") == "4"

    @pytest.mark.parametrize(("family_model", "parser", "template"), [
        ("phi", "phi4_mini_json", "/vllm-workspace/examples/tool_chat_template_phi4_mini.jinja"),
        ("gemma", "pythonic", "/vllm-workspace/examples/tool_chat_template_gemma3_pythonic.jinja"),
        ("qwen", "hermes", None),
    ])
    def test_tool_calling_uses_the_family_parser_and_template(self, family_model: str, parser: str,
                                                             template: str | None) -> None:
        spec = {"phi": model(), "gemma": gemma(), "qwen": model("qwen3-8b")}[family_model]
        args = vllm_args("m", vllm(), spec, A100)
        assert "--enable-auto-tool-choice" in args
        assert flag(args, "--tool-call-parser") == parser
        if template is None:
            assert "--chat-template" not in args
        else:
            assert flag(args, "--chat-template") == template

    def test_qwen3_gets_the_qwen3_reasoning_parser_and_others_none(self) -> None:
        assert flag(vllm_args("q", vllm(), model("qwen3-8b"), A100), "--reasoning-parser") == "qwen3"
        assert "--reasoning-parser" not in vllm_args("p", vllm(), model(), A100)

    def test_tool_calling_off_emits_no_tool_flags(self) -> None:
        args = vllm_args("p", vllm(tool_calling_enabled=False), model(), A100)
        assert not {"--enable-auto-tool-choice", "--tool-call-parser", "--chat-template"} & set(args)

    def test_t4_serves_in_half_precision_and_a100_does_not(self) -> None:
        assert flag(vllm_args("p", vllm(), model(), T4), "--dtype") == "half"
        assert "--dtype" not in vllm_args("p", vllm(), model(), A100)

    def test_fp8_kv_cache_only_where_the_gpu_supports_it(self) -> None:
        assert flag(vllm_args("p", vllm(), model(), H100), "--kv-cache-dtype") == "fp8"
        assert "--kv-cache-dtype" not in vllm_args("p", vllm(), model(), A100)
        assert "--kv-cache-dtype" not in vllm_args("p", vllm(), model(), T4)


class TestVllmContainer:
    def test_dev_uses_the_tag_and_prod_the_digest_pinned_default(self) -> None:
        spec_dev = vllm_container("p", vllm(), model(), A100, api_key_secret="s")
        spec_prod = vllm_container("p", vllm(), model(), A100, api_key_secret="s", digest_pinned_default=True)
        assert spec_dev.image == DEFAULT_IMAGE
        assert spec_prod.image == PINNED_IMAGE
        assert image_is_digest_pinned(spec_prod.image)

    def test_deployment_image_overrides_the_default(self) -> None:
        spec = vllm_container("p", vllm(image="acr.io/vllm@sha256:" + "c" * 64), model(), A100, api_key_secret="s",
                              digest_pinned_default=True)
        assert spec.image == "acr.io/vllm@sha256:" + "c" * 64

    def test_dev_shm_is_memory_backed_and_bounded(self) -> None:
        spec = vllm_container("p", vllm(), model(), T4, api_key_secret="s")
        (shm,) = [v for v in spec.scratch_volumes if v.mount_path == "/dev/shm"]
        assert shm.in_memory
        assert 0 < shm.size_limit_gib * 1024 < spec.resources.memory_mib

    def test_home_and_caches_point_at_writable_volumes(self) -> None:
        spec = vllm_container("p", vllm(), model(), T4, api_key_secret="s")
        mounts = [v.mount_path for v in spec.scratch_volumes]
        for var in ("HOME", "HF_HOME", "XDG_CACHE_HOME", "TRITON_CACHE_DIR", "NUMBA_CACHE_DIR"):
            assert any(spec.env[var] == m or spec.env[var].startswith(m + "/") for m in mounts), var

    def test_weights_are_downloaded_at_start_so_hub_is_not_offline(self) -> None:
        spec = vllm_container("p", vllm(), model(), T4, api_key_secret="s")
        assert "HF_HUB_OFFLINE" not in spec.env
        assert spec.needs_https_egress

    def test_probes_use_health_with_a_long_startup_and_distinct_readiness_and_liveness(self) -> None:
        spec = vllm_container("p", vllm(), model(), T4, api_key_secret="s")
        assert {spec.startup_probe.path, spec.readiness_probe.path, spec.liveness_probe.path} == {"/health"}
        assert spec.startup_probe.budget_seconds >= 20 * 60
        assert spec.readiness_probe != spec.liveness_probe

    def test_one_gpu_requested_and_metrics_path_set(self) -> None:
        spec = vllm_container("p", vllm(), model(), T4, api_key_secret="s")
        assert spec.resources.gpus == 1
        assert spec.resources.as_quantities()["nvidia.com/gpu"] == "1"
        assert spec.metrics_path == "/metrics"
        assert spec.queue_metric == 'sum(vllm:num_requests_waiting{model_name="p"})'

    def test_runs_as_a_high_non_root_uid(self) -> None:
        spec = vllm_container("p", vllm(), model(), T4, api_key_secret="s")
        assert spec.run_as_user == NON_ROOT_UID
        assert spec.run_as_user >= 10000


class TestOllama:
    def dep(self, **changes: object) -> OllamaDeployment:
        return OllamaDeployment.model_validate({"target": "ollama", "model": "phi-4-mini", **changes})

    def test_model_is_pulled_into_the_claim_by_an_init_container(self) -> None:
        spec = ollama_container("o", self.dep(), model(), CPU)
        (step,) = spec.init_steps
        assert "ollama pull phi4-mini:3.8b-q4_K_M" in step.args[0]
        assert "models" in step.mounts
        (claim,) = spec.claim_volumes
        assert claim.mount_path == spec.env["OLLAMA_MODELS"] == "/models"

    def test_pinned_blob_digest_is_verified_after_the_pull(self) -> None:
        digest = "d" * 64
        assert f"sha256-{digest}" in pull_script("phi4-mini:3.8b-q4_K_M", digest)
        assert "sha256-" not in pull_script("phi4-mini:3.8b-q4_K_M", None)

    def test_env_carries_context_and_parallelism(self) -> None:
        spec = ollama_container("o", self.dep(context_tokens=4096, num_parallel=3), model(), CPU)
        assert spec.env["OLLAMA_CONTEXT_LENGTH"] == "4096"
        assert spec.env["OLLAMA_NUM_PARALLEL"] == "3"

    def test_ollama_listens_on_loopback_behind_its_api_key_gate(self) -> None:
        spec = ollama_container("o", self.dep(), model(), CPU, api_key_secret="engine-api-key")
        assert spec.env["OLLAMA_HOST"] == "127.0.0.1:11434"  # unreachable from outside the pod
        gate = spec.auth_proxy
        assert gate is not None
        assert spec.port == gate.port == 8080 != spec.engine_port == gate.upstream_port == 11434
        assert (gate.key.name, gate.key.secret_name, gate.key.key) == ("ENGINE_API_KEY", "engine-api-key", "api-key")
        assert "proxy_pass http://127.0.0.1:11434;" in gate.config_template
        assert {spec.startup_probe.path, spec.readiness_probe.path, spec.liveness_probe.path} == {gate.health_path}
        assert spec.gated
        assert not spec.supports_api_key

    def test_gpu_pool_requests_a_gpu_and_cpu_pool_none(self) -> None:
        assert ollama_container("o", self.dep(), model(), T4).resources.gpus == 1
        assert ollama_container("o", self.dep(), model(), CPU).resources.gpus == 0

    def test_model_without_gguf_is_rejected_with_the_fix(self) -> None:
        with pytest.raises(ValueError, match=r"add artifacts\.gguf\.ollama_tag"):
            ollama_container("o", self.dep(model="qwen3-8b"), model("qwen3-8b"), CPU)


class TestOnnxGenAI:
    def dep(self, **changes: object) -> OnnxGenAIDeployment:
        return OnnxGenAIDeployment.model_validate({"target": "onnx-genai", "model": "phi-4-mini", **changes})

    def test_cpu_pool_serves_the_cpu_variant_downloaded_at_start(self) -> None:
        spec = onnx_genai_container("x", self.dep(), model(), CPU, image="img@sha256:" + "e" * 64,
                                    api_key_secret="s")
        (step,) = spec.init_steps
        assert flag(step.args, "--variant") == "cpu_and_mobile/cpu-int4-rtn-block-32-acc-level-4"
        assert flag(step.args, "--revision") == REVISION
        assert flag(spec.args, "--model-dir") == "/models/cpu_and_mobile/cpu-int4-rtn-block-32-acc-level-4"
        assert spec.env["HF_HUB_OFFLINE"] == "1"
        assert spec.resources.gpus == 0

    def test_gpu_pool_serves_the_cuda_variant(self) -> None:
        spec = onnx_genai_container("x", self.dep(), model(), T4, image="img", api_key_secret="s")
        assert flag(spec.args, "--model-dir") == "/models/gpu/gpu-int4-rtn-block-32"
        assert spec.resources.gpus == 1

    def test_missing_image_names_both_fixes(self) -> None:
        with pytest.raises(ValueError, match=r"pass onnx_server_image, or set deployments\.x\.image"):
            onnx_genai_container("x", self.dep(), model(), CPU, image=None, api_key_secret="s")

    def test_missing_variant_names_the_field(self) -> None:
        spec = model(artifacts={"onnx": {"repo": "a/b", "revision": REVISION, "cpu_variant": "cpu"}})
        with pytest.raises(ValueError, match=r"artifacts\.onnx\.cuda_variant"):
            onnx_genai_container("x", self.dep(), spec, T4, image="img", api_key_secret="s")

    @pytest.mark.parametrize("threshold", [8, 40])
    def test_the_server_queue_can_grow_past_the_scaling_threshold(self, threshold: int) -> None:
        # KEDA scales on onnxgenai_requests_waiting > slo.queue_backlog_requests; a server that refuses
        # (503) before that many wait would never let the metric reach the threshold: no scale-out.
        dep = self.dep(slo={"queue_backlog_requests": threshold})
        spec = onnx_genai_container("x", dep, model(), CPU, image="img", api_key_secret="s")
        options = load("server").build_parser().parse_args(spec.args)
        assert options.max_waiting > threshold
        assert options.served_model_name == "x"

    def test_api_key_and_queue_metric(self) -> None:
        spec = onnx_genai_container("x", self.dep(), model(), CPU, image="img", api_key_secret="s")
        assert [s.name for s in spec.secret_env] == ["ENGINE_API_KEY"]
        assert spec.queue_metric == 'sum(onnxgenai_requests_waiting{model_name="x"})'


def test_dispatch_builds_the_adapter_for_each_target() -> None:
    engines = {
        container_for("a", vllm(), model(), T4, api_key_secret="s").engine,
        container_for("b", OllamaDeployment.model_validate({"target": "ollama", "model": "phi-4-mini"}),
                      model(), CPU, api_key_secret="s").engine,
        container_for("c", OnnxGenAIDeployment.model_validate({"target": "onnx-genai", "model": "phi-4-mini"}),
                      model(), CPU, api_key_secret="s", onnx_server_image="img").engine,
    }
    assert engines == {"vllm", "ollama", "onnx-genai"}


def test_ollama_env_is_a_subset_of_the_valid_server_variables() -> None:
    spec = ollama_container("o", OllamaDeployment.model_validate({"target": "ollama", "model": "phi-4-mini"}),
                            model(), T4)
    assert set(spec.env) - {"HOME"} <= VALID_SERVER_ENV
