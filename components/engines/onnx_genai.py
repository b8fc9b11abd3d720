"""ONNX Runtime GenAI behind this repo's server (``onnx_server/``): deployment + model -> ``ContainerSpec``.

There is no official OpenAI-compatible ONNX Runtime GenAI image, so the image is the one built from
``components/engines/onnx_server/`` (ModelRegistry pushes it and passes ``repo@sha256``). The
weights come, with a ``RegistryFill`` (staging and prod), from the ModelRegistry through the
``fill-model`` init container (only the variant's folder, every file verified against the registry
manifest) into a shared model volume; otherwise (dev's direct path) an init container downloads the
pinned revision's variant from Hugging Face (``download.py``) into an emptyDir. Never at image build. The server runs the real
generation loop (seed defect D9 decoded one forward pass's logits and never generated text).
"""

from __future__ import annotations

import math
from typing import Final

from components.domain import ModelSpec, OnnxGenAIDeployment
from components.domain.catalogue import VmSku
from components.domain.engines import ENGINES
from components.engines.spec import (
    AZURE_FILES_PREMIUM_MIN_GIB,
    CONTAINER_TMP,
    SHARED_MODEL_STORAGE_CLASS,
    AdapterInputs,
    ClaimVolume,
    ContainerSpec,
    HttpProbe,
    InitStep,
    RegistryFill,
    Resources,
    ScratchVolume,
    SecretEnv,
    gib_to_mib,
)

PORT: Final = ENGINES["onnx-genai"].ports["cluster"]
MODELS_PATH: Final = "/models"
SERVER_CONCURRENCY: Final = 1
"""Generations run one at a time per pod (a CPU is saturated by one); others wait in the queue that
``onnxgenai_requests_waiting`` reports and KEDA scales on."""
POD_SHARE_OF_NODE: Final = 0.6
MIN_WAITING: Final = 16
"""The server answers 503 + Retry-After beyond ``--max-waiting`` queued requests. The bound is kept
well above the KEDA threshold (``slo.queue_backlog_requests``) so the waiting gauge can reach it and
scale out before anyone is refused."""


def max_waiting(queue_backlog_requests: int) -> int:
    """``--max-waiting`` for a deployment whose KEDA trigger fires above ``queue_backlog_requests``."""
    return max(MIN_WAITING, 4 * queue_backlog_requests)


