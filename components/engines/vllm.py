"""vLLM's OpenAI-compatible server: deployment + model + GPU -> ``ContainerSpec`` (pure).

Image facts this adapter relies on (vLLM ``docker/Dockerfile``, stage ``vllm-openai``):
``WORKDIR /vllm-workspace``, ``COPY examples examples`` (so the tool chat templates live in
``/vllm-workspace/examples/<file>.jinja`` in v0.11.0; later releases moved some into
``examples/templates/`` — re-check the path when you bump the image), entrypoint
``python3 -m vllm.entrypoints.openai.api_server`` (our ``args`` are its flags), and no ``USER``
directive: the image runs as root. We run it as ``NON_ROOT_UID`` with HOME and every cache on
emptyDirs; ``USER`` is set because torch's inductor cache calls ``getpass.getuser()``, which fails
for a UID without a passwd entry.

Weights: with a ``RegistryFill`` (staging and prod always), the ``fill-model`` init container copies
the pinned revision from the ModelRegistry into a shared model volume, verifying every file against
the registry manifest, and vLLM serves that local path with ``HF_HUB_OFFLINE=1`` (no Hub, no token,
no internet egress). Without one (dev's direct path, ``local``), vLLM downloads the pinned
``--revision`` from Hugging Face into an emptyDir at start and the NetworkPolicy allows HTTPS out.
"""

from __future__ import annotations

import math
from typing import Final

from components.domain import ModelSpec, VllmDeployment, vllm_max_model_len, vllm_max_num_seqs
from components.domain.catalogue import FAMILY_SERVING, VmSku
from components.domain.engines import ENGINES
from components.engines.spec import (
    AZURE_FILES_PREMIUM_MIN_GIB,
    CONTAINER_TMP,
    SHARED_MODEL_STORAGE_CLASS,
    SHM_PATH,
    AdapterInputs,
    ClaimVolume,
    ContainerSpec,
    HttpProbe,
    RegistryFill,
    Resources,
    ScratchVolume,
    SecretEnv,
    gib_to_mib,
)

DEFAULT_IMAGE: Final = "vllm/vllm-openai:v0.11.0"
"""Dev default: tag only."""
PINNED_IMAGE: Final = (
    "vllm/vllm-openai:v0.11.0@sha256:014a95f21c9edf6abe0aea6b07353f96baa4ec291c427bb1176dc7c93a85845c"
)
"""Prod default. The digest is the one several public projects pin for v0.11.0; it was not pulled
here (no registry access). Verify with ``docker buildx imagetools inspect`` before relying on it."""
EXAMPLES_DIR: Final = "/vllm-workspace/examples"
PORT: Final = ENGINES["vllm"].ports["cluster"]
MODEL_CACHE_PATH: Final = "/models"
LOCAL_GPU_MEMORY_GIB: Final = 16.0
"""``local`` tier: the GPU is unknown, so size for a 16 GiB card (T4-class)."""
SHM_CAP_GIB: Final = 8.0
POD_SHARE_OF_NODE: Final = 0.6
"""Share of the node's vCPUs and memory one serving pod requests (DaemonSets and kubelet need
the rest)."""


HF_TOKEN_SECRET_KEY: Final = "hf-token"  # noqa: S105 (a key name inside the Secret, not a value)
"""Key of the Hugging Face token in the serving Secret, present only for gated models."""


def vllm_args(name: str, dep: VllmDeployment, model: ModelSpec, sku: VmSku | None, *,
              model_path: str | None = None) -> tuple[str, ...]:
    """The server flags, in a stable order; ``model_path``: serve a filled local directory instead of the Hub.

    Never emitted: ``--quantization`` (a quantized checkpoint is detected from its config, D2),
    ``--disable-log-stats`` (the metrics would vanish), ``--trust-remote-code`` unless the model
    allows it (D13), ``--api-key`` (the key comes from ``VLLM_API_KEY``, D10).
    """
    artifact = model.artifacts.safetensors
    if artifact is None:
        msg = f"deployment {name!r}: model has no safetensors artifact for vLLM; add artifacts.safetensors"
        raise ValueError(msg)
    if sku is not None and not sku.is_gpu:
        msg = (f"deployment {name!r}: {sku.name} has no GPU and the vLLM image is CUDA-only (seed defect "
               "D3); use a GPU pool, or the 'ollama' / 'onnx-genai' targets for CPU serving")
        raise ValueError(msg)
    gpu_memory = sku.gpu_memory_gib if sku is not None else LOCAL_GPU_MEMORY_GIB
    source = ["--model", model_path] if model_path else ["--model", artifact.repo, "--revision", artifact.revision]
    args: list[str] = [
        *source,
        "--served-model-name", name,
        "--host", "0.0.0.0",  # noqa: S104 (a container listens on its pod IP; NetworkPolicy fences it)
        "--port", str(PORT),
        "--max-model-len", str(vllm_max_model_len(dep, model)),
        "--max-num-seqs", str(vllm_max_num_seqs(dep, model, gpu_memory)),
        "--max-num-batched-tokens", str(dep.max_num_batched_tokens),
        "--gpu-memory-utilization", f"{dep.gpu_memory_utilization:g}",
        "--enable-prefix-caching",
    ]
    if sku is not None and not sku.bf16:
        args += ["--dtype", "half"]
    if sku is not None and sku.fp8_kv_cache:
        args += ["--kv-cache-dtype", "fp8"]
    if dep.tool_calling_enabled:
        args += ["--enable-auto-tool-choice", "--tool-call-parser", model.resolved_tool_call_parser]
        template = model.resolved_chat_template
        if template is not None:
            path = template if template.startswith("/") else f"{EXAMPLES_DIR}/{template}"
            args += ["--chat-template", path]
    reasoning = FAMILY_SERVING[model.family].reasoning_parser
    if reasoning is not None:
        args += ["--reasoning-parser", reasoning]
    if model.trust_remote_code:
        args.append("--trust-remote-code")
    return tuple(args)


