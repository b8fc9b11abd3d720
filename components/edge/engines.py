"""Edge engines: fleet + model + device class -> the engine-neutral ``ContainerSpec`` (pure).

Reuses the cluster's engine vocabulary (``components.engines.spec``) so the Kubernetes and IoT Edge
deliveries describe a server the same way the AKS workloads do. What differs at the edge:

- resources are the device envelope (``DeviceClass.model_memory_gib``, the CPUs less half a core),
  not a share of a VM size;
- the model pull is offline-safe: it is skipped when the blob is already in the model store, so a
  device that restarts without a network keeps serving (the AKS pull always pulls);
- images are pinned by digest and pulled only when missing (``IfNotPresent`` / ``on-create``);
- CPU engines only (D3): Ollama with a GGUF quantization, llama.cpp's server (``--metrics``; it
  loads the GGUF blob Ollama's pull stored under its sha256), or ONNX Runtime GenAI int4 behind
  this repo's server image.
"""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass
from typing import Final

from components.domain import ENGINES, DeviceClass, Fleet, ModelSpec
from components.domain.fit import CPU_RUNTIME_OVERHEAD_GIB, estimate
from components.engines.auth_proxy import auth_proxy
from components.engines.spec import (
    ClaimVolume,
    ContainerSpec,
    HttpProbe,
    InitStep,
    Resources,
    ScratchVolume,
    SecretEnv,
    gib_to_mib,
    image_is_digest_pinned,
)
from components.registry.supply import STATE_DIR, VERIFIED_MARKER, gguf_revision

OLLAMA_PORT: Final = ENGINES["ollama"].ports["edge"]
LLAMACPP_PORT: Final = ENGINES["llamacpp"].ports["edge"]
ONNX_PORT: Final = ENGINES["onnx-genai"].ports["edge"]
MODELS_PATH: Final = "/models"
PULL_WAIT_SECONDS: Final = 60
SYSTEM_CPU_MILLICORES: Final = 500
"""Half a core left to the OS, the container runtime and the edge agent."""
SCRATCH_GIB: Final = 1.0
ONNX_SERVER_COMMAND: Final = ("python", "/app/server.py")
"""The ONNX server image's entrypoint (its Dockerfile), stated so the module never depends on it."""
ONNX_DOWNLOAD_COMMAND: Final = ("python", "/app/download.py")
API_KEY_ENV: Final = "ENGINE_API_KEY"
API_KEY_SECRET_KEY: Final = "api-key"  # noqa: S105 (a key name inside the Secret, not a value)


EDGE_PULL_TOKEN_NAME: Final = "edge-pull"  # noqa: S105 (a token name, not a secret)
"""The ACR token (pull-only scope map) edge devices authenticate with (``EdgePullToken``)."""
EDGE_PULL_REPOSITORIES: Final = ("slm/onnx-genai-server", "ollama/ollama", "ggml-org/llama.cpp", "slm/model-fill",
                                  "nginx")
"""What devices pull: this repo's ONNX server and fill images and the engine images imported into the registry
(``nginx``: the API-key gate in front of Ollama; plus ``models/<model>`` of each fleet's model:
``edge_pull_repositories``)."""
FILL_COMMAND: Final = ("python", "/app/entrypoint.py")
"""The registry fill image's entrypoint (``components/registry/fill``)."""
REGISTRY_USERNAME_ENV: Final = "SLM_REGISTRY_USERNAME"
REGISTRY_PASSWORD_ENV: Final = "SLM_REGISTRY_PASSWORD"  # noqa: S105 (an env name)
VERIFIED_MARKER_PATH: Final = f"{MODELS_PATH}/{STATE_DIR}/{VERIFIED_MARKER}"
"""Written by the fill step only after every file verified (``<model>@<revision>``)."""
SERVER_ENTRYPOINTS: Final = {"ollama": ("/bin/ollama",), "llamacpp": ("/app/llama-server",),
                             "onnx-genai": ONNX_SERVER_COMMAND}
"""The engine images' own ENTRYPOINTs, stated where a module must wrap them (IoT Edge gate on the marker).
Read from the upstream Dockerfiles (ollama/ollama ``Dockerfile`` @ v0.12.6, ggml-org/llama.cpp
``.devops/cpu.Dockerfile`` target ``server``); the facts and their commits are in
``components/engines/data/image-facts.json``, and tests/edge/test_image_facts.py checks these against them."""


