"""Fill a model volume from the registry, verified against its manifest (the serving pods' init step).

    python /app/entrypoint.py --account-url https://<acct>.blob.core.windows.net --container phi4-mini \
        --model phi-4-mini --revision <40 hex> --dest /models/phi-4-mini/<40 hex> [--include 'gpu/*']
    python /app/entrypoint.py --registry slmprodacr.azurecr.io \
        --model phi-4-mini --revision <40 hex> --dest /models [--include 'cpu/*'] [--offline-ok]

Blob storage (AKS pods) authenticates with ``DefaultAzureCredential``: in a pod, the workload identity
the service account federates to (the webhook injects ``AZURE_CLIENT_ID``/``AZURE_TENANT_ID``/
``AZURE_FEDERATED_TOKEN_FILE``), which ModelRegistry grants *Storage Blob Data Reader*. Never an account
key or a SAS. The OCI registry (edge devices: ``models/<model>:<revision>``, see ``oci.py``) authenticates
with the device's pull-only ACR token from ``SLM_REGISTRY_USERNAME`` / ``SLM_REGISTRY_PASSWORD``.
``--manifest-sha256`` pins the manifest itself (checked before any file); ``--offline-ok`` lets a device
that restarts without a network re-verify what it already holds against the manifest it stored.

Exit codes: 0 the volume holds exactly the manifest's files, each verified; 2 bad arguments (one line
per problem); 3 anything else, including a hash mismatch: the pod does not start.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path

try:  # in the image: /app/supply.py next to this file
    import supply  # pyright: ignore[reportMissingImports]
except ModuleNotFoundError:  # in the repository
    from components.registry import supply

REVISION = re.compile(r"^([0-9a-f]{40}|sha256-[0-9a-f]{64})$")
"""A git commit (Hub artifacts) or ``sha256-<hex>`` of a pinned GGUF blob."""
MODEL = re.compile(r"^[a-z][a-z0-9-]{1,38}[a-z0-9]$")
LOGIN_SERVER = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
CREDENTIAL_ENVS = ("SLM_REGISTRY_USERNAME", "SLM_REGISTRY_PASSWORD")
"""The registry token (OCI source): from the fleet's Secret (k3s) or the module's env (IoT Edge)."""
CONTAINER = re.compile(r"^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$")


def build_parser() -> argparse.ArgumentParser:
    """The command line (also parsed by the tests, so the rendered init args are the real ones)."""
    parser = argparse.ArgumentParser(prog="slm-model-fill", description="Fill a model volume from the registry, verified against its manifest.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--account-url", help="https://<account>.blob.core.windows.net (blob storage)")
    source.add_argument("--registry", help="an OCI registry login server, e.g. <acr>.azurecr.io (edge)")
    parser.add_argument("--container", help="the model family's blob container (with --account-url)")
    parser.add_argument("--model", required=True, help="catalogue model id (first path segment)")
    parser.add_argument("--revision", required=True, help="40-hex commit or sha256-<hex> (second path segment)")
    parser.add_argument("--dest", required=True, type=Path, help="directory the server loads")
    parser.add_argument("--include", action="append", default=None,
                        help="only manifest paths matching this pattern (repeatable); default all")
    parser.add_argument("--manifest-sha256", help="the manifest's own sha256, pinned in the stack")
    parser.add_argument("--offline-ok", action="store_true",
                        help="registry unreachable: re-verify the files already in --dest against the stored manifest")
    return parser


def problems(options: argparse.Namespace) -> list[str]:
    """Every argument that is wrong, each with the fix."""
    found: list[str] = []
    if options.account_url is not None:
        if not str(options.account_url).startswith("https://"):
            found.append(f"--account-url: {options.account_url!r} must be an https:// blob endpoint")
        if options.container is None or not CONTAINER.fullmatch(options.container):
            found.append(f"--container: {options.container!r} is not a blob container name (required with "
                         "--account-url)")
    else:
        if not LOGIN_SERVER.fullmatch(options.registry):
            found.append(f"--registry: {options.registry!r} must be a registry host name (no scheme, no path), "
                         "e.g. slmprodacr.azurecr.io")
        missing = [name for name in CREDENTIAL_ENVS if not os.environ.get(name)]
        if missing:
            found.append(f"{' and '.join(missing)}: not set; the registry needs the device's pull token (the "
                         "fleet's registry credential)")
    if not MODEL.fullmatch(options.model):
        found.append(f"--model: {options.model!r} is not a catalogue model id")
    if not REVISION.fullmatch(options.revision):
        found.append(f"--revision: {options.revision!r} must be a 40-character commit sha (or sha256-<64 hex> "
                     "of a GGUF blob), never a branch or tag")
    if options.manifest_sha256 is not None and not SHA256.fullmatch(options.manifest_sha256):
        found.append(f"--manifest-sha256: {options.manifest_sha256!r} must be 64 lowercase hex digits")
    if not options.dest.is_absolute():
        found.append(f"--dest: {str(options.dest)!r} must be an absolute path in the model volume")
    return found


def run(options: argparse.Namespace) -> supply.FillReport:
    """Fill ``--dest`` from the registry."""
    reader: supply.ArtifactReader
    if options.registry is not None:
        try:  # in the image: /app/oci.py next to this file
            import oci  # pyright: ignore[reportMissingImports]
        except ModuleNotFoundError:  # in the repository
            from components.registry import oci
        reader = oci.OciArtifacts(registry=oci.OciRegistry(
            login_server=options.registry, username=os.environ[CREDENTIAL_ENVS[0]],
            password=os.environ[CREDENTIAL_ENVS[1]]))
    else:
        from azure.identity import DefaultAzureCredential
        from azure.storage.blob import ContainerClient

        reader = supply.BlobArtifacts(
            store=ContainerClient(options.account_url, options.container, credential=DefaultAzureCredential()))
    return supply.fill_from(reader, model=options.model, revision=options.revision, dest=options.dest,
                            include=options.include, manifest_sha256=options.manifest_sha256,
                            offline_ok=options.offline_ok)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, fill, report; never a traceback."""
    options = build_parser().parse_args(argv)
    wrong = problems(options)
    if wrong:
        for line in wrong:
            sys.stderr.write(f"error: {line}\n")
        return 2
    started = time.monotonic()
    try:
        report = run(options)
    except supply.SupplyError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 3
    except Exception as exc:  # storage, identity or disk failure: one line, the pod does not start
        sys.stderr.write(f"error: {options.registry or options.container}/{options.model}/{options.revision}: "
                         f"{type(exc).__name__}: {exc}\n")
        return 3
    seconds = time.monotonic() - started
    sys.stdout.write(f"verified {len(report.downloaded) + len(report.reused)} files "
                     f"({report.verified_bytes / 1e9:.2f} GB) in {seconds:.1f}s: {len(report.downloaded)} downloaded, "
                     f"{len(report.reused)} reused, {len(report.removed)} stale removed"
                     f"{' (registry unreachable: checked against the stored manifest)' if report.offline else ''}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