def vllm_container(
    name: str,
    dep: VllmDeployment,
    model: ModelSpec,
    sku: VmSku | None,
    *,
    api_key_secret: str,
    api_key_secret_key: str = "api-key",  # noqa: S107 (a key name inside the Secret, not a value)
    hf_token_secret_key: str = HF_TOKEN_SECRET_KEY,
    image: str | None = None,
    digest_pinned_default: bool = False,
    registry: RegistryFill | None = None,
) -> ContainerSpec:
    """The vLLM serving container for deployment ``name``.

    ``sku`` is the node's VM size (``None`` on the ``local`` tier); ``image`` overrides the default
    (``dep.image`` first, then the pinned default when ``digest_pinned_default``). ``registry``:
    weights come from the ModelRegistry through the fill init step (see the module docstring).
    """
    args = vllm_args(name, dep, model, sku,
                     model_path=registry.local_path(MODEL_CACHE_PATH) if registry is not None else None)
    assert model.artifacts.safetensors is not None  # noqa: S101 (vllm_args checked it)
    weights_gib = model.shape(model.artifacts.safetensors.quantization).weights_gib
    cache_gib = math.ceil(weights_gib * 1.25 + 2)
    model_volume = ScratchVolume(name="model-cache", mount_path=MODEL_CACHE_PATH, size_limit_gib=cache_gib)
    claims: tuple[ClaimVolume, ...] = ()
    if registry is not None:
        claims = (ClaimVolume(name="model-cache", mount_path=MODEL_CACHE_PATH, shared=True,
                              size_gib=max(AZURE_FILES_PREMIUM_MIN_GIB, cache_gib),
                              storage_class=SHARED_MODEL_STORAGE_CLASS),)
    tmp_gib = 6
    if sku is not None:
        cpu_m = max(1000, int(sku.vcpus * 1000 * POD_SHARE_OF_NODE))
        memory_gib = sku.memory_gib * POD_SHARE_OF_NODE
    else:
        cpu_m, memory_gib = 4000, 16.0
    shm_gib = min(SHM_CAP_GIB, math.floor(memory_gib / 4))
    return ContainerSpec(
        engine="vllm",
        image=image or dep.image or (PINNED_IMAGE if digest_pinned_default else DEFAULT_IMAGE),
        args=args,
        env={
            "HOME": CONTAINER_TMP,
            "USER": "vllm",
            "HF_HOME": MODEL_CACHE_PATH if registry is None else f"{CONTAINER_TMP}/hf",
            "XDG_CACHE_HOME": f"{CONTAINER_TMP}/.cache",
            "XDG_CONFIG_HOME": f"{CONTAINER_TMP}/.config",
            "TRITON_CACHE_DIR": f"{CONTAINER_TMP}/.triton",
            "NUMBA_CACHE_DIR": f"{CONTAINER_TMP}/.numba",
            "VLLM_NO_USAGE_STATS": "1",
            "DO_NOT_TRACK": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            **({"HF_HUB_OFFLINE": "1"} if registry is not None else {}),
        },
        secret_env=(
            SecretEnv(name="VLLM_API_KEY", secret_name=api_key_secret, key=api_key_secret_key),
            # Gated repos (Gemma) need a token to download from the Hub; from the registry they do not
            # (only the mirror holds it). It comes from the same synced Secret.
            *((SecretEnv(name="HF_TOKEN", secret_name=api_key_secret, key=hf_token_secret_key),)
              if model.gated and registry is None else ()),
        ),
        port=PORT,
        served_model_name=name,
        metrics_path="/metrics",
        # Download + load + CUDA-graph capture can take many minutes: 30 minutes of startup budget,
        # then a quick readiness check and a slower, more tolerant liveness check.
        startup_probe=HttpProbe(path="/health", period_seconds=10, timeout_seconds=5, failure_threshold=180),
        readiness_probe=HttpProbe(path="/health", period_seconds=5, timeout_seconds=3, failure_threshold=3),
        liveness_probe=HttpProbe(path="/health", period_seconds=15, timeout_seconds=10, failure_threshold=4),
        scratch_volumes=(
            ScratchVolume(name="dshm", mount_path=SHM_PATH, size_limit_gib=shm_gib, in_memory=True),
            *(() if claims else (model_volume,)),
            ScratchVolume(name="tmp", mount_path=CONTAINER_TMP, size_limit_gib=tmp_gib),
        ),
        claim_volumes=claims,
        init_steps=(registry.step("model-cache", MODEL_CACHE_PATH),) if registry is not None else (),
        resources=Resources(
            cpu_millicores=cpu_m,
            memory_mib=gib_to_mib(memory_gib),
            ephemeral_storage_mib=gib_to_mib((0 if claims else cache_gib) + tmp_gib + 1),
            gpus=1,
        ),
        needs_https_egress=registry is None,
        queue_metric=f'sum(vllm:num_requests_waiting{{model_name="{name}"}})',
    )


def adapter(name: str, dep: object, model: ModelSpec, sku: VmSku | None, inputs: AdapterInputs) -> ContainerSpec:
    """The registered cluster adapter of ``vllm`` (``components.domain.engines.ENGINES``)."""
    if not isinstance(dep, VllmDeployment):
        msg = f"deployment {name!r}: the vllm adapter got a {type(dep).__name__}"
        raise TypeError(msg)
    return vllm_container(name, dep, model, sku, api_key_secret=inputs.api_key_secret,
                          digest_pinned_default=inputs.digest_pinned_default, registry=inputs.registry)
