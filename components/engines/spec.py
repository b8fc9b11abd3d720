"""The engine-neutral description of one serving container, produced by the pure engine adapters.

An adapter (``vllm``, ``ollama``, ``onnx_genai``) turns a deployment, its model spec and the node
hardware into a ``ContainerSpec``. ``components.serving_workloads`` turns that into typed
Kubernetes objects. Nothing here imports Pulumi: the adapters are plain functions, tested without
mocks (STYLE P13), and the policy pack can reason about the same values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from components.domain import ModelSpec
from components.domain.catalogue import VmSku

Engine = str
"""A registered engine name (``components.domain.engines.ENGINES``): the cluster engines and the edge-only
``llamacpp`` (components/edge/engines.py)."""

NON_ROOT_UID: Final = 10001
"""The UID/GID every serving pod runs as.

The public vLLM and Ollama images declare no ``USER`` (they run as root), so ``runAsNonRoot``
alone would make the kubelet refuse to start them ("image will run as root"). We therefore pin an
explicit, high (>= 10000, Checkov CKV_K8S_40) non-root UID and point every path the engine writes
(HOME, caches, model store) at a writable volume owned through ``fsGroup``. Our ONNX server image
declares the same UID in its Dockerfile.
"""

CONTAINER_TMP: Final = "/tmp"  # noqa: S108 (a path inside the container, backed by an emptyDir)
"""The container's scratch directory; every adapter mounts an emptyDir here."""
SHM_PATH: Final = "/dev/shm"  # noqa: S108 (the container's shared memory, a memory-backed emptyDir)

ALLOWED_GATEWAY_PATHS: Final = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/models")
"""The only routes the ingress gateway exposes per model. Never ``/metrics``, ``/pause``,
``/update_weights``, ``/invocations`` or ``/tokenize`` (vLLM's API key does not protect them)."""


@dataclass(frozen=True, kw_only=True)
class HttpProbe:
    """An HTTP GET probe against the serving port."""

    path: str
    period_seconds: int = 10
    timeout_seconds: int = 5
    failure_threshold: int = 3
    success_threshold: int = 1
    initial_delay_seconds: int = 0

    @property
    def budget_seconds(self) -> int:
        """How long this probe tolerates failure before acting (period x failures)."""
        return self.period_seconds * self.failure_threshold


@dataclass(frozen=True, kw_only=True)
class ScratchVolume:
    """An ``emptyDir`` mounted read-write (the root filesystem stays read-only)."""

    name: str
    mount_path: str
    size_limit_gib: float
    in_memory: bool = False
    """Default: node disk. ``True`` makes it tmpfs (``medium: Memory``), e.g. for ``/dev/shm``;
    it then counts against the container's memory limit."""


@dataclass(frozen=True, kw_only=True)
class ClaimVolume:
    """A PersistentVolumeClaim for a model store.

    Default: per pod (a generic ephemeral volume): a ReadWriteOnce claim cannot be mounted by
    replicas on several nodes, and KEDA adds and removes replicas; it is deleted with its pod.
    ``shared``: one ReadWriteMany claim per deployment that outlives its pods (the registry fill
    step reuses every file that still verifies, so a restarted or rescheduled pod copies nothing).
    """

    name: str
    mount_path: str
    size_gib: int
    storage_class: str | None = None
    """Default: the cluster's default StorageClass (AKS ``managed-csi``); shared claims:
    ``SHARED_MODEL_STORAGE_CLASS``."""
    shared: bool = False


SHARED_MODEL_STORAGE_CLASS: Final = "azurefile-csi-premium"
"""AKS's built-in Azure Files Premium class: ReadWriteMany, so every replica on every node mounts the
same verified model store (its mount options make files writable for the non-root UID)."""
AZURE_FILES_PREMIUM_MIN_GIB: Final = 100
"""Azure Files Premium shares are provisioned in at least 100 GiB."""
FILL_IMAGE_FROM_REGISTRY: Final = "registry-built/model-fill"
"""Placeholder for the fill step's image (ModelRegistry builds ``components/registry/fill`` and
pushes it; ``InferenceCluster`` substitutes the pushed ``repo@sha256`` when it declares the pod)."""