@dataclass(frozen=True, kw_only=True)
class EdgeRegistry:
    """Where a fleet's devices pull the model from: the environment's ACR (plain values at build time)."""

    login_server: str
    fill_image: str
    """The registry fill image (``ModelRegistry.model_fill_image``, by digest)."""


def edge_pull_repositories(model_ids: list[str] | tuple[str, ...] = ()) -> tuple[str, ...]:
    """The repositories the edge pull token may read: the images and each fleet's model artifact."""
    from components.registry.oci import repository

    return (*EDGE_PULL_REPOSITORIES, *sorted({repository(m) for m in model_ids}))


def registry_secret_name(fleet_name: str) -> str:
    """The Kubernetes Secret holding the registry token the fill step pulls the model with."""
    return f"slm-{fleet_name}-registry-token"


def registry_artifact(fleet_name: str, fleet: Fleet, model_id: str, model: ModelSpec,
                      device: DeviceClass) -> tuple[str, tuple[str, ...], str | None]:
    """(revision, include patterns, pinned manifest sha256) of the artifact the fleet loads, as
    ``slmctl models sync`` publishes it."""
    if fleet.engine == "onnx-genai" and model.artifacts.onnx is not None:
        onnx = model.artifacts.onnx
        return onnx.revision, (f"{onnx_variant(model, device)}/*",), onnx.manifest_sha256
    gguf = model.artifacts.gguf
    if gguf is None or gguf.sha256 is None:
        msg = (f"fleet {fleet_name!r}: the model comes from the registry, whose GGUF revision is the blob digest; set "
               f"models.{model_id}.artifacts.gguf.sha256")
        raise ValueError(msg)
    return gguf_revision(gguf.sha256), (), gguf.manifest_sha256


def registry_fill_step(fleet_name: str, model_id: str, revision: str, include: tuple[str, ...],
                       registry: EdgeRegistry, *, manifest_sha256: str | None = None) -> InitStep:
    """The fill step: pull ``models/<model>:<revision>`` with the fleet's token, verify, write the marker.

    ``--offline-ok``: a device rebooting without a network re-verifies the files it holds against the
    manifest it stored, and starts; anything missing or changed still refuses."""
    args = ["--registry", registry.login_server, "--model", model_id, "--revision", revision, "--dest", MODELS_PATH]
    for pattern in include:
        args += ["--include", pattern]
    args.append("--offline-ok")
    if manifest_sha256 is not None:
        args += ["--manifest-sha256", manifest_sha256]
    secret = registry_secret_name(fleet_name)
    return InitStep(name="fill-model", image=registry.fill_image, command=FILL_COMMAND, args=tuple(args),
                    env={"HOME": "/tmp"}, mounts=("models", "tmp"), needs_https_egress=False,  # noqa: S108
                    needs_registry_egress=True,
                    secret_env=(SecretEnv(name=REGISTRY_USERNAME_ENV, secret_name=secret, key="username"),
                                SecretEnv(name=REGISTRY_PASSWORD_ENV, secret_name=secret, key="password")))


def onnx_variant(model: ModelSpec, device: DeviceClass) -> str:
    """The ONNX variant folder a device class loads (CUDA on Jetson when there is one, else CPU)."""
    onnx = model.artifacts.onnx
    if onnx is None:
        return ""
    return ((onnx.cuda_variant if device.accelerator == "nvidia-jetson" and onnx.cuda_variant
             else onnx.cpu_variant) or "").strip("/")


def pull_scope_actions(repositories: tuple[str, ...] = EDGE_PULL_REPOSITORIES) -> list[str]:
    """Pull-only ACR scope-map actions (read content and metadata; never write or delete)."""
    return [f"repositories/{repo}/{what}/read" for repo in repositories for what in ("content", "metadata")]


def enforces_api_key(engine: str | None) -> bool:
    """Whether the fleet's server answers only with the API key: the engine itself (``ENGINES[...].enforces_api_key``)
    or, for one that checks none (Ollama), the nginx gate in front of it. Every edge container engine is gated."""
    return engine is not None and engine in ENGINES and "edge" in ENGINES[engine].runs_on


def api_key_secret_name(fleet_name: str) -> str:
    """The Kubernetes Secret (in the fleet's namespace) holding the engine API key."""
    return f"slm-{fleet_name}-api-key"


