"""KEDA scaling plan for one workload (pure): which triggers, and the replica bounds.

Seed defect D11: GPU (or CPU) utilization sits near 100 % while vLLM batches, so it says nothing
about load. vLLM and the ONNX server scale on their queue depth (waiting requests) through a
Prometheus trigger. Ollama has no metrics at all (D4), so it is the one engine that scales on CPU
utilization — a CPU-bound llama.cpp engine's CPU use does track its load, and that is the only
signal there is; on a GPU pool it is a weak signal and we say so in the docs.

Scale-from-zero (dev tiers, ``min == 0``): with no pod there is no queue metric, and a CPU trigger
cannot scale from zero either, so a cron trigger keeps one replica during working hours.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

from components.engines.spec import ContainerSpec

CPU_TARGET_UTILIZATION_PERCENT: Final = 70
WORKING_HOURS: Final = {"timezone": "Etc/UTC", "start": "0 7 * * 1-5", "end": "0 19 * * 1-5"}
"""When a scale-to-zero workload is kept at one replica (UTC, Monday to Friday 07:00-19:00)."""


@dataclass(frozen=True, kw_only=True)
class Trigger:
    """One KEDA trigger; Prometheus triggers get ``serverAddress`` from the component."""

    type: Literal["prometheus", "cpu", "cron"]
    metadata: Mapping[str, str] = field(default_factory=dict[str, str])
    metric_type: Literal["AverageValue", "Utilization", "Value"] | None = None


@dataclass(frozen=True, kw_only=True)
class ScalePlan:
    """Replica bounds and triggers for a ``ScaledObject``."""

    min_replicas: int
    max_replicas: int
    triggers: tuple[Trigger, ...]


def scale_plan(spec: ContainerSpec, *, min_replicas: int, max_replicas: int, queue_threshold: int) -> ScalePlan:
    """The ScaledObject plan for a workload rendered as ``spec``."""
    triggers: list[Trigger] = []
    if spec.queue_metric is not None:
        triggers.append(Trigger(type="prometheus", metadata={
            "query": spec.queue_metric,
            "threshold": str(queue_threshold),
            "activationThreshold": "0",
            "ignoreNullValues": "true",
        }))
    elif spec.engine == "vllm":
        msg = "vLLM must scale on its queue metric (seed defect D11), never on CPU/GPU utilization"
        raise ValueError(msg)
    else:
        triggers.append(Trigger(type="cpu", metric_type="Utilization",
                                metadata={"value": str(CPU_TARGET_UTILIZATION_PERCENT)}))
    if min_replicas == 0:
        triggers.append(Trigger(type="cron", metadata={**WORKING_HOURS, "desiredReplicas": "1"}))
    return ScalePlan(min_replicas=min_replicas, max_replicas=max_replicas, triggers=tuple(triggers))
