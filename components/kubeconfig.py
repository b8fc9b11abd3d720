"""Turn the AKS user kubeconfig into one that logs in without a person at a keyboard.

``listClusterUserCredential(format=exec)`` answers an exec kubeconfig that runs ``kubelogin get-token
--login devicecode``: kubelogin prints a device code and waits for someone to type it into a browser,
so a ``pulumi up`` in CI hangs until it times out. ``kubelogin convert-kubeconfig -l azurecli`` rewrites
each kubelogin user to ``get-token --login azurecli --server-id <AKS server app>``: the token then comes
from the Azure CLI session that ``azure/login`` (OIDC) opened for the workflow's identity. This module is
that conversion, in Python, applied to the provider's kubeconfig (Azure/kubelogin
``pkg/internal/converter/convert.go``: ``azurecli`` keeps only ``--server-id``; the input's tenant id is
disregarded because a CLI logged in with a managed identity cannot choose one).
"""

from __future__ import annotations

from typing import Any, Final, Literal

import yaml

AKS_SERVER_APP_ID: Final = "6dae42f8-4368-4678-94ff-3960e28e3630"
"""The Entra application of the AKS API server (the audience of every AKS token; the same in every tenant)."""
EXEC_API_VERSION: Final = "client.authentication.k8s.io/v1beta1"
NonInteractiveLogin = Literal["azurecli", "workloadidentity"]


def _arg_after(args: list[str], flag: str) -> str | None:
    for i, arg in enumerate(args[:-1]):
        if arg == flag:
            return args[i + 1]
    return None


def non_interactive(kubeconfig: str, *, login: NonInteractiveLogin = "azurecli") -> str:
    """``kubeconfig`` with every kubelogin exec user switched to ``login`` (no device code, no browser).

    Users that do not run kubelogin are left alone. Raises ``ValueError`` when the document is not a
    kubeconfig or a kubelogin user has no ``--server-id`` (kubelogin itself refuses to convert it).
    """
    doc = yaml.safe_load(kubeconfig) if kubeconfig.strip() else None
    if not isinstance(doc, dict) or doc.get("kind") != "Config":
        msg = "kubeconfig: not a kubeconfig document (kind: Config)"
        raise ValueError(msg)
    users: list[Any] = doc.get("users") or []
    for entry in users:
        user = entry.get("user") if isinstance(entry, dict) else None
        exec_cfg = user.get("exec") if isinstance(user, dict) else None
        if not isinstance(exec_cfg, dict) or "kubelogin" not in str(exec_cfg.get("command", "")).lower():
            continue
        args = [str(a) for a in exec_cfg.get("args") or []]
        server_id = _arg_after(args, "--server-id")
        if not server_id:
            msg = (f"kubeconfig: user {entry.get('name')!r} runs kubelogin without --server-id; "
                   f"expected the AKS server application {AKS_SERVER_APP_ID}")
            raise ValueError(msg)
        exec_cfg["command"] = "kubelogin"
        exec_cfg["apiVersion"] = EXEC_API_VERSION
        exec_cfg["args"] = ["get-token", "--login", login, "--server-id", server_id]
        exec_cfg["interactiveMode"] = "Never"
    return yaml.safe_dump(doc, sort_keys=False)


def login_modes(kubeconfig: str) -> list[str]:
    """The ``--login`` of every kubelogin user (``devicecode`` when kubelogin's default applies)."""
    doc = yaml.safe_load(kubeconfig) or {}
    modes: list[str] = []
    for entry in doc.get("users") or []:
        exec_cfg = (entry.get("user") or {}).get("exec") or {}
        if "kubelogin" in str(exec_cfg.get("command", "")).lower():
            modes.append(_arg_after([str(a) for a in exec_cfg.get("args") or []], "--login") or "devicecode")
    return modes
