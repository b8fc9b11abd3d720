"""``slmctl plan``: what ``pulumi up`` would create, computed offline from the real program."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pulumi

from policies.rules import cost
from policies.rules.tokens import normalize_type
from slmctl.loader import REPO_ROOT, STACKS_DIR, LoadedStack
from slmctl.recorder import SECRET_SIG, SECRET_VALUE_SIG, Recording, record, redact

BUILD_DIR: Final = REPO_ROOT / "build"


def earlier_targets(loaded: LoadedStack, recording: Recording) -> list[str]:
    """URNs the documented steps before the full ``pulumi up`` create with ``pulumi up --target``.

    The deploy runner's bootstrap and the registry step (:func:`step_targets`), from the same functions
    those commands print, over an offline recording of the stack.
    """
    return sorted({*step_targets(loaded, recording, "bootstrap"), *step_targets(loaded, recording, "registry")})


STEPS: Final = ("bootstrap", "registry", "full")
"""The documented first deploy of a stack with no state, in order: the deploy runner's targeted up
(``slmctl bootstrap-targets``), the registry's targeted up (``slmctl models targets``; then ``models sync``),
the full ``pulumi up``. Each step's preview runs the pack over EVERY registration of the program, targeted
or not (pulumi/pulumi pkg/resource/deploy/step_generator.go: ``analyzeAll`` runs before the targeting
decision, and ``AnalyzeResources`` ranges over every new state, skipped creates included)."""


def step_targets(loaded: LoadedStack, recording: Recording, step: str) -> list[str]:
    """The URNs ``step``'s ``pulumi up --target`` changes, as deploy.yml passes them (``--target`` and
    ``SLM_POLICY_TARGETS``): ``slmctl bootstrap-targets``, ``slmctl models targets``; none for the full up."""
    if step == "bootstrap":
        from slmctl.bootstrap import RUNNER_TYPE, bootstrap_targets

        return bootstrap_targets(recording) if any(r.type == RUNNER_TYPE for r in recording.registrations) else []
    if step == "registry":
        from slmctl.models import stack_registry_targets

        return stack_registry_targets(loaded, recording.registrations)
    return []


def existing_before(loaded: LoadedStack, recording: Recording, step: str) -> list[str]:
    """URNs the documented steps before ``step`` created (in the state at ``step``'s preview)."""
    if step == "bootstrap":
        return []
    if step == "registry":
        return step_targets(loaded, recording, "bootstrap")
    return earlier_targets(loaded, recording)


def record_stack(loaded: LoadedStack, *, type_aliases: bool = False, first_preview: bool = False,
                 after_targeted: bool = False, step: str | None = None) -> Recording:
    """Run ``stacks.platform.build`` for a loaded stack under the mock monitor (see ``record``).

    ``step`` (with ``first_preview``, one of :data:`STEPS`): the preview of that step of a first deploy in
    the documented order, where what :func:`existing_before` lists exists already and answers with its
    outputs. ``after_targeted`` is ``step="full"``.
    """
    step = "full" if after_targeted and step is None else step
    existing = frozenset(existing_before(loaded, record_stack(loaded), step)) if first_preview and step \
        else frozenset()

    def program() -> None:
        # Here, not at the top: `gate` analyzing a recording plan left never loads the program and its
        # provider SDKs (0.4 s), and a plan imports them with the collector paused (slmctl.recorder).
        from stacks.platform import PlatformSecrets, build

        config = pulumi.Config("slm-platform")
        outputs = build(loaded.settings, PlatformSecrets.from_config(config, loaded.settings))
        for key, value in outputs.items():
            pulumi.export(key, value)

    return record(program, stack=loaded.stack, config=loaded.config, secret_keys=loaded.secret_keys,
                  type_aliases=type_aliases, first_preview=first_preview, existing=existing)


@dataclass(frozen=True)
class Plan:
    """A recorded stack in the shape of ``build/<stack>/plan.json``."""

    loaded: LoadedStack
    recording: Recording

    def document(self) -> dict[str, Any]:
        """The plan.json document: sorted, secrets redacted, integral floats as ints."""
        return {
            "stack": self.loaded.stack,
            "tier": self.loaded.settings.tier,
            "estimated_monthly_usd": cost.monthly_total(self.cost_lines),
            "estimated_monthly_cost": [
                {"resource": line.resource, "item": line.item, "what": line.what, "usd": line.usd,
                 **({"unpriced": line.unpriced} if line.unpriced is not None else {})}
                for line in self.cost_lines],
            "resources": [
                {
                    "urn": r.urn,
                    "type": r.type,
                    "name": r.name,
                    "parent": r.parent if r.parent and "pulumi:pulumi:Stack::" not in r.parent.split("$")[-1]
                    else None,
                    "custom": r.custom,
                    "protect": r.protect,
                    "inputs": redact(r.inputs),
                    "dependencies": r.dependencies,
                    # Only where a resource moved (issue 16): plans of unmoved stacks keep their bytes.
                    **({"aliases": r.aliases} if r.aliases else {}),
                }
                for r in self.recording.registrations
            ],
            "outputs": redact(self.recording.outputs),
        }

    def to_json(self) -> str:
        """Deterministic JSON: same stack file in, same bytes out."""
        return self._json

    @functools.cached_property
    def _json(self) -> str:
        """Encoded once: ``plan --json`` writes plan.json and prints the same text, and ``indent`` makes
        ``json.dumps`` use its pure-Python encoder (0.3–0.6 s at 2,542 resources)."""
        return json.dumps(self.document(), indent=2, sort_keys=True) + "\n"

    def write(self, out_dir: Path | None = None) -> Path:
        """Write ``plan.json`` into ``out_dir`` (default: ``default_out_dir``) atomically; return its path."""
        out = (out_dir or default_out_dir(self.loaded.stack, self.loaded.path)) / "plan.json"
        write_atomic(out, self.to_json())
        return out

    @functools.cached_property
    def cost_lines(self) -> tuple[cost.CostLine, ...]:
        """The budget policy's estimate of this plan (``estimate_recording``), computed once."""
        return tuple(estimate_recording(self.recording))

    def counts(self) -> Counter[str]:
        """Registrations by type token (components and providers included)."""
        return Counter(r.type for r in self.recording.registrations)

    def summary(self) -> PlanSummary:
        """What ``pulumi up`` would create, split the way ``pulumi preview`` reports it."""
        regs = self.recording.registrations
        created = [r for r in regs if not r.read]
        by_urn = {r.urn: r for r in regs}
        by_component: Counter[str] = Counter()
        for r in created:
            top = r
            while top.parent in by_urn and not by_urn[top.parent].type.startswith("pulumi:pulumi:Stack"):
                top = by_urn[top.parent]
            by_component[top.type.rsplit(":", 1)[-1]] += 1
        return PlanSummary(
            create=len(created),
            components=sum(1 for r in created if not r.custom),
            providers=sum(1 for r in created if r.type.startswith("pulumi:providers:")),
            resources=sum(1 for r in created if r.custom and not r.type.startswith("pulumi:providers:")),
            reads=len(regs) - len(created),
            by_component=dict(sorted(by_component.items(), key=lambda kv: (-kv[1], kv[0]))))


@dataclass(frozen=True)
class PlanSummary:
    """``+N to create``: components, providers and resources, and what each top-level component brings."""

    create: int
    components: int
    providers: int
    resources: int
    """Custom resources other than providers: what the policy gate analyzes."""
    reads: int
    by_component: dict[str, int]

    def line(self) -> str:
        """``+64 to create (12 components, 2 providers, 50 resources)``."""
        reads = f"; {self.reads} existing read" if self.reads else ""
        return (f"+{self.create} to create ({_n(self.components, 'component')}, {_n(self.providers, 'provider')}, "
                f"{_n(self.resources, 'resource')}){reads}")


def estimate_recording(recording: Recording) -> list[cost.CostLine]:
    """The budget policy's estimate (``policies.rules.cost``) of the registrations the gate sends to the pack.

    The same function over the same resources as ``slm-cost-monthly-budget`` (every registration, as in
    the gate's AnalyzeStack), so plan and gate print one total: every pool at its maximum, the AKS tier,
    scale sets, VMs, ACI, provisioned throughput; what it cannot price is a line with ``unpriced`` set.
    """
    return cost.estimate([(r.type, r.name, _unwrapped(r.inputs)) for r in recording.registrations
                          if normalize_type(r.type) in cost.PRICED_TYPES])  # unwrap only what is priced


def _unwrapped(value: Any) -> Any:
    """Wire inputs as the pack's rules read them: secret envelopes opened (the SDK opens them for policies)."""
    if isinstance(value, dict):
        if value.get(SECRET_SIG) == SECRET_VALUE_SIG:
            return _unwrapped(value.get("value"))
        return {k: _unwrapped(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrapped(v) for v in value]
    return value


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def default_out_dir(stack: str, stack_file: Path) -> Path:
    """``build/<stack>`` for a shipped stack file; another file gets its own ``build/<stack>-<hash>``.

    So a scratch ``Pulumi.dev.yaml`` elsewhere never overwrites the repository's ``build/dev/plan.json``.
    """
    shipped = STACKS_DIR / f"Pulumi.{stack}.yaml"
    if stack_file.resolve() == shipped.resolve():
        return BUILD_DIR / stack
    digest = hashlib.sha256(str(stack_file.resolve()).encode()).hexdigest()[:8]
    return BUILD_DIR / f"{stack}-{digest}"


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so a reader sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def make_plan(loaded: LoadedStack, *, type_aliases: bool = False, first_preview: bool = False,
              after_targeted: bool = False, step: str | None = None) -> Plan:
    """Record a loaded stack and wrap it as a plan (``first_preview``: as a first ``pulumi preview``)."""
    return Plan(loaded=loaded, recording=record_stack(loaded, type_aliases=type_aliases, first_preview=first_preview,
                                                      after_targeted=after_targeted, step=step))
