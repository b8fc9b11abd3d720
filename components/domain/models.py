"""A model and the artifacts each engine serves it from."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from components.domain._base import FrozenModel as _Model
from components.domain._base import GitRevision, Sha256
from components.domain.catalogue import FAMILY_SERVING, VALID_TOOL_CALL_PARSERS, ModelFamily
from policies.rules.memory_fit import ModelShape

ModelId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{1,38}[a-z0-9]$")]


class SafetensorsArtifact(_Model):
    """A Hugging Face checkpoint that vLLM serves (BF16 or pre-quantized)."""

    repo: Annotated[str, Field(pattern=r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")]
    revision: GitRevision
    """The commit of the repo, never a branch: weights must not change under a running stack."""
    quantization: Literal["bf16", "fp8", "awq-int4", "gptq-int4"] = "bf16"
    """Default: bf16. A quantized checkpoint is detected by vLLM from its config (seed defect D2:
    never pass ``--quantization awq`` for a BF16 repo)."""
    manifest_sha256: Sha256 | None = None
    """The registry manifest's own sha256 (``slmctl models sync`` prints it). Pinned, every fill step checks
    the manifest against it before any file, so whoever can write the registry cannot swap the manifest
    and the files together. Default: none (the manifest is trusted as the mirror wrote it)."""


class OnnxArtifact(_Model):
    """ONNX Runtime GenAI weights (e.g. ``microsoft/Phi-4-mini-instruct-onnx``)."""

    repo: Annotated[str, Field(pattern=r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")]
    revision: GitRevision
    cpu_variant: str | None = None
    """Sub-folder with the CPU build, e.g. ``cpu_and_mobile/cpu-int4-rtn-block-32-acc-level-4``."""
    cuda_variant: str | None = None
    """Sub-folder with the CUDA build, e.g. ``gpu/gpu-int4-rtn-block-32``."""
    quantization: Literal["int4", "fp16"] = "int4"
    manifest_sha256: Sha256 | None = None
    """The registry manifest's own sha256 (``slmctl models sync`` prints it). Pinned, every fill step checks
    the manifest against it before any file, so whoever can write the registry cannot swap the manifest
    and the files together. Default: none (the manifest is trusted as the mirror wrote it)."""


class GgufArtifact(_Model):
    """A GGUF quantization as Ollama (or llama.cpp) serves it."""

    ollama_tag: Annotated[str, Field(pattern=r"^[a-z0-9][\w.-]*(/[\w.-]+)?:[\w.-]+$")]
    """The Ollama library tag, e.g. ``phi4-mini:3.8b-q4_K_M``."""
    sha256: Sha256 | None = None
    """Digest of the model blob (``ollama show --modelfile`` FROM line), so devices and pods can
    verify what they pulled. Default: none; prod requires it (policy slm-edge-artifact-pinned)."""
    quantization: Literal["q8_0", "q6_k", "q5_k_m", "q4_k_m", "q4_0"] = "q4_k_m"
    manifest_sha256: Sha256 | None = None
    """The registry manifest's own sha256 (``slmctl models sync`` prints it). Pinned, every fill step checks
    the manifest against it before any file, so whoever can write the registry cannot swap the manifest
    and the files together. Default: none (the manifest is trusted as the mirror wrote it)."""


class FoundryModel(_Model):
    """A model from the Azure AI Foundry catalogue."""

    format: str = "Microsoft"
    name: str
    version: str


class ModelArtifacts(_Model):
    """Where each engine gets this model; an engine with no artifact cannot serve it."""

    safetensors: SafetensorsArtifact | None = None
    onnx: OnnxArtifact | None = None
    gguf: GgufArtifact | None = None
    foundry: FoundryModel | None = None


class ModelSpec(_Model):
    """One model: the spine every target (Foundry, AKS, edge) is derived from."""

    family: ModelFamily
    parameters_billion: float = Field(gt=0, le=200)
    layers: int = Field(ge=1)
    kv_heads: int = Field(ge=1)
    head_dim: int = Field(ge=1)
    max_context_tokens: int = Field(ge=512)
    artifacts: ModelArtifacts
    tool_call_parser: str | None = None
    """Default: the family's parser (Phi-4-mini ``phi4_mini_json``, Qwen3 ``hermes``, Gemma 3
    ``pythonic``)."""
    chat_template: str | None = None
    """Default: the family's tool chat template, when it needs one."""
    trust_remote_code: bool = False
    """Default: off. Runs the repo's Python in the server; allow it per model, knowingly (D13)."""
    gated: bool = False
    """Default: not gated. A gated Hugging Face repo (Gemma) needs a token: it comes from the Pulumi
    secret ``slm-platform:huggingFaceToken`` through Key Vault, never from an env literal (D10)."""

    @field_validator("tool_call_parser")
    @classmethod
    def _known_parser(cls, value: str | None) -> str | None:
        if value is not None and value not in VALID_TOOL_CALL_PARSERS:
            msg = f"unknown vLLM tool-call parser {value!r}; use one of: {', '.join(sorted(VALID_TOOL_CALL_PARSERS))}"
            raise ValueError(msg)
        return value

    @property
    def resolved_tool_call_parser(self) -> str:
        """The parser vLLM is started with."""
        return self.tool_call_parser or FAMILY_SERVING[self.family].tool_call_parser

    @property
    def resolved_chat_template(self) -> str | None:
        """The chat template vLLM is started with, if any."""
        return self.chat_template or FAMILY_SERVING[self.family].chat_template

    def shape(self, quantization: str) -> ModelShape:
        """The memory-relevant numbers of this model at one quantization."""
        return ModelShape(parameters_billion=self.parameters_billion, layers=self.layers,
                          kv_heads=self.kv_heads, head_dim=self.head_dim, quantization=quantization)

