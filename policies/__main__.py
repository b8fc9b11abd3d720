"""Entry point the Pulumi engine runs (``pulumi preview --policy-pack policies``): build the pack and serve.

The engine starts ``python -u -m pulumi.policy <engine-address> .`` in this directory, which runs this
file with ``runpy``. ``PolicyPack(...)`` starts the analyzer gRPC server, prints its port and blocks:
never import this module (tests and tools import ``policies.pack``).
"""

import os
import sys
from pathlib import Path

# The pack imports the same ``policies.rules`` modules as the components: put the repo root first.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import PolicyPack

from policies import conversion
from policies.pack import PACK_NAME, build_policies, environment_for_stack, initial_config

conversion.install()  # each resource's properties converted once per request, not once per policy
STACK = os.environ.get("PULUMI_STACK")
PolicyPack(
    name=PACK_NAME,
    policies=list(build_policies()),  # pyright: ignore[reportArgumentType]  # List is invariant
    initial_config=initial_config(environment_for_stack(STACK), STACK),
    description="slm-platform guardrails: Foundry, AKS, data services, Kubernetes workloads, GPU cost, "
    "monitoring, edge, and the seed's serving defects.",
    display_name="slm-platform policies",
    provider="azure",
    tags=["azure", "kubernetes", "slm"],
)
