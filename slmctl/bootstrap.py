"""``slmctl bootstrap-targets``: the URNs ``pulumi up --target`` must create before the in-VNet runner exists.

The deploy runner (``components.deploy_runner``) is what ``pulumi up`` runs on for stacks whose data planes are
private, so it has to exist before the full update: the deploy workflow first runs ``pulumi up --target`` over
these URNs on a GitHub-hosted runner. They are the runner's component, its children and, transitively, every
resource and parent they depend on, computed from the real program under the mock monitor (the same URNs the
engine computes). The set must be ARM-only: a Kubernetes object, an image push or an IoT Hub REST call in it
could not be reached from the hosted runner, which is the whole reason for the runner.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from slmctl.recorder import Recording, Registration

RUNNER_TYPE: Final = "slm:platform:DeployRunner"
DATA_PLANE_PREFIXES: Final = ("kubernetes:", "docker:", "pulumi-python:dynamic:", "pulumi:providers:kubernetes")


class BootstrapError(ValueError):
    """The stack has no runner to bootstrap, or its bootstrap would need a data plane."""


def bootstrap_targets(recording: Recording) -> list[str]:
    """Sorted URNs of the runner, its children and everything they depend on (parents included)."""
    by_urn = {r.urn: r for r in recording.registrations}
    roots = [r.urn for r in recording.registrations if r.type == RUNNER_TYPE]
    if not roots:
        msg = (f"stack {recording.stack!r} has no deploy runner to bootstrap (deployer.location is not "
               "'in-vnet-runner'); its `pulumi up` runs where it is, without a bootstrap step")
        raise BootstrapError(msg)
    wanted = set(roots) | {r.urn for r in recording.registrations if _under(r.urn, set(roots), by_urn)}
    todo = list(wanted)
    while todo:
        reg = by_urn.get(todo.pop())
        if reg is None:
            continue
        for urn in [*reg.dependencies, *(u for us in reg.property_dependencies.values() for u in us),
                    *([reg.parent] if reg.parent else [])]:
            if urn in by_urn and urn not in wanted:
                wanted.add(urn)
                todo.append(urn)
    data_plane = sorted(u for u in wanted if by_urn[u].type.startswith(DATA_PLANE_PREFIXES))
    if data_plane:
        msg = ("the deploy runner depends on data-plane resources a hosted runner cannot reach: "
               f"{', '.join(data_plane)}; keep the runner ARM-only")
        raise BootstrapError(msg)
    return sorted(wanted)


def _under(urn: str, roots: set[str], by_urn: Mapping[str, Registration]) -> bool:
    """``urn`` is a descendant (through parents) of one of ``roots``."""
    reg = by_urn.get(urn)
    seen: set[str] = set()
    while reg is not None and reg.parent and reg.parent not in seen:
        seen.add(reg.parent)
        if reg.parent in roots:
            return True
        reg = by_urn.get(reg.parent)
    return False


__all__: Sequence[str] = ("BootstrapError", "bootstrap_targets")
