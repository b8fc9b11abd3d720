"""Ollama serving a GGUF quantization on CPU or GPU: deployment + model + node -> ``ContainerSpec``.

Seed defects this adapter cannot reproduce: no ``/metrics`` (D4, ollama#3144: ``metrics_path`` is
``None`` and nothing scrapes it), HTTP probes on ``/`` and ``/api/version`` rather than ``curl`` or
``/api/health`` (D5), the model is pulled by an init container into the pod's model volume, never
at image build (D6), and only real server variables are set (D7; ``OLLAMA_MAX_VRAM`` would be
bytes, and context is ``OLLAMA_CONTEXT_LENGTH``, not a Modelfile ``PARAMETER context_length``).

The image ``ollama/ollama:0.12.6`` is release v0.12.6; its Dockerfile (@ ``1813ff8``, facts in
``components/engines/data/image-facts.json``) declares ``ENTRYPOINT ["/bin/ollama"]`` and no ``USER``: it runs as root, so the pod runs it as ``NON_ROOT_UID`` with ``HOME`` on an emptyDir (the
server writes its key pair to ``~/.ollama``) and ``OLLAMA_MODELS`` on the per-pod claim.
"""

from __future__ import annotations

import shlex
from typing import Final

from components.domain import ModelSpec, OllamaDeployment
from components.domain.catalogue import VmSku
from components.domain.engines import ENGINES
from components.engines.auth_proxy import auth_proxy
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
    gib_to_mib,
)

DEFAULT_IMAGE: Final = "ollama/ollama:0.12.6"
PORT: Final = ENGINES["ollama"].ports["cluster"]
MODELS_PATH: Final = "/models"
VALID_SERVER_ENV: Final = frozenset({
    "OLLAMA_HOST", "OLLAMA_MODELS", "OLLAMA_NUM_PARALLEL", "OLLAMA_CONTEXT_LENGTH", "OLLAMA_KEEP_ALIVE",
    "OLLAMA_MAX_LOADED_MODELS", "OLLAMA_MAX_QUEUE", "OLLAMA_FLASH_ATTENTION", "OLLAMA_KV_CACHE_TYPE",
})
"""The server variables this adapter may set (SLM_FACTS "Ollama")."""
POD_SHARE_OF_NODE: Final = 0.6
PULL_WAIT_SECONDS: Final = 60


def pull_script(tag: str, sha256: str | None) -> str:
    """Shell run by the init container: start a private server, pull ``tag``, verify, stop.

    The pull needs a running server (which is why ``RUN ollama pull`` in a Dockerfile fails, D6).
    When the model's blob digest is pinned, the pull fails unless the Modelfile's ``FROM`` blob
    matches it.
    """
    quoted = shlex.quote(tag)
    lines = [
        "set -eu",
        "ollama serve & server=$!",
        f"for i in $(seq 1 {PULL_WAIT_SECONDS}); do ollama list >/dev/null 2>&1 && break; sleep 1; done",
        f"ollama pull {quoted}",
    ]
    if sha256 is not None:
        lines.append(f"ollama show --modelfile {quoted} | grep -q 'sha256-{sha256}' "
                     f"|| {{ echo 'model blob digest differs from sha256 {sha256}' >&2; exit 1; }}")
    lines.append('kill "$server"')
    return "\n".join(lines)


