"""Generated stack files for the scale benchmarks: prod with N vLLM deployments, or with N edge fleets.

Both start from ``stacks/Pulumi.prod.yaml`` (so every prod default, the deploy runner, the monitoring
receivers and the Foundry deployment stay) and change one dimension:

- ``vllm_settings(n)``: ``n`` vLLM deployments of phi-4-mini (two replicas each: prod's spread rule),
  four to an A100 pool of 8 nodes (``gpua100``, ``gpua101``, ...) so every pool fits its pods
  (``slm-gpu-pool-capacity``);
- ``fleet_settings(n)``: the prod deployments and ``n`` IoT Edge fleets of the prod plant gateway, each
  selecting its own site.

The files are written as ``Pulumi.prod.yaml`` into a directory of their own (the stack name must match
the file name, and ``prod`` gives the prod levels), valid under the real settings. The prod gate passes
them but for one mandatory finding once they have two pools: the monthly cost bound
(``slm-cost-monthly-budget``; prod's policy config caps any stack at $40,000). ``python -m
benchmarks.generated_stacks vllm|fleets N DIR`` writes one; tests load them through ``load_stack_file``.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any, Final

import yaml

ROOT: Final = Path(__file__).resolve().parent.parent
BASE: Final = ROOT / "stacks" / "Pulumi.prod.yaml"
KEY: Final = "slm-platform:settings"
NODES_PER_POOL: Final = 8
"""``gpua100``'s max_count in prod: 8 single-GPU nodes."""
REPLICAS: Final = 2
DEPLOYMENTS_PER_POOL: Final = NODES_PER_POOL // REPLICAS


def _base() -> dict[str, Any]:
    return yaml.safe_load(BASE.read_text(encoding="utf-8"))


def vllm_settings(n: int) -> dict[str, Any]:
    """The prod stack document with ``n`` vLLM deployments (and its Foundry deployment) instead of three."""
    doc = _base()
    settings = doc["config"][KEY]
    template = copy.deepcopy(settings["deployments"]["phi-4-mini"])
    template.pop("slo", None)
    template.pop("image", None)  # prod's default is the same digest-pinned image; 490 copies would not fit PULUMI_CONFIG
    template["replicas"] = {"min": REPLICAS, "max": REPLICAS}
    pool = settings["cluster"]["pools"].pop("gpua100")
    pools = -(-n // DEPLOYMENTS_PER_POOL)
    settings["cluster"]["pools"] = {f"gpua{100 + i}": {**pool, "max_count": NODES_PER_POOL} for i in range(pools)}
    deployments: dict[str, Any] = {
        f"phi-4-mini-{i:03d}": {**template, "pool": f"gpua{100 + i // DEPLOYMENTS_PER_POOL}"} for i in range(n)}
    deployments["phi-4-mini-managed"] = settings["deployments"]["phi-4-mini-managed"]
    settings["deployments"] = deployments
    return doc


def fleet_settings(n: int) -> dict[str, Any]:
    """The prod stack document with ``n`` IoT Edge fleets (one per site) instead of one."""
    doc = _base()
    edge = doc["config"][KEY]["edge"]
    template = edge["fleets"]["plant-floor"]
    edge["fleets"] = {f"plant-{i:03d}": {**copy.deepcopy(template), "device_selector": {"site": f"plant-{i:03d}"}}
                      for i in range(n)}
    return doc


def write(doc: dict[str, Any], directory: Path) -> Path:
    """``directory/Pulumi.prod.yaml`` holding ``doc``; its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "Pulumi.prod.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def main(argv: list[str]) -> None:
    """``vllm|fleets N DIR``: write the generated stack file and print its path."""
    kind, n, directory = argv[0], int(argv[1]), Path(argv[2])
    doc = vllm_settings(n) if kind == "vllm" else fleet_settings(n)
    print(write(doc, directory))


if __name__ == "__main__":
    main(sys.argv[1:])
