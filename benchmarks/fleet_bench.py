"""How planning time grows with fleet size: build fleets of 10, 100 and 1,000 devices under the recorder.

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/fleet_bench.py``. Prints the total time of one
``slmctl.recorder.record`` run and the time per device, per delivery. It asserts nothing about time
(machines differ); the resource count is printed so a per-device resource would show at once.
"""

from __future__ import annotations

import time
from typing import Any

import pulumi

from components.edge_device import EdgeDevice, EdgeDeviceArgs, EdgeHub, EdgeHubArgs
from slmctl.recorder import record
from stacks.settings import EnvironmentSettings

SIZES = (10, 100, 1000)
IMAGE = "slmdevacr.azurecr.io/ollama/ollama:0.12.6@sha256:" + "b" * 64
MODEL: dict[str, Any] = {
    "family": "phi4-mini", "parameters_billion": 3.8, "layers": 32, "kv_heads": 8, "head_dim": 128,
    "max_context_tokens": 131072,
    "artifacts": {"gguf": {"ollama_tag": "phi4-mini:3.8b-q4_K_M", "sha256": "a" * 64}},
}


def settings(delivery: str, devices: int) -> EnvironmentSettings:
    """One fleet of ``devices`` named devices."""
    return EnvironmentSettings.model_validate({
        "tier": "dev", "name_prefix": "slmbench", "tags": {"owner": "bench", "cost_center": "cc-0001"},
        "models": {"phi-4-mini": MODEL},
        "edge": {
            "device_classes": {"nuc": {"architecture": "amd64", "memory_gib": 16, "cpus": 8}},
            "fleets": {"fleet": {"device_class": "nuc", "model": "phi-4-mini", "delivery": delivery,
                                 "engine": "ollama", "image": IMAGE,
                                 "devices": [f"device-{i:05d}" for i in range(devices)]}},
        },
    })


def program(s: EnvironmentSettings) -> None:
    """The edge part of the platform for ``s``."""
    fleet = s.edge.fleets["fleet"]
    hub = EdgeHub("edge", EdgeHubArgs(resource_group_name="rg")) if fleet.delivery == "iot-edge" else None
    EdgeDevice("edge-fleet", EdgeDeviceArgs(
        fleet_name="fleet", fleet=fleet, device_class_name="nuc", device_class=s.edge.device_classes["nuc"],
        model_id="phi-4-mini", model=s.models["phi-4-mini"],
        kubeconfig=pulumi.Output.secret("apiVersion: v1") if fleet.delivery == "kubernetes" else None,
        iot_hub_host_name=hub.hub_host_name if hub is not None else None))


def main() -> None:
    """Print one line per (delivery, size)."""
    record(lambda: program(settings("kubernetes", 1)))  # warm imports so the first row is fair
    print(f"{'delivery':<12} {'devices':>8} {'resources':>10} {'total s':>9} {'ms/device':>10}")
    for delivery in ("kubernetes", "iot-edge"):
        for size in SIZES:
            s = settings(delivery, size)
            start = time.perf_counter()
            rec = record(lambda s=s: program(s))
            total = time.perf_counter() - start
            print(f"{delivery:<12} {size:>8} {len(rec.registrations):>10} {total:>9.3f} "
                  f"{total / size * 1000:>10.3f}")


if __name__ == "__main__":
    main()