@dataclass(frozen=True, kw_only=True)
class RegistryFill:
    """Where a workload's weights come from in the registry (plain values decided from the settings)."""

    account_url: str
    container: str
    model: str
    revision: str
    include: tuple[str, ...] = ()
    """Manifest paths to fill (e.g. one ONNX variant folder). Default: every file."""
    image: str = FILL_IMAGE_FROM_REGISTRY
    manifest_sha256: str | None = None
    """The manifest's pinned sha256, checked before any file. Default: none."""

    def local_path(self, volume_path: str) -> str:
        """Where the files land inside the model volume: ``<volume>/<model>/<revision>``."""
        return f"{volume_path}/{self.model}/{self.revision}"

    def step(self, volume: str, volume_path: str) -> InitStep:
        """The init container that fills ``volume`` and refuses to let the pod start on a mismatch."""
        args = ["--account-url", self.account_url, "--container", self.container, "--model", self.model,
                "--revision", self.revision, "--dest", self.local_path(volume_path)]
        for pattern in self.include:
            args += ["--include", pattern]
        if self.manifest_sha256 is not None:
            args += ["--manifest-sha256", self.manifest_sha256]
        return InitStep(name="fill-model", image=self.image, command=("python", "/app/entrypoint.py"),
                        args=tuple(args), env={"HOME": CONTAINER_TMP}, mounts=(volume, "tmp"),
                        needs_https_egress=False, needs_registry_egress=True)


@dataclass(frozen=True, kw_only=True)
class AdapterInputs:
    """What the cluster decides for every engine adapter (the same for each, so dispatch is uniform)."""

    api_key_secret: str
    """The Kubernetes Secret holding the engine API key (engines that check it read it from there)."""
    built_image: str | None = None
    """The server image ModelRegistry built, for engines whose server this repository ships (onnx-genai).
    Default: none (the engine's pinned public image)."""
    digest_pinned_default: bool = False
    """Whether the engine's default image must be the digest-pinned one (prod)."""
    registry: RegistryFill | None = None
    """Default: none. The weights come from the ModelRegistry through the fill init step."""


@dataclass(frozen=True, kw_only=True)
class SecretEnv:
    """An environment variable read from a Kubernetes Secret (``secretKeyRef``), never a literal."""

    name: str
    secret_name: str
    key: str


@dataclass(frozen=True, kw_only=True)
class AuthProxy:
    """An API-key gate container in the serving pod, in front of an engine without a key (Ollama).

    When a spec has one, ``ContainerSpec.port`` is the proxy's port (what Services, NetworkPolicies,
    the Ingress and host bindings use) and the engine listens on ``127.0.0.1:upstream_port`` only.
    Built by ``components.engines.auth_proxy.auth_proxy``.
    """

    image: str
    port: int
    upstream_port: int
    command: tuple[str, ...]
    config_template: str
    """The nginx config with the key left as ``${ENGINE_API_KEY}`` (rendered at container start)."""
    template_dir: str
    """Where the template is mounted (a ConfigMap, read-only)."""
    template_name: str
    key: SecretEnv
    run_volume: ScratchVolume
    """The proxy's writable prefix (in memory): rendered config, pid, temp files."""
    probe: HttpProbe
    """The proxy's own startup/readiness (answered by nginx, never by the engine)."""
    liveness_probe: HttpProbe
    """Same route, more tolerant: a busy proxy is taken out of rotation before it is restarted."""
    health_path: str
    """Open route to the engine's health check, for the engine container's probes (by port number)."""
    resources: Resources


