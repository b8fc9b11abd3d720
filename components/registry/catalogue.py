"""Which artifacts a stack's registry must hold, and where: plain values from the settings.

The mirror (``slmctl models sync``) copies exactly these; the serving workloads' fill init
containers read exactly these. One function decides both, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Protocol

from components._naming import azure_name
from components.domain import DEPLOYMENT_ARTIFACT, AksDeployment, Fleet, ModelSpec
from components.registry.supply import ArtifactKind, artifact_prefix, gguf_revision


class _Fleets(Protocol):
    @property
    def fleets(self) -> Mapping[str, Fleet]: ...


class StackCatalogue(Protocol):
    """What this module reads of a stack (``stacks.settings.EnvironmentSettings`` is one): the models, the
    cluster deployments, the edge fleets and whether the serving pods load weights from the registry."""

    @property
    def models(self) -> Mapping[str, ModelSpec]: ...

    @property
    def edge(self) -> _Fleets: ...

    @property
    def weights_from_registry(self) -> bool: ...

    def aks_deployments(self) -> Mapping[str, AksDeployment]: ...

SAFETENSORS_PATTERNS: Final = (
    "*.safetensors", "*.json", "*.txt", "*.model", "*.jinja", "*.tiktoken", "*.py", "LICENSE*", "*.md",
)
"""What vLLM loads from a checkpoint (weights, index, configs, tokenizer, templates) plus the licence.
Never ``*.bin``/``*.pth``/``original/*``: pickled duplicates of the same weights."""


@dataclass(frozen=True, kw_only=True)
class ArtifactSource:
    """One pinned artifact of one catalogue model and its place in the registry."""

    model: str
    kind: ArtifactKind
    repo: str
    """Hub repo id, or the Ollama tag (``gguf``)."""
    revision: str
    """40-hex commit, or ``sha256-<hex>`` of the pinned GGUF blob."""
    patterns: tuple[str, ...]
    container: str
    gated: bool = False
    manifest_sha256: str | None = None
    """The artifact's pinned manifest digest (``artifacts.<kind>.manifest_sha256``), when the stack pins it."""

    @property
    def prefix(self) -> str:
        """``<model>/<revision>/`` inside ``container``."""
        return artifact_prefix(self.model, self.revision)


def family_container(family: str) -> str:
    """The blob container of a model family (ModelRegistry creates one per family)."""
    return azure_name("blob_container", family)


def storage_account_url(account_name: str) -> str:
    """The blob endpoint (public DNS name; resolves to the private endpoint inside the VNet)."""
    return f"https://{account_name}.blob.core.windows.net"


def onnx_patterns(cpu_variant: str | None, cuda_variant: str | None) -> tuple[str, ...]:
    """Only the variant folders of an ONNX repo."""
    return tuple(f"{v.strip('/')}/*" for v in (cpu_variant, cuda_variant) if v)


def artifact_sources(settings: StackCatalogue) -> list[ArtifactSource]:
    """Every artifact a stack serves from the registry (AKS and edge), sorted by model.

    GGUF artifacts are mirrored only when their blob digest is pinned (``gguf.sha256``): the digest is
    their registry revision, so an unpinned Ollama tag cannot be served from the registry."""
    def served_from(kind: str) -> set[str]:  # by the registered artifact kind of each cluster engine
        return {d.model for d in settings.aks_deployments().values() if DEPLOYMENT_ARTIFACT[d.target] == kind}

    used_vllm, used_onnx, used_gguf = served_from("safetensors"), served_from("onnx"), served_from("gguf")
    used_onnx |= {f.model for f in settings.edge.fleets.values() if f.engine == "onnx-genai"}
    used_gguf |= {f.model for f in settings.edge.fleets.values()
                  if f.engine in ("ollama", "llamacpp") and f.delivery != "foundry-local"}
    out: list[ArtifactSource] = []
    for model_id, model in sorted(settings.models.items()):
        container = family_container(model.family)
        st, onnx = model.artifacts.safetensors, model.artifacts.onnx
        if st is not None and model_id in used_vllm:
            out.append(ArtifactSource(model=model_id, kind="safetensors", repo=st.repo, revision=st.revision,
                                      patterns=SAFETENSORS_PATTERNS, container=container, gated=model.gated,
                                      manifest_sha256=st.manifest_sha256))
        if onnx is not None and model_id in used_onnx:
            patterns = onnx_patterns(onnx.cpu_variant, onnx.cuda_variant)
            if patterns:
                out.append(ArtifactSource(model=model_id, kind="onnx", repo=onnx.repo, revision=onnx.revision,
                                          patterns=patterns, container=container,
                                          manifest_sha256=onnx.manifest_sha256))
        gguf = model.artifacts.gguf
        if gguf is not None and gguf.sha256 is not None and model_id in used_gguf:
            out.append(ArtifactSource(model=model_id, kind="gguf", repo=gguf.ollama_tag,
                                      revision=gguf_revision(gguf.sha256), patterns=("*", "*/*"),
                                      container=container, manifest_sha256=gguf.manifest_sha256))
    return out


def source_for(settings: StackCatalogue, model_id: str, kind: ArtifactKind) -> ArtifactSource | None:
    """The artifact of one model and kind, when the stack mirrors it."""
    return next((s for s in artifact_sources(settings) if s.model == model_id and s.kind == kind), None)


def edge_published(settings: StackCatalogue, source: ArtifactSource) -> bool:
    """Whether the mirror also publishes ``source`` to the registry as an OCI artifact: a container edge
    fleet loads it from there (staging, prod), see ``components/registry/oci.py``."""
    if not settings.weights_from_registry:
        return False
    kinds = {"onnx-genai": "onnx", "ollama": "gguf", "llamacpp": "gguf"}
    return any(f.model == source.model and kinds.get(f.engine or "") == source.kind
               for f in settings.edge.fleets.values() if f.delivery != "foundry-local")


def registry_login_server(registry_name: str) -> str:
    """The ACR login server Azure gives a registry name: lower case plus ``.azurecr.io`` (AzureCloud; public
    DNS, resolving to its private endpoint where linked). A registry with an auto-generated domain-name-label
    scope gets a hashed name instead; ``ModelRegistry`` never sets one."""
    return f"{registry_name.lower()}.azurecr.io"
