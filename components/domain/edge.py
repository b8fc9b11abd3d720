"""Edge device classes and the fleets of devices that serve one model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Final, Literal

from pydantic import Field

from components.domain._base import CONFIG_NAMESPACE, Sha256
from components.domain._base import FrozenModel as _Model
from components.domain.engines import EDGE_ENGINE_ARTIFACT, EdgeEngineName
from components.domain.fit import CPU_RUNTIME_OVERHEAD_GIB, estimate
from components.domain.models import ModelId, ModelSpec


class DeviceClass(_Model):
    """The envelope of one kind of edge device."""

    architecture: Literal["amd64", "arm64"]
    os: Literal["linux", "windows", "macos"] = "linux"
    memory_gib: float = Field(gt=0, le=1024)
    cpus: int = Field(default=4, ge=1)
    accelerator: Literal["none", "nvidia-jetson", "intel-npu", "apple-silicon"] = "none"
    system_reserved_gib: float | None = Field(default=None, ge=0)
    """Memory the OS, container runtime and agents keep. Default: 1 GiB on linux, 4 GiB on
    windows and macos (a desktop session)."""

    @property
    def model_memory_gib(self) -> float:
        """What one model server may use: (memory - system reserve) x ``EDGE_MEMORY_HEADROOM``."""
        reserved = (self.system_reserved_gib if self.system_reserved_gib is not None
                    else EDGE_SYSTEM_RESERVED_GIB[self.os])
        return round(max(self.memory_gib - reserved, 0.0) * EDGE_MEMORY_HEADROOM, 2)


EDGE_SYSTEM_RESERVED_GIB: Final[Mapping[str, float]] = {"linux": 1.0, "windows": 4.0, "macos": 4.0}
EDGE_MEMORY_HEADROOM: Final = 0.9
"""Share of the non-reserved device memory a model server is given (page cache, spikes)."""
EDGE_DELIVERY_OS: Final[Mapping[str, tuple[str, ...]]] = {
    "kubernetes": ("linux", "windows"),  # windows: AKS Edge Essentials runs Linux nodes in a VM
    "iot-edge": ("linux", "windows"),  # windows: IoT Edge for Linux on Windows (EFLOW)
    "foundry-local": ("windows", "macos"),  # a desktop runtime, never a container (D8)
}
IOT_TAG_KEY_PATTERN: Final = r"^[A-Za-z][A-Za-z0-9_]{0,63}$"


class Fleet(_Model):
    """A set of devices of one class serving one model."""

    device_class: str
    model: ModelId
    delivery: Literal["kubernetes", "iot-edge", "foundry-local"]
    engine: EdgeEngineName | None = None
    """Required for ``kubernetes`` and ``iot-edge``; ``foundry-local`` has no container."""
    context_tokens: int = Field(default=4096, ge=512)
    devices: tuple[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")], ...] = Field(default=(), strict=False)
    device_selector: dict[str, str] = Field(default_factory=dict)
    """IoT Edge target condition over device twin tags, e.g. ``{site: plant-3}``."""
    image: str | None = None
    """Default: the engine image built into the registry (pinned by its digest)."""
    auth_proxy_image: str | None = None
    """ollama only: the API-key gate (nginx) in front of the engine, which checks no key. Default:
    ``nginx:1.28.0-alpine`` where digests are not required; prod needs ``<repo>:<tag>@sha256:<digest>``."""
    priority: int = Field(default=10, ge=0, le=2_147_483_647)
    """IoT Edge only: the layered deployment's priority (the higher wins a module both set).
    Default: 10."""
    kubeconfig_config_key: str | None = None
    """Kubernetes only: the secret stack-config key holding the cluster's kubeconfig.
    Default: ``slm-platform:edgeKubeconfig-<fleet>``."""
    artifact_sha256: Sha256 | None = None
    """Default: the GGUF artifact's sha256 (ollama, llamacpp); prod requires one for GGUF fleets (an
    Ollama tag can be re-pushed). onnx-genai fleets are pinned by the artifact's git revision; set
    this to also record the sha256 of the variant's file manifest."""
    foundry_model: Annotated[str, Field(pattern=r"^[A-Za-z0-9][\w.-]*(:\d+)?$")] | None = None
    """foundry-local only: the Foundry Local alias or model id. Default: the catalogue model id as
    an alias (the CLI picks the variant for the device's hardware). Prod requires a versioned
    model id, e.g. ``Phi-4-mini-instruct-generic-cpu:1``."""

    def kubeconfig_key(self, fleet_name: str) -> str:
        """The config key ``pulumi.Config().require_secret`` reads the kubeconfig from."""
        return self.kubeconfig_config_key or f"{CONFIG_NAMESPACE}:edgeKubeconfig-{fleet_name}"

    @property
    def artifact_kind(self) -> str | None:
        """The ``ModelArtifacts`` field its engine loads (its registration), None for foundry-local."""
        return EDGE_ENGINE_ARTIFACT.get(self.engine) if self.engine is not None else None

    def quantization(self, model: ModelSpec) -> str:
        """The weight format the devices load: the GGUF quantization, the ONNX one, or int4."""
        if self.artifact_kind == "gguf" and model.artifacts.gguf is not None:
            return model.artifacts.gguf.quantization
        if self.artifact_kind == "onnx" and model.artifacts.onnx is not None:
            return model.artifacts.onnx.quantization
        return "int4"  # Foundry Local's edge variants (and the memory-fit assumption without artifacts)

    def artifact_pin(self, model_id: str, model: ModelSpec) -> tuple[str, str | None]:
        """(immutable version, sha256) of what the devices load; sha256 is None when not pinned."""
        gguf, onnx = model.artifacts.gguf, model.artifacts.onnx
        if self.artifact_kind == "gguf" and gguf is not None:
            return gguf.ollama_tag, self.artifact_sha256 or gguf.sha256
        if self.artifact_kind == "onnx" and onnx is not None:
            variant = onnx.cpu_variant or onnx.cuda_variant or ""
            return f"{onnx.repo}@{onnx.revision}/{variant}".rstrip("/"), self.artifact_sha256
        return self.foundry_model or model_id, self.artifact_sha256

    def fit_error(self, path: str, model: ModelSpec, device_class_name: str,
                  device_classes: Mapping[str, DeviceClass]) -> str | None:
        """Why the model cannot run on the class (with a quantization, context or class that fits)."""
        device = device_classes[device_class_name]
        quant, ctx, memory = self.quantization(model), self.context_tokens, device.model_memory_gib

        def fits(q: str, mem: float, tokens: int = ctx) -> bool:
            return estimate(model.shape(q), memory_gib=mem, context_tokens=tokens, utilization=1.0,
                            overhead_gib=CPU_RUNTIME_OVERHEAD_GIB).fits

        fit = estimate(model.shape(quant), memory_gib=memory, context_tokens=ctx, utilization=1.0,
                       overhead_gib=CPU_RUNTIME_OVERHEAD_GIB)
        if fit.fits:
            return None
        family = ("q8_0", "q6_k", "q5_k_m", "q4_k_m", "q4_0") if self.artifact_kind == "gguf" else ()
        quants = [q for q in family if q != quant and fits(q, memory)]
        classes = sorted(n for n, c in device_classes.items() if n != device_class_name
                         and c.os == device.os and fits(quant, c.model_memory_gib))
        hints = []
        if quants:
            hints.append(f"a smaller quantization: {quants[0]} (a models.{self.model}.artifacts.gguf "
                         "tag of that quantization)")
        if fit.max_context_tokens_one_sequence >= 512:
            hints.append(f"context_tokens <= {fit.max_context_tokens_one_sequence}")
        if classes:
            hints.append(f"a device class that fits: {', '.join(classes)}")
        hint = "; use " + ", or ".join(hints) if hints else "; no listed quantization or device class fits"
        return (f"{path}: {self.model} ({quant}) needs {fit.weights_gib} GiB of weights + "
                f"{fit.kv_per_sequence_gib} GiB KV cache at {ctx} tokens + {CPU_RUNTIME_OVERHEAD_GIB} GiB "
                f"runtime, more than the {memory} GiB device class {device_class_name!r} gives a model "
                f"({device.memory_gib:g} GiB less the system reserve, {EDGE_MEMORY_HEADROOM:.0%} headroom)"
                f"{hint}")

