"""Entry point the Pulumi engine runs (``pulumi preview --policy-pack policies``): build the pack and serve.

The engine starts ``python -u -m pulumi.policy <engine-address> .`` in the pack's folder, which runs this
file with ``runpy`` as a script. ``PolicyPack(...)`` starts the analyzer gRPC server, prints its port and
blocks: never import this module (tests and tools import ``policies.pack``).

The pack is self-contained: everything it imports is in this folder or in its ``requirements.txt``.
The folder is the ``policies`` package wherever it was copied (the repo, or where ``pulumi policy
publish`` unpacked it under another name), so it registers itself under that name before importing
its modules: no ``sys.path`` entry is added, and no other ``policies`` on the path (the repo's editable
install, a worktree's) can stand in for it. ``tests/gate/test_gate_pack_package.py`` runs a copy outside
the repo.
"""

import importlib.machinery
import importlib.util
import os
import sys
from pathlib import Path

PACKAGE = "policies"
HERE = Path(__file__).resolve().parent
_spec = importlib.machinery.ModuleSpec(PACKAGE, None, is_package=True)
_spec.submodule_search_locations = [str(HERE)]
sys.modules[PACKAGE] = importlib.util.module_from_spec(_spec)

from pulumi_policy import PolicyPack  # noqa: E402 (after the package is registered)

from policies import conversion  # noqa: E402
from policies.pack import PACK_NAME, build_policies, environment_for_stack, initial_config  # noqa: E402

conversion.install()  # each resource's properties converted once per request, not once per policy
STACK = os.environ.get("PULUMI_STACK")
POLICIES = list(build_policies())
conversion.defer_full_collections()  # what a preview's calls share is long-lived: collected once per preview
PolicyPack(
    name=PACK_NAME,
    policies=POLICIES,  # pyright: ignore[reportArgumentType]  # List is invariant
    initial_config=initial_config(environment_for_stack(STACK), STACK),
    description="slm-platform guardrails: Foundry, AKS, data services, Kubernetes workloads, GPU cost, "
    "monitoring, edge, and the seed's serving defects.",
    display_name="slm-platform policies",
    provider="azure",
    tags=["azure", "kubernetes", "slm"],
)
