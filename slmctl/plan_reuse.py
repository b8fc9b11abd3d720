"""Let ``slmctl gate`` analyze the registrations ``slmctl plan`` recorded instead of planning again.

``plan`` writes, next to ``plan.json``, ``recording.json``: the registrations in the form the gate
sends the analyzer (wire inputs, property dependencies, providers, options; every secret's value
replaced by ``[secret]``, its envelope kept) under a **provenance key**. ``gate`` reuses them only when
the key it computes now is the same, so a plan is never reused when anything that shaped it changed:

- the stack's name and the stack file's bytes (and the engine config derived from them);
- the program: every file under ``components/``, ``stacks/``, ``policies/`` and ``slmctl/`` (sources
  and the data files they read, such as the Helm index), ``Pulumi.yaml``, ``pyproject.toml`` and
  ``requirements.txt``;
- the installed Pulumi SDK, provider SDKs and protobuf versions, and the Python version;
- ``plan.json`` itself: its digest is in the key file, so an edited or replaced ``plan.json`` is stale.

Anything missing, unreadable or different means the gate plans afresh, as it always did.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, Final

from slmctl.loader import REPO_ROOT, LoadedStack
from slmctl.recorder import REDACTED, SECRET_SIG, SECRET_VALUE_SIG, Recording, Registration

RECORDING_NAME: Final = "recording.json"
FORMAT: Final = 1
CODE_DIRS: Final = ("components", "stacks", "policies", "slmctl")
CODE_FILES: Final = ("Pulumi.yaml", "pyproject.toml", "requirements.txt")
DISTRIBUTIONS: Final = ("pulumi", "pulumi-azure-native", "pulumi-kubernetes", "pulumi-docker", "pulumi-random",
                        "protobuf")


@functools.cache
def code_digest(root: Path = REPO_ROOT) -> str:
    """One digest of every file the program is made of (paths and bytes), the SDK versions and Python's."""
    digest = hashlib.sha256(f"format {FORMAT}\npython {sys.version}\n".encode())
    for name in DISTRIBUTIONS:
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            version = "absent"
        digest.update(f"{name} {version}\n".encode())
    files = [root / f for f in CODE_FILES if (root / f).is_file()]
    for folder in CODE_DIRS:
        files.extend(p for p in (root / folder).rglob("*")
                     if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")
    for path in sorted(files):
        digest.update(f"{path.relative_to(root).as_posix()}\0".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def provenance(loaded: LoadedStack, plan_json: bytes, root: Path = REPO_ROOT) -> str:
    """The key a reusable recording must carry: stack, stack file, engine config, code, plan.json."""
    digest = hashlib.sha256()
    for part in (loaded.stack, code_digest(root), json.dumps(loaded.config, sort_keys=True),
                 json.dumps(loaded.secret_keys)):
        digest.update(part.encode() + b"\0")
    digest.update(hashlib.sha256(loaded.path.read_bytes()).digest())
    digest.update(hashlib.sha256(plan_json).digest())
    return digest.hexdigest()


def _without_secret_values(value: Any) -> Any:
    if isinstance(value, dict):
        if value.get(SECRET_SIG) == SECRET_VALUE_SIG:
            return {**value, "value": REDACTED}
        return {k: _without_secret_values(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_secret_values(v) for v in value]
    return value


def write_recording(loaded: LoadedStack, recording: Recording, plan_json: Path) -> Path:
    """Write ``recording.json`` beside ``plan_json`` (already written) under its provenance key."""
    from slmctl.plan import write_atomic

    document = {
        "format": FORMAT,
        "key": provenance(loaded, plan_json.read_bytes()),
        "project": recording.project,
        "stack": recording.stack,
        "outputs": recording.outputs,
        # vars(), not asdict(): the fields are already plain JSON values, and asdict deep-copied every leaf
        # of every registration (0.4 s of a 2,538-resource plan) only for json.dumps to read them once.
        "registrations": [{**vars(r), "inputs": _without_secret_values(r.inputs)} for r in recording.registrations],
    }
    out = plan_json.parent / RECORDING_NAME
    write_atomic(out, json.dumps(document, separators=(",", ":")) + "\n")
    return out


def reusable_recording(loaded: LoadedStack, out_dir: Path) -> Recording | None:
    """The recording ``plan`` left in ``out_dir`` if it is still what planning now would produce, else None."""
    try:
        plan_json = (out_dir / "plan.json").read_bytes()
        document = json.loads((out_dir / RECORDING_NAME).read_text(encoding="utf-8"))
        if document.get("format") != FORMAT or document.get("key") != provenance(loaded, plan_json):
            return None
        registrations = [Registration(**r) for r in document["registrations"]]
        return Recording(project=document["project"], stack=document["stack"], registrations=registrations,
                         outputs=document["outputs"])
    except (OSError, ValueError, KeyError, TypeError):  # missing, unreadable or another shape: plan afresh
        return None


def remove_recording(out_dir: Path) -> None:
    """A failed plan leaves no recording behind either."""
    (out_dir / RECORDING_NAME).unlink(missing_ok=True)