def ollama_container(
    name: str,
    dep: OllamaDeployment,
    model: ModelSpec,
    sku: VmSku | None,
    *,
    image: str | None = None,
    registry: RegistryFill | None = None,
    api_key_secret: str = "engine-api-key",  # noqa: S107 (the Secret's name, InferenceCluster's API_KEY_SECRET)
    api_key_secret_key: str = "api-key",  # noqa: S107 (a key name inside the Secret)
) -> ContainerSpec:
    """The Ollama serving container (with its pull or registry-fill init step) for deployment ``name``.

    Ollama checks no API key, so it listens on ``127.0.0.1`` only and an nginx gate (``auth_proxy``)
    in the same pod is the one reachable port; the key comes from ``api_key_secret`` like the other
    engines' ``ENGINE_API_KEY``.

    ``registry``: the model store comes from the ModelRegistry, laid out as Ollama keeps it
    (``manifests/...`` and ``blobs/sha256-...``, each verified), so the server starts without pulling.
    """
    gguf = model.artifacts.gguf
    if gguf is None:
        msg = f"deployment {name!r}: model has no gguf artifact for Ollama; add artifacts.gguf.ollama_tag"
        raise ValueError(msg)
    gpu = sku is not None and sku.is_gpu
    env = {
        "OLLAMA_HOST": f"127.0.0.1:{PORT}",  # the gate is the only way in
        "OLLAMA_MODELS": MODELS_PATH,
        "OLLAMA_NUM_PARALLEL": str(dep.num_parallel),
        "OLLAMA_CONTEXT_LENGTH": str(dep.context_tokens),
        "OLLAMA_KEEP_ALIVE": "-1",
        "OLLAMA_MAX_LOADED_MODELS": "1",
        "OLLAMA_MAX_QUEUE": "512",
    }
    if gpu:
        env["OLLAMA_FLASH_ATTENTION"] = "1"
    if sku is not None:
        cpu_m = max(1000, int(sku.vcpus * 1000 * POD_SHARE_OF_NODE))
        memory_gib = sku.memory_gib * POD_SHARE_OF_NODE
    else:
        cpu_m, memory_gib = 4000, 8.0
    image_ref = image or dep.image or DEFAULT_IMAGE
    pull = InitStep(
        name="pull-model",
        image=image_ref,
        command=("/bin/sh", "-c"),
        args=(pull_script(gguf.ollama_tag, gguf.sha256),),
        env={"OLLAMA_HOST": f"127.0.0.1:{PORT}", "OLLAMA_MODELS": MODELS_PATH, "HOME": CONTAINER_TMP},
        mounts=("models", "tmp"),
    )
    claim = ClaimVolume(name="models", mount_path=MODELS_PATH, size_gib=dep.models_volume_gib)
    if registry is not None:
        pull = registry.step("models", MODELS_PATH)
        env["OLLAMA_MODELS"] = registry.local_path(MODELS_PATH)
        claim = ClaimVolume(name="models", mount_path=MODELS_PATH, shared=True, storage_class=SHARED_MODEL_STORAGE_CLASS,
                            size_gib=max(AZURE_FILES_PREMIUM_MIN_GIB, dep.models_volume_gib))
    gate = auth_proxy(PORT, key_secret=api_key_secret, key_secret_key=api_key_secret_key,
                      image=dep.auth_proxy_image)
    return ContainerSpec(
        engine="ollama",
        image=image_ref,
        args=("serve",),
        env={**env, "HOME": CONTAINER_TMP},
        port=gate.port,
        served_model_name=gguf.ollama_tag,
        metrics_path=None,
        # Through the gate's open health route (Ollama's /api/version): the kubelet cannot reach loopback.
        startup_probe=HttpProbe(path=gate.health_path, period_seconds=5, timeout_seconds=3, failure_threshold=60),
        readiness_probe=HttpProbe(path=gate.health_path, period_seconds=5, timeout_seconds=3, failure_threshold=3),
        liveness_probe=HttpProbe(path=gate.health_path, period_seconds=20, timeout_seconds=10, failure_threshold=3),
        scratch_volumes=(ScratchVolume(name="tmp", mount_path=CONTAINER_TMP, size_limit_gib=2),),
        claim_volumes=(claim,),
        init_steps=(pull,),
        resources=Resources(cpu_millicores=cpu_m, memory_mib=gib_to_mib(memory_gib),
                            ephemeral_storage_mib=gib_to_mib(3), gpus=1 if gpu else 0),
        needs_https_egress=False,
        supports_api_key=False,
        auth_proxy=gate,
        queue_metric=None,
    )


def adapter(name: str, dep: object, model: ModelSpec, sku: VmSku | None, inputs: AdapterInputs) -> ContainerSpec:
    """The registered cluster adapter of ``ollama`` (``components.domain.engines.ENGINES``)."""
    if not isinstance(dep, OllamaDeployment):
        msg = f"deployment {name!r}: the ollama adapter got a {type(dep).__name__}"
        raise TypeError(msg)
    return ollama_container(name, dep, model, sku, registry=inputs.registry, api_key_secret=inputs.api_key_secret)