def onnx_genai_container(
    name: str,
    dep: OnnxGenAIDeployment,
    model: ModelSpec,
    sku: VmSku | None,
    *,
    image: str | None,
    api_key_secret: str,
    api_key_secret_key: str = "api-key",  # noqa: S107 (a key name inside the Secret, not a value)
    registry: RegistryFill | None = None,
) -> ContainerSpec:
    """The ONNX Runtime GenAI server container (with its fill or download init step) for ``name``."""
    artifact = model.artifacts.onnx
    if artifact is None:
        msg = f"deployment {name!r}: model has no onnx artifact; add artifacts.onnx"
        raise ValueError(msg)
    image_ref = dep.image or image
    if image_ref is None:
        msg = (f"deployment {name!r}: no ONNX server image; build components/engines/onnx_server (ModelRegistry "
               f"does) and pass onnx_server_image, or set deployments.{name}.image")
        raise ValueError(msg)
    gpu = sku is not None and sku.is_gpu
    variant = artifact.cuda_variant if gpu else artifact.cpu_variant
    if variant is None:
        field_name = "cuda_variant" if gpu else "cpu_variant"
        where = f"GPU pool ({sku.name})" if gpu and sku is not None else "CPU"
        msg = (f"deployment {name!r}: {where} serving needs models.{dep.model}.artifacts.onnx.{field_name} "
               "(the sub-folder with that build)")
        raise ValueError(msg)
    weights_gib = model.shape(artifact.quantization).weights_gib
    models_gib = math.ceil(weights_gib * 1.5 + 2)
    if sku is not None:
        cpu_m = max(1000, int(sku.vcpus * 1000 * POD_SHARE_OF_NODE))
        memory_gib = sku.memory_gib * POD_SHARE_OF_NODE
    else:
        cpu_m, memory_gib = 4000, 8.0
    common_env = {"HOME": CONTAINER_TMP, "HF_HOME": f"{CONTAINER_TMP}/hf", "HF_HUB_DISABLE_TELEMETRY": "1"}
    download = InitStep(
        name="download-model",
        image=image_ref,
        command=("python", "/app/download.py"),
        args=("--repo", artifact.repo, "--revision", artifact.revision, "--variant", variant,
              "--dest", MODELS_PATH),
        env=common_env,
        mounts=("models", "tmp"),
    )
    model_root = MODELS_PATH
    claims: tuple[ClaimVolume, ...] = ()
    if registry is not None:
        registry = RegistryFill(account_url=registry.account_url, container=registry.container,
                                model=registry.model, revision=registry.revision, image=registry.image,
                                include=(f"{variant.strip('/')}/*",))
        download = registry.step("models", MODELS_PATH)
        model_root = registry.local_path(MODELS_PATH)
        claims = (ClaimVolume(name="models", mount_path=MODELS_PATH, shared=True, storage_class=SHARED_MODEL_STORAGE_CLASS,
                              size_gib=max(AZURE_FILES_PREMIUM_MIN_GIB, models_gib)),)
    return ContainerSpec(
        engine="onnx-genai",
        image=image_ref,
        command=("python", "/app/server.py"),
        args=("--model-dir", f"{model_root}/{variant.strip('/')}", "--served-model-name", name,
              "--port", str(PORT), "--context-tokens", str(dep.context_tokens),
              "--max-concurrency", str(SERVER_CONCURRENCY),
              "--max-waiting", str(max_waiting(dep.slo.queue_backlog_requests))),
        env={**common_env, "HF_HUB_OFFLINE": "1"},
        secret_env=(SecretEnv(name="ENGINE_API_KEY", secret_name=api_key_secret, key=api_key_secret_key),),
        port=PORT,
        served_model_name=name,
        metrics_path="/metrics",
        startup_probe=HttpProbe(path="/health", period_seconds=10, timeout_seconds=5, failure_threshold=60),
        readiness_probe=HttpProbe(path="/health", period_seconds=5, timeout_seconds=3, failure_threshold=3),
        liveness_probe=HttpProbe(path="/health", period_seconds=20, timeout_seconds=10, failure_threshold=3),
        scratch_volumes=(
            *(() if claims else (ScratchVolume(name="models", mount_path=MODELS_PATH, size_limit_gib=models_gib),)),
            ScratchVolume(name="tmp", mount_path=CONTAINER_TMP, size_limit_gib=2),
        ),
        claim_volumes=claims,
        init_steps=(download,),
        resources=Resources(cpu_millicores=cpu_m, memory_mib=gib_to_mib(memory_gib),
                            ephemeral_storage_mib=gib_to_mib((0 if claims else models_gib) + 3),
                            gpus=1 if gpu else 0),
        needs_https_egress=False,
        queue_metric=f'sum(onnxgenai_requests_waiting{{model_name="{name}"}})',
    )


def adapter(name: str, dep: object, model: ModelSpec, sku: VmSku | None, inputs: AdapterInputs) -> ContainerSpec:
    """The registered cluster adapter of ``onnx-genai`` (``components.domain.engines.ENGINES``)."""
    if not isinstance(dep, OnnxGenAIDeployment):
        msg = f"deployment {name!r}: the onnx-genai adapter got a {type(dep).__name__}"
        raise TypeError(msg)
    return onnx_genai_container(name, dep, model, sku, image=inputs.built_image,
                                api_key_secret=inputs.api_key_secret, registry=inputs.registry)
