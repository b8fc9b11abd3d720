"""Pod and container hardening shared by every workload we declare (Pod Security Standards: restricted).

Encoded unconditionally (STYLE P4): non-root, no privilege escalation, every capability dropped,
seccomp ``RuntimeDefault``, read-only root filesystem (the engine adapters list the writable
mounts), no host namespaces, no service-account token unless asked for. The UID is explicit only
because the public serving images run as root (see ``components.engines.spec.NON_ROOT_UID``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal

from pulumi_kubernetes.core.v1 import (
    CapabilitiesArgs,
    PodSecurityContextArgs,
    SeccompProfileArgs,
    SecurityContextArgs,
)

PSS_VERSION: Final = "latest"
"""``enforce-version``: the restricted profile of the cluster's own Kubernetes version."""

PssLevel = Literal["restricted", "baseline", "privileged"]


def namespace_labels(level: PssLevel = "restricted", *, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Pod Security Admission labels (enforce, audit and warn at ``level``) plus ``extra``.

    ``privileged`` exists for device-plugin namespaces (the NVIDIA GPU Operator needs host access);
    serving namespaces are always ``restricted``.
    """
    labels = {
        "pod-security.kubernetes.io/enforce": level,
        "pod-security.kubernetes.io/enforce-version": PSS_VERSION,
        "pod-security.kubernetes.io/audit": level,
        "pod-security.kubernetes.io/audit-version": PSS_VERSION,
        "pod-security.kubernetes.io/warn": level,
        "pod-security.kubernetes.io/warn-version": PSS_VERSION,
    }
    return {**labels, **(extra or {})}


def _refuse_root(uid: int, what: str) -> None:
    if uid == 0:
        msg = f"uid 0 is root; serving {what} run as a non-root UID (PSS restricted)"
        raise ValueError(msg)


def pod_security(uid: int) -> PodSecurityContextArgs:
    """Pod-level context: non-root ``uid``/``gid``, volumes group-owned by it, seccomp RuntimeDefault."""
    _refuse_root(uid, "pods")
    return PodSecurityContextArgs(
        run_as_non_root=True,
        run_as_user=uid,
        run_as_group=uid,
        fs_group=uid,
        fs_group_change_policy="OnRootMismatch",
        seccomp_profile=SeccompProfileArgs(type="RuntimeDefault"),
    )


def container_security(uid: int) -> SecurityContextArgs:
    """Container-level context: restricted profile with a read-only root filesystem."""
    _refuse_root(uid, "containers")
    return SecurityContextArgs(
        run_as_non_root=True,
        run_as_user=uid,
        run_as_group=uid,
        allow_privilege_escalation=False,
        privileged=False,
        read_only_root_filesystem=True,
        capabilities=CapabilitiesArgs(drop=["ALL"]),
        seccomp_profile=SeccompProfileArgs(type="RuntimeDefault"),
    )