def onnx_download_args(repo: str, revision: str, variant: str) -> tuple[str, ...]:
    """``download.py``'s arguments: the pinned revision's variant folder into the model store."""
    return ("--repo", repo, "--revision", revision, "--variant", variant, "--dest", MODELS_PATH)


def onnx_fill_script(variant: str) -> str:
    """Fill step shell (``sh -c <script> download-model <download.py args>``): download unless stored.

    A device rebooting without a network finds ``genai_config.json`` in the store and skips the
    download, so the server starts offline (the AKS init step always downloads into an emptyDir).
    """
    config = shlex.quote(f"{MODELS_PATH}/{variant}/genai_config.json")
    return f'test -f {config} || exec {" ".join(ONNX_DOWNLOAD_COMMAND)} "$@"'


def edge_pull_script(tag: str, sha256: str | None) -> str:
    """Init step shell: start a private Ollama, pull ``tag`` unless already stored, verify, stop.

    ``ollama show`` succeeds offline when the model is in ``OLLAMA_MODELS``, so a device rebooting
    without a network does not fail its init step (the AKS adapter's pull always pulls). With a
    pinned sha256, the stored blob ``blobs/sha256-<digest>`` must exist after the pull.
    """
    quoted = shlex.quote(tag)
    lines = [
        "set -eu",
        "ollama serve & server=$!",
        f"for i in $(seq 1 {PULL_WAIT_SECONDS}); do ollama list >/dev/null 2>&1 && break; sleep 1; done",
        f"ollama show {quoted} >/dev/null 2>&1 || ollama pull {quoted}",
    ]
    if sha256 is not None:
        lines.append(f"test -f {MODELS_PATH}/blobs/sha256-{sha256} "
                     f"|| {{ echo 'model blob sha256-{sha256} missing after pull of {tag}' >&2; exit 1; }}")
    lines.append('kill "$server"')
    return "\n".join(lines)


def serve_after_pull_script(tag: str, sha256: str | None) -> str:
    """One-container form (IoT Edge has no init containers): pull as above, then run the server."""
    pull = edge_pull_script(tag, sha256).replace('kill "$server"', "")
    return (f"{pull.rstrip()}\ntrap 'kill \"$server\"' TERM INT\nwait \"$server\"")


def device_resources(device: DeviceClass) -> Resources:
    """Requests == limits inside the device envelope (Guaranteed QoS: evicted last).

    Memory is what the class gives a model (``model_memory_gib``); ephemeral storage covers the
    scratch emptyDir and logs (the model store is its own claim).
    """
    cpu = max(device.cpus * 1000 - SYSTEM_CPU_MILLICORES, 500)
    return Resources(cpu_millicores=cpu, memory_mib=math.floor(device.model_memory_gib * 1024),
                     ephemeral_storage_mib=gib_to_mib(SCRATCH_GIB + 0.5))


def models_volume_gib(fleet: Fleet, model: ModelSpec) -> int:
    """Model store size: the weights plus a quarter (partial downloads, manifests)."""
    weights = model.shape(fleet.quantization(model)).weights_gib
    return max(2, math.ceil(weights * 1.25) + 1)


def needed_memory_gib(fleet: Fleet, model: ModelSpec) -> float:
    """Weights + KV cache at the fleet's context + runtime overhead (the memory-fit estimate)."""
    shape = model.shape(fleet.quantization(model))
    fit = estimate(shape, memory_gib=1024, context_tokens=fleet.context_tokens, utilization=1.0,
                   overhead_gib=CPU_RUNTIME_OVERHEAD_GIB)
    return round(fit.weights_gib + fit.kv_per_sequence_gib + CPU_RUNTIME_OVERHEAD_GIB, 2)


def model_env(model_id: str, version: str, sha256: str | None) -> dict[str, str]:
    """What the workload says it serves (also written as annotations / module env)."""
    env = {"SLM_MODEL_ID": model_id, "SLM_MODEL_VERSION": version}
    if sha256 is not None:
        env["SLM_MODEL_SHA256"] = sha256
    return env


