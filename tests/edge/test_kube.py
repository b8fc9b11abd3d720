"""The edge pod hardening stays equal to the cluster's (components._security)."""

from __future__ import annotations

import re
from typing import Any

from components._security import container_security, pod_security
from components.edge.kube import _pod_security, _security_context
from components.engines.spec import NON_ROOT_UID


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _same(wire: dict[str, Any], typed: Any) -> None:
    for key, value in wire.items():
        got = getattr(typed, _snake(key))
        if isinstance(value, dict):
            _same(value, got)
        else:
            assert got == value, key


def test_container_context_matches_the_shared_helper() -> None:
    _same(_security_context(NON_ROOT_UID), container_security(NON_ROOT_UID))


def test_pod_context_matches_the_shared_helper() -> None:
    _same(_pod_security(NON_ROOT_UID), pod_security(NON_ROOT_UID))