@dataclass(frozen=True, kw_only=True)
class InitStep:
    """An init container that prepares the model before the server starts (pull, download)."""

    name: str
    image: str
    command: tuple[str, ...]
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict[str, str])
    mounts: tuple[str, ...] = ()
    """Names of the spec's volumes this step mounts (at the same paths as the server)."""
    needs_https_egress: bool = True
    """Whether it downloads from the internet (Hugging Face, the Ollama library)."""
    needs_registry_egress: bool = False
    """Whether it reads the registry (weights storage private endpoint, Entra ID token exchange)."""
    secret_env: tuple[SecretEnv, ...] = ()
    """Variables read from Secrets (e.g. the edge registry token). Default: none."""


@dataclass(frozen=True, kw_only=True)
class Resources:
    """Requests == limits (Guaranteed QoS; GPUs must be equal anyway)."""

    cpu_millicores: int
    memory_mib: int
    ephemeral_storage_mib: int
    gpus: int = 0

    def as_quantities(self) -> dict[str, str]:
        """Kubernetes resource quantities."""
        out = {
            "cpu": f"{self.cpu_millicores}m",
            "memory": f"{self.memory_mib}Mi",
            "ephemeral-storage": f"{self.ephemeral_storage_mib}Mi",
        }
        if self.gpus:
            out["nvidia.com/gpu"] = str(self.gpus)
        return out


@dataclass(frozen=True, kw_only=True)
class ContainerSpec:
    """Everything engine-specific about a serving pod; the component adds the rest."""

    engine: Engine
    image: str
    args: tuple[str, ...]
    command: tuple[str, ...] = ()
    """Default: the image's entrypoint."""
    env: Mapping[str, str] = field(default_factory=dict[str, str])
    secret_env: tuple[SecretEnv, ...] = ()
    port: int
    port_name: str = "http"
    served_model_name: str
    metrics_path: str | None
    """Where Prometheus scrapes; ``None`` when the engine has none (Ollama, seed defect D4)."""
    startup_probe: HttpProbe
    readiness_probe: HttpProbe
    liveness_probe: HttpProbe
    scratch_volumes: tuple[ScratchVolume, ...] = ()
    claim_volumes: tuple[ClaimVolume, ...] = ()
    init_steps: tuple[InitStep, ...] = ()
    resources: Resources
    needs_https_egress: bool = False
    """Whether the server itself downloads weights at start (NetworkPolicy allows HTTPS out)."""
    supports_api_key: bool = True
    """Whether the engine enforces the API key itself (Ollama does not: ``auth_proxy`` does)."""
    auth_proxy: AuthProxy | None = None
    """The API-key gate in front of an engine that has none; ``port`` is then the gate's."""
    queue_metric: str | None = None
    """PromQL for the waiting-request count KEDA scales on; ``None``: no queue metric (D11)."""
    run_as_user: int = NON_ROOT_UID

    @property
    def engine_port(self) -> int:
        """Where the engine itself listens (``127.0.0.1`` only when gated)."""
        return self.auth_proxy.upstream_port if self.auth_proxy is not None else self.port

    @property
    def gated(self) -> bool:
        """Whether every request reaches the engine only with the API key (itself or its proxy)."""
        return self.supports_api_key or self.auth_proxy is not None

    @property
    def gpu(self) -> bool:
        """Whether the pod requests GPUs."""
        return self.resources.gpus > 0


def gib_to_mib(gib: float) -> int:
    """GiB -> MiB, rounded up to a whole MiB."""
    return math.ceil(gib * 1024)


def image_is_digest_pinned(image: str) -> bool:
    """True for ``repo[:tag]@sha256:<64 hex>``."""
    _, sep, digest = image.partition("@sha256:")
    return bool(sep) and len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)


Adapter = Callable[[str, Any, ModelSpec, VmSku | None, AdapterInputs], ContainerSpec]
"""A cluster engine adapter: ``(name, deployment, model, sku, inputs) -> ContainerSpec`` (pure; the
registration's ``adapter`` reference names it, ``components.engines.container_for`` calls it)."""
