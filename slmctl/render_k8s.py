"""Write every Kubernetes object of a recording as YAML, so independent tools can check it.

One file per object: ``<out_dir>/<namespace or _cluster>/<kind>-<name>.yaml``. apiVersion/kind come
from the type token when the inputs lack them; integral floats become ints (the wire carries
numbers as floats). Secrets never reach disk: secret-wrapped values become ``[secret]`` and every
value of a Secret's ``data``/``stringData`` is replaced by ``[secret]`` whether or not it was marked
secret. Helm releases are not objects: their values go to ``_helm/<release>.values.yaml``, since the
chart is rendered by the provider at deploy time (no helm binary here).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Final

import yaml

from slmctl.recorder import REDACTED, SECRET_SIG, SECRET_VALUE_SIG, Recording, Registration, redact

HELM_RELEASE: Final = "kubernetes:helm.sh/v3:Release"
README: Final = """\
Rendered from a mock recording of the Pulumi program (slmctl/render_k8s.py), one object per file.
Secret values are replaced by "[secret]" (Secret data/stringData always, other values when Pulumi
marks them secret). Helm releases are listed under _helm/ with their values only: the provider
renders the charts at deploy time.
"""


def api_version_and_kind(type_token: str) -> tuple[str, str]:
    """``kubernetes:apps/v1:Deployment`` -> (``apps/v1``, ``Deployment``); ``core/v1`` -> ``v1``."""
    parts = type_token.split(":")
    if len(parts) != 3 or parts[0] != "kubernetes":
        msg = f"{type_token!r} is not a kubernetes type token"
        raise ValueError(msg)
    group_version, kind = parts[1], parts[2]
    if group_version.startswith("core/"):
        group_version = group_version.removeprefix("core/")
    return group_version, kind


def manifest(registration: Registration) -> dict[str, Any]:
    """The object as ``kubectl apply`` would receive it, with secrets redacted."""
    inputs = dict(registration.inputs)
    api_version, kind = api_version_and_kind(registration.type)
    if inputs.get("kind", kind) == "Secret":
        for key in ("data", "stringData"):
            value = inputs.get(key)
            if isinstance(value, dict) and value.get(SECRET_SIG) == SECRET_VALUE_SIG:
                value = value.get("value")  # the provider marks the whole map secret: keep its keys only
            if isinstance(value, dict):
                inputs[key] = dict.fromkeys(value, REDACTED)
    body: dict[str, Any] = redact(inputs)
    body.setdefault("apiVersion", api_version)
    body.setdefault("kind", kind)
    metadata = body.setdefault("metadata", {})
    metadata.setdefault("name", registration.name)
    ordered = {k: body[k] for k in ("apiVersion", "kind", "metadata") if k in body}
    return {**ordered, **{k: v for k, v in body.items() if k not in ordered}}


def _safe(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", part)


def render_kubernetes(recording: Recording, out_dir: Path) -> list[Path]:
    """Write each ``kubernetes:*`` registration to ``out_dir``; return the object files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "README.txt").write_text(README)
    written: list[Path] = []
    for registration in recording.registrations:
        if not registration.type.startswith("kubernetes:") or registration.read:
            continue
        if registration.type == HELM_RELEASE:
            values = redact(registration.inputs.get("values") or {})
            name = str(registration.inputs.get("name") or registration.name)
            helm_dir = out_dir / "_helm"
            helm_dir.mkdir(exist_ok=True)
            header = {k: redact(registration.inputs.get(k)) for k in ("chart", "version", "namespace",
                                                                      "repositoryOpts") if k in registration.inputs}
            path = helm_dir / f"{_safe(name)}.values.yaml"
            path.write_text(f"# helm release {name}: {json.dumps(header, sort_keys=True)}\n"
                            + yaml.safe_dump(values, sort_keys=True))
            continue
        body = manifest(registration)
        namespace = body["metadata"].get("namespace") or "_cluster"
        folder = out_dir / _safe(str(namespace))
        folder.mkdir(exist_ok=True)
        path = folder / f"{_safe(body['kind'].lower())}-{_safe(str(body['metadata']['name']))}.yaml"
        if path in written:
            msg = f"two objects render to {path}: {registration.urn}"
            raise ValueError(msg)
        path.write_text(yaml.safe_dump(body, sort_keys=False))
        written.append(path)
    return sorted(written)


def schema_version(kubernetes_version: str, bundled: list[str]) -> str:
    """The kubernetes-validate schema version for a cluster version: the same minor if bundled, else the
    nearest bundled minor (kubernetes-validate 1.37 bundles 1.25 to 1.37)."""
    def minor(v: str) -> int:
        return int(v.removeprefix("v").split(".")[1])

    wanted = minor(kubernetes_version)
    return min(bundled, key=lambda v: (abs(minor(v) - wanted), -minor(v)))
