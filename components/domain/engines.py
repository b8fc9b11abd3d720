"""Every serving engine, registered once: the tables the rest of the platform needs are derived from here.

One ``EngineRegistration`` says what an engine is: the ``target`` / fleet ``engine`` name, the artifact kind
it serves from, where it runs (an AKS or local cluster, edge devices, or Azure as a managed deployment), the
port it listens on there, the metric names it exposes, whether it checks the API key itself, and references
(``"module:function"``, resolved only when used) to its cluster adapter and, for servers this repository
owns, the argument parser its container args must satisfy. ``DEPLOYMENT_ARTIFACT``,
``EDGE_ENGINE_ARTIFACT``, ``metrics.ENGINE_METRICS``, ``metrics.KNOWN_METRICS``, the fleet ``engine`` enum
of the stack schema and the cluster adapter dispatch (``components.engines.container_for``) all read it.

The deployment kinds stay explicit classes in ``components.domain.deployments`` and in its ``Deployment`` /
``AksDeployment`` unions (pydantic needs a static discriminated union); ``tests/engines/
test_engine_registration.py`` fails naming the union or field a new engine is missing from
(docs/adding-an-engine.md).
"""

from __future__ import annotations

import functools
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

from components.domain._base import FrozenModel
from components.domain.deployments import (
    FoundryDeployment,
    OllamaDeployment,
    OnnxGenAIDeployment,
    VllmDeployment,
)
from components.domain.metrics import (
    OLLAMA,
    ONNX_GENAI,
    ONNX_SERVER_METRICS,
    VLLM,
    VLLM_METRICS,
    EngineMetrics,
    MetricKind,
)

ArtifactKind = Literal["safetensors", "onnx", "gguf", "foundry"]
"""A field of ``ModelArtifacts``: where an engine gets a model's weights."""
Placement = Literal["cluster", "edge", "managed"]
"""``cluster``: a workload on AKS or the ``local`` kubeconfig cluster. ``edge``: a container on an edge
device (Kubernetes or IoT Edge delivery). ``managed``: a deployment Azure runs (no container of ours)."""


@dataclass(frozen=True, kw_only=True)
class EngineRegistration:
    """One serving engine, as every table of the platform needs to know it."""

    name: str
    """The ``target`` of a deployment and the ``engine`` of an edge fleet."""
    title: str
    """How messages name it (``vLLM``, ``Ollama``)."""
    artifact: ArtifactKind
    """The ``ModelArtifacts`` field it serves from (a model without it cannot be served by this engine)."""
    ports: Mapping[Placement, int] = field(default_factory=dict[Placement, int])
    """The port the server listens on, per placement it runs on as a container (``cluster``, ``edge``)."""
    managed: bool = False
    """True for a deployment Azure runs (Foundry): no container, no port, no adapter."""
    gpu_only: bool = False
    """True when its image is CUDA-only: the settings refuse it on a CPU pool (seed defect D3)."""
    deployment: type[FrozenModel] | None = None
    """The deployment kind (``target: Literal[<name>]``) for ``deployments:``; None for an edge-only engine."""
    metrics: EngineMetrics | None = None
    """The metric names by role (rules and dashboards); required when it runs on a cluster."""
    series: Mapping[str, MetricKind] = field(default_factory=dict[str, MetricKind])
    """Every series its ``/metrics`` exposes (rules and panels are checked against it); empty without one."""
    enforces_api_key: bool = True
    """Whether the server checks ``Authorization: Bearer`` itself (Ollama does not: a gateway must)."""
    adapter: str | None = None
    """``"module:function"`` of its cluster adapter, ``(name, dep, model, sku, AdapterInputs) ->
    ContainerSpec`` (``components/engines/``). Required when it runs on a cluster."""
    args_parser: str | None = None
    """``"module:function"`` returning the ``argparse`` parser of a server this repository owns; its
    container args must parse with it (tests). Default: none (a third-party server)."""

    @property
    def runs_on(self) -> frozenset[Placement]:
        """Where it runs: the placements it has a port for, plus ``managed``."""
        managed: frozenset[Placement] = frozenset({"managed"}) if self.managed else frozenset()
        return frozenset(self.ports) | managed

    def resolve_adapter(self) -> Callable[..., Any]:
        """The cluster adapter function (imported on first use: the domain imports no component)."""
        if self.adapter is None:
            msg = f"engine {self.name!r} has no cluster adapter (it runs on: {', '.join(sorted(self.runs_on))})"
            raise TypeError(msg)
        return _resolve(self.adapter)

    def resolve_args_parser(self) -> Callable[[], Any] | None:
        """The function building its server's argument parser, when this repository owns the server."""
        return None if self.args_parser is None else _resolve(self.args_parser)


@functools.cache
def _resolve(reference: str) -> Callable[..., Any]:
    return pkgutil.resolve_name(reference)


ENGINES: Final[Mapping[str, EngineRegistration]] = {e.name: e for e in (
    EngineRegistration(
        name="vllm", title="vLLM", artifact="safetensors", ports={"cluster": 8000}, gpu_only=True,
        deployment=VllmDeployment, metrics=VLLM, series=VLLM_METRICS, adapter="components.engines.vllm:adapter"),
    EngineRegistration(
        name="ollama", title="Ollama", artifact="gguf", ports={"cluster": 11434, "edge": 11434}, deployment=OllamaDeployment,
        metrics=OLLAMA, enforces_api_key=False, adapter="components.engines.ollama:adapter"),
    EngineRegistration(
        name="onnx-genai", title="ONNX Runtime GenAI", artifact="onnx", ports={"cluster": 8000, "edge": 8080}, deployment=OnnxGenAIDeployment,
        metrics=ONNX_GENAI, series=ONNX_SERVER_METRICS, adapter="components.engines.onnx_genai:adapter",
        args_parser="components.engines.onnx_server.server:build_parser"),
    EngineRegistration(name="llamacpp", title="llama.cpp", artifact="gguf", ports={"edge": 8080}),
    EngineRegistration(name="foundry", title="Azure AI Foundry", artifact="foundry", managed=True,
                       deployment=FoundryDeployment),
)}
"""Every engine, by name. Adding an engine is one entry here (docs/adding-an-engine.md)."""

DEPLOYMENT_ARTIFACT: Final[Mapping[str, str]] = {
    e.name: e.artifact for e in ENGINES.values() if e.deployment is not None}
"""Deployment ``target`` -> the ``ModelArtifacts`` field it serves from (one entry per target)."""
CLUSTER_ENGINES: Final = tuple(e for e in ENGINES.values() if "cluster" in e.runs_on)
"""The engines that run as workloads on a cluster (``AksDeployment`` targets)."""
CPU_CLUSTER_ENGINES: Final = tuple(e.name for e in CLUSTER_ENGINES if not e.gpu_only)
"""The cluster engines that serve on CPU pools."""
EDGE_ENGINES: Final = tuple(e.name for e in ENGINES.values() if "edge" in e.runs_on)
"""The ``engine`` values an edge fleet may name."""
EDGE_ENGINE_ARTIFACT: Final[Mapping[str, str]] = {e.name: e.artifact for e in ENGINES.values()
                                                  if "edge" in e.runs_on}
"""Edge ``engine`` -> the ``ModelArtifacts`` field its devices load."""

if TYPE_CHECKING:
    EdgeEngineName = str
else:  # the stack schema's enum, in registration order, from the registrations
    EdgeEngineName = Literal[EDGE_ENGINES]
