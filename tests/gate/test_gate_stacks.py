"""Shipped stacks pass their own tier's gate; insecure stack files fail with the expected policy.

These need the whole program (``stacks.platform`` and every component); they are skipped, with the
import error as the reason, until it imports.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from slmctl.gate import format_result, run_gate

REPO_ROOT = Path(__file__).resolve().parents[2]
STACK_FILES = sorted((REPO_ROOT / "stacks").glob("Pulumi.*.yaml"))
INSECURE = Path(__file__).parent / "insecure"
EXPECTED = {
    "over-budget-gpu.yaml": {"slm-cost-monthly-budget", "slm-cost-budget-headroom", "slm-gpu-vm-sizes",
                             "slm-gpu-pool-node-cap"},
    "latest-image-dev.yaml": {"slm-k8s-image-provenance", "slm-k8s-image-digest"},
}

try:
    from slmctl.loader import load_stack_file
    from slmctl.plan import record_stack
except ImportError as exc:  # the program is assembled by other issues; see module docstring
    pytestmark = [pytest.mark.slow, pytest.mark.skip(reason=f"stack program not importable yet: {exc}")]
else:
    pytestmark = [pytest.mark.slow]


@pytest.mark.parametrize("path", STACK_FILES, ids=lambda p: p.name)
def test_shipped_stack_passes_its_tier_gate(path: Path) -> None:
    loaded = load_stack_file(path)
    result = run_gate(record_stack(loaded), stack_file=path)
    assert result.environment == loaded.settings.tier == loaded.stack
    assert result.mandatory == [], format_result(result, "text")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_insecure_stack_file_fails_with_the_expected_policies(name: str) -> None:
    path = INSECURE / name
    loaded = load_stack_file(path, stack=name.removesuffix(".yaml"))
    result = run_gate(record_stack(loaded), environment=loaded.settings.tier, stack_file=path)
    assert EXPECTED[name] <= {v.policy for v in result.violations}, format_result(result, "text")