def edge_container(
    fleet_name: str,
    fleet: Fleet,
    model_id: str,
    model: ModelSpec,
    device: DeviceClass,
    *,
    image: str,
    fetch_image: str | None = None,
    registry: EdgeRegistry | None = None,
    auth_proxy_image: str | None = None,
    engine_host: str = "127.0.0.1",
) -> ContainerSpec:
    """The serving container for one fleet (engine from ``fleet.engine``).

    Args:
        fleet_name: the fleet's key; names the served model and errors.
        fleet: the fleet settings (engine, context).
        model_id: the catalogue key of ``model``.
        model: the model spec (artifacts, shape).
        device: the device class envelope.
        image: the engine image (``repo@sha256:...``).
        fetch_image: llama.cpp only: the Ollama image whose pull stores the GGUF blob (not with ``registry``).
        registry: the model comes from the environment's registry (staging and prod): the fill step
            replaces every public-hub pull or download.
        auth_proxy_image: Ollama only: the API-key gate's image. Default: ``nginx:1.28.0-alpine``.
        engine_host: Ollama only: where the gate reaches Ollama. Default loopback: in a pod, and on IoT Edge,
            where Ollama's module joins the gate module's network namespace (``iot_manifest.shared_network``).
    """
    version, sha256 = fleet.artifact_pin(model_id, model)
    resources = device_resources(device)
    store = ClaimVolume(name="models", mount_path=MODELS_PATH, size_gib=models_volume_gib(fleet, model))
    tmp = ScratchVolume(name="tmp", mount_path="/tmp", size_limit_gib=SCRATCH_GIB)  # noqa: S108
    env = model_env(model_id, version, sha256)
    ollama_env = {"OLLAMA_MODELS": MODELS_PATH, "HOME": "/tmp"}  # noqa: S108 (an emptyDir)
    filled = None
    if registry is not None:
        revision, include, pin = registry_artifact(fleet_name, fleet, model_id, model, device)
        filled = registry_fill_step(fleet_name, model_id, revision, include, registry, manifest_sha256=pin)
    if fleet.engine == "ollama":
        gguf = model.artifacts.gguf
        if gguf is None:
            msg = f"fleet {fleet_name!r}: engine 'ollama' needs models.{model_id}.artifacts.gguf"
            raise ValueError(msg)
        pull = filled or InitStep(name="pull-model", image=image, command=("/bin/sh", "-c"),
                                  args=(edge_pull_script(gguf.ollama_tag, sha256),),
                                  env={**ollama_env, "OLLAMA_HOST": f"127.0.0.1:{OLLAMA_PORT}"},
                                  mounts=("models", "tmp"))
        # Ollama checks no key: it listens on loopback and the nginx gate holds the device-facing port.
        gate = auth_proxy(OLLAMA_PORT, key_secret=api_key_secret_name(fleet_name), key_secret_key=API_KEY_SECRET_KEY,
                          image=auth_proxy_image, upstream_host=engine_host)
        return ContainerSpec(
            engine="ollama", image=image, args=("serve",),
            env={**env, **ollama_env, "OLLAMA_HOST": f"127.0.0.1:{OLLAMA_PORT}",
                 "OLLAMA_CONTEXT_LENGTH": str(fleet.context_tokens), "OLLAMA_NUM_PARALLEL": "1",
                 "OLLAMA_MAX_LOADED_MODELS": "1", "OLLAMA_KEEP_ALIVE": "-1"},
            port=gate.port, served_model_name=gguf.ollama_tag, metrics_path=None,  # D4
            startup_probe=HttpProbe(path=gate.health_path, period_seconds=5, failure_threshold=60),
            readiness_probe=HttpProbe(path=gate.health_path, period_seconds=10),
            liveness_probe=HttpProbe(path=gate.health_path, period_seconds=20, timeout_seconds=10),
            scratch_volumes=(tmp,), claim_volumes=(store,), init_steps=(pull,), resources=resources,
            supports_api_key=False, auth_proxy=gate,
        )
    if fleet.engine == "llamacpp":
        gguf = model.artifacts.gguf
        if gguf is None or sha256 is None:
            msg = (f"fleet {fleet_name!r}: llamacpp loads the GGUF blob by its sha256; set "
                   f"models.{model_id}.artifacts.gguf (with sha256)")
            raise ValueError(msg)
        if fetch_image is None and filled is None:
            msg = (f"fleet {fleet_name!r}: llamacpp needs fetch_image, an Ollama image (by digest) whose "
                   "pull stores the GGUF blob the server loads")
            raise ValueError(msg)
        pull = filled or InitStep(name="pull-model", image=fetch_image or "", command=("/bin/sh", "-c"),
                                  args=(edge_pull_script(gguf.ollama_tag, sha256),),
                                  env={**ollama_env, "OLLAMA_HOST": f"127.0.0.1:{OLLAMA_PORT}"},
                                  mounts=("models", "tmp"))
        threads = max(1, resources.cpu_millicores // 1000)
        return ContainerSpec(
            engine="llamacpp",
            image=image,
            args=("--model", f"{MODELS_PATH}/blobs/sha256-{sha256}", "--alias", fleet_name,
                  "--host", "0.0.0.0", "--port", str(LLAMACPP_PORT),  # noqa: S104 (fenced by NetworkPolicy)
                  "--ctx-size", str(fleet.context_tokens), "--parallel", "1",
                  "--threads", str(threads), "--metrics"),
            env={**env, "HOME": "/tmp"},  # noqa: S108
            # llama-server reads --api-key from LLAMA_API_KEY; /health stays open for probes.
            secret_env=(SecretEnv(name="LLAMA_API_KEY", secret_name=api_key_secret_name(fleet_name),
                                  key=API_KEY_SECRET_KEY),),
            port=LLAMACPP_PORT, served_model_name=fleet_name, metrics_path="/metrics",
            startup_probe=HttpProbe(path="/health", period_seconds=5, failure_threshold=60),
            readiness_probe=HttpProbe(path="/health", period_seconds=10),
            liveness_probe=HttpProbe(path="/health", period_seconds=20, timeout_seconds=10,
                                     failure_threshold=6),
            scratch_volumes=(tmp,), claim_volumes=(store,), init_steps=(pull,), resources=resources,
            supports_api_key=True,
        )
    if fleet.engine == "onnx-genai":
        onnx = model.artifacts.onnx
        if onnx is None:
            msg = f"fleet {fleet_name!r}: engine 'onnx-genai' needs models.{model_id}.artifacts.onnx"
            raise ValueError(msg)
        variant = onnx_variant(model, device)
        if not variant:
            msg = (f"fleet {fleet_name!r}: engine 'onnx-genai' needs models.{model_id}.artifacts.onnx."
                   "cpu_variant (the sub-folder with the CPU int4 build)")
            raise ValueError(msg)
        # From the registry: no Hugging Face endpoint, token or cache on the device at all.
        hf_env = ({"HOME": "/tmp"} if filled is not None  # noqa: S108
                  else {"HOME": "/tmp", "HF_HOME": "/tmp/hf", "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_OFFLINE": "1"})  # noqa: S108
        fill = filled or InitStep(name="download-model", image=image, command=("/bin/sh", "-c"),
                                  args=(onnx_fill_script(variant), "download-model",
                                        *onnx_download_args(onnx.repo, onnx.revision, variant)),
                                  env={k: v for k, v in hf_env.items() if k != "HF_HUB_OFFLINE"}, mounts=("models", "tmp"))
        return ContainerSpec(
            engine="onnx-genai", image=image, command=ONNX_SERVER_COMMAND,
            args=("--model-dir", f"{MODELS_PATH}/{variant}", "--served-model-name", fleet_name,
                  "--port", str(ONNX_PORT), "--context-tokens", str(fleet.context_tokens),
                  "--max-concurrency", "1"),
            env={**env, **hf_env},
            secret_env=(SecretEnv(name=API_KEY_ENV, secret_name=api_key_secret_name(fleet_name),
                                  key=API_KEY_SECRET_KEY),),
            port=ONNX_PORT, served_model_name=fleet_name, metrics_path="/metrics",
            startup_probe=HttpProbe(path="/health", period_seconds=5, failure_threshold=120),
            readiness_probe=HttpProbe(path="/health", period_seconds=10),
            liveness_probe=HttpProbe(path="/health", period_seconds=20, timeout_seconds=10,
                                     failure_threshold=6),
            scratch_volumes=(tmp,), claim_volumes=(store,), init_steps=(fill,), resources=resources,
            needs_https_egress=False,  # the server loads from the store; only the fill step downloads
        )
    msg = f"fleet {fleet_name!r}: delivery {fleet.delivery!r} has no container engine"
    raise ValueError(msg)


def require_digest(fleet_name: str, image: str, *, what: str = "image") -> None:
    """Refuse a tag-only image: devices must run exactly what was tested, also offline."""
    if not image_is_digest_pinned(image):
        msg = (f"fleet {fleet_name!r}: {what} {image!r} is not pinned by digest; use "
               "'<registry>/<repo>:<tag>@sha256:<64 hex>' (devices pull IfNotPresent and keep serving "
               "offline, so a moving tag would never be corrected)")
        raise ValueError(msg)
