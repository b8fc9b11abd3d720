"""``slmctl models sync <stack>``: mirror every pinned artifact of a stack into its ModelRegistry.

The step between ``pulumi up`` of the registry (storage account, one container per model family)
and the serving workloads, whose fill init containers read only from the registry. Run it as the
deployer: ``DefaultAzureCredential`` (``az login``, or the deploy workflow's OIDC identity), which
ModelRegistry grants *Storage Blob Data Contributor* on the weights storage. Gated repos need the
mirror's Hugging Face token in ``HF_TOKEN`` (serving pods never see it). ``HF_ENDPOINT`` selects
another Hub (a proxy, or a test server); ``OLLAMA_REGISTRY`` another Ollama registry (GGUF).

Artifacts a container edge fleet loads (staging, prod) are then published from the verified blob copy
to the stack's ACR as OCI artifacts ``models/<model>:<revision>`` (``components/registry/oci.py``),
authenticated like ``az acr login``: an Entra token exchanged for an ACR refresh token (the deployer
needs *AcrPush*). ``SLM_REGISTRY_USERNAME`` / ``SLM_REGISTRY_PASSWORD`` use a registry token instead
(another OCI registry, e.g. a connected registry).

Exit codes: 0 synced; 2 bad input (stack, model, revision, missing token); 3 the sync failed
(storage or upstream error, or a file whose hash differs from the upstream's record).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from components.registry.catalogue import (
    ArtifactSource,
    artifact_sources,
    edge_published,
    registry_login_server,
    storage_account_url,
)
from components.registry.supply import (
    OLLAMA_REGISTRY,
    HuggingFaceRepo,
    IntegrityError,
    OllamaLibrary,
    SupplyError,
    SyncReport,
    Upstream,
    sync_artifact,
)
from slmctl.loader import LoadedStack, StackFileError, load_stack_file, resolve_stack_path

app = typer.Typer(add_completion=False, no_args_is_help=True, help="The model registry: mirror pinned weights.")
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def _fail(code: int, lines: list[str]) -> typer.Exit:
    for line in lines:
        err.print(f"[red]error[/red] {escape(line)}", soft_wrap=True, highlight=False)
    return typer.Exit(code)


def _load(stack: str | None, stack_file: Path | None) -> LoadedStack:
    try:
        name, path = resolve_stack_path(stack, stack_file)
        return load_stack_file(path, stack=name)
    except StackFileError as exc:
        raise _fail(2, list(exc.problems)) from None


def _selected(loaded: LoadedStack, models: list[str]) -> list[ArtifactSource]:
    settings = loaded.settings
    problems: list[str] = []
    if not settings.uses_azure:
        problems.append(f"{loaded.path.name}: the {settings.tier} tier has no ModelRegistry; its pods download "
                        "from Hugging Face directly. Sync a dev, staging or prod stack")
    unknown = sorted(set(models) - set(settings.models))
    if unknown:
        problems.append(f"--model: {', '.join(unknown)} not in models of {loaded.path.name}; use one of: "
                        f"{', '.join(sorted(settings.models))}")
    if problems:
        raise _fail(2, problems)
    sources = [s for s in artifact_sources(settings) if not models or s.model in models]
    if not sources:
        raise _fail(2, [f"{loaded.path.name}: no deployment or fleet serves a mirrored artifact of "
                        f"{', '.join(models) or 'any model'}; nothing to mirror"])
    return sources


def _hf_token(sources: list[ArtifactSource]) -> str | None:
    from huggingface_hub import get_token

    token = get_token()
    gated = sorted({s.model for s in sources if s.gated})
    if gated and token is None:
        raise _fail(2, [f"models.{m}.gated: the repo needs a Hugging Face token; export HF_TOKEN (a read token "
                        "of an account that accepted the licence) for the mirror only" for m in gated])
    return token


def _upstream_error(source: ArtifactSource, exc: Exception) -> typer.Exit:
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

    path = f"models.{source.model}.artifacts.{source.kind}"
    if isinstance(exc, GatedRepoError):
        return _fail(2, [f"{path}.repo: {source.repo} is gated and the token has no access; accept the licence "
                         "on the Hub with the token's account"])
    if isinstance(exc, RevisionNotFoundError):
        return _fail(2, [f"{path}.revision: {source.revision} is not a commit of {source.repo}; pin an existing "
                         "40-hex commit"])
    if isinstance(exc, RepositoryNotFoundError):
        return _fail(2, [f"{path}.repo: {source.repo} does not exist (or is private to another account)"])
    return _fail(3, [f"{source.repo}@{source.revision}: upstream failed: {type(exc).__name__}: {exc}"])


def _sync_one(source: ArtifactSource, service: Any, token: str | None, progress: Progress,
              workdir: Path | None) -> SyncReport:
    task = progress.add_task(f"{source.model} {source.kind}", total=None)

    def notify(_event: str, size: int) -> None:
        progress.advance(task, size)

    upstream: Upstream
    if source.kind == "gguf":
        upstream = OllamaLibrary(tag=source.repo, sha256=source.revision.removeprefix("sha256-"),
                                 endpoint=os.environ.get("OLLAMA_REGISTRY") or OLLAMA_REGISTRY)
    else:
        upstream = HuggingFaceRepo(repo=source.repo, revision=source.revision, patterns=source.patterns,
                                   token=token)
    report = sync_artifact(upstream, service.get_container_client(source.container), model=source.model,
                           kind=source.kind, revision=source.revision, progress=notify, workdir=workdir)
    assert report.manifest is not None  # noqa: S101 (sync_artifact always sets it)
    progress.update(task, total=report.manifest.total_bytes, completed=report.manifest.total_bytes)
    return report


def _oci_registry(login_server: str) -> Any:
    """The edge registry with the deployer's Entra identity (or a token from the environment)."""
    from components.registry.oci import OciRegistry

    username, password = os.environ.get("SLM_REGISTRY_USERNAME"), os.environ.get("SLM_REGISTRY_PASSWORD")
    if username and password:
        return OciRegistry(login_server=login_server, username=username, password=password)
    from components.acr_auth import ACR_TOKEN_USERNAME, AcrTokenExchangeError, acr_refresh_token

    try:
        return OciRegistry(login_server=login_server, username=ACR_TOKEN_USERNAME,
                           password=acr_refresh_token(login_server))
    except AcrTokenExchangeError as exc:
        raise _fail(3, [str(exc)]) from None


def _publish(registry: Any, source: ArtifactSource, service: Any, report: SyncReport, workdir: Path | None) -> Any:
    from components.registry.oci import blob_fetcher, publish

    assert report.manifest is not None  # noqa: S101 (the caller checked)
    try:
        return publish(registry, report.manifest,
                       blob_fetcher(service.get_container_client(source.container), source.model, source.revision),
                       workdir=workdir)
    except SupplyError as exc:
        raise _fail(3, [f"{registry.login_server}: {exc} (the deployer needs AcrPush on the registry and "
                        "network access to it)"]) from None
    except OSError as exc:
        raise _fail(3, [f"{registry.login_server}: could not reach the registry: {type(exc).__name__}: {exc}"]) from None


def _service(account_url: str) -> Any:
    from azure.identity import DefaultAzureCredential
    from azure.storage.blob import BlobServiceClient

    return BlobServiceClient(account_url, credential=DefaultAzureCredential())


WEIGHTS_PREFIX = "models-weights"
"""Logical-name prefix of the weights storage and everything ModelRegistry hangs on it (containers, blob
service, private endpoint, diagnostics, grants including the deployer's, lock)."""


EDGE_REGISTRY_TARGETS = ("models-acr", "models-acr-pe", "models-acr-pe-dns", "models-acr-ra-deployer-push",
                         "models-acr-diag-workspace")
"""The container registry, its private endpoint and the deployer's AcrPush: what the mirror publishes edge
artifacts to (the kubelet's AcrPull comes in only as a dependency of the fill image)."""


MODEL_FILL_TARGET = "models-model-fill"
"""The registry fill image (pulumi-docker, built and pushed to the ACR). In the registry step so that its
digest, which every serving pod's init container is pinned to, is known at the full update's preview
(and the gate can check the image); the step runs on the same in-VNet runner as the full update."""


ONNX_SERVER_TARGET = "models-onnx-server"
"""The ONNX server image, when the stack builds it: in the registry step for the same reason as the fill
image. An IoT Edge fleet's deployment manifest embeds its digest, so without it the whole manifest is
unknown at the full update's preview and no edge policy can read it."""


EDGE_HUB_TYPE = "slm:edge:EdgeHub"
"""The IoT Hub component (hub, private endpoint, the deployer's IoT Hub Data Contributor, diagnostics,
lock). In the registry step: the IoT Edge configurations the full update writes take the hub's host name
from the hub's state (Azure's own answer, right in every cloud and with the auto-named hub), so the full
update's preview knows it; and the deployer's grant and the private endpoint exist a whole step before the
first configuration is written through them, instead of milliseconds before."""


def registry_targets(registrations: list[Any], *, edge_registry: bool = False) -> list[str]:
    """URNs a targeted ``pulumi up`` needs so the weights storage exists before the serving workloads.

    The weights storage's resources, the images the registry builds (:data:`MODEL_FILL_TARGET`,
    :data:`ONNX_SERVER_TARGET`), the IoT Hub's resources (:data:`EDGE_HUB_TYPE`) when the stack has
    IoT Edge fleets (and, with ``edge_registry``, the container registry the mirror publishes edge
    artifacts to), plus everything they depend on, are parented by or are provided by, transitively
    (a targeted update refuses a target whose dependencies do not exist yet).
    """
    by_urn = {r.urn: r for r in registrations}
    hubs = {r.urn for r in registrations if r.type == EDGE_HUB_TYPE}
    wanted = [r.urn for r in registrations if r.custom and (
        r.name.startswith(WEIGHTS_PREFIX) or r.name in {MODEL_FILL_TARGET, ONNX_SERVER_TARGET}
        or (edge_registry and r.name in EDGE_REGISTRY_TARGETS) or r.parent in hubs)]
    seen: set[str] = set()
    while wanted:
        urn = wanted.pop()
        if urn in seen or urn not in by_urn:
            continue
        seen.add(urn)
        reg = by_urn[urn]
        provider_urn = reg.provider.rsplit("::", 1)[0] if reg.provider else ""  # a reference is "<urn>::<id>"
        wanted += [*reg.dependencies, *(d for ds in reg.property_dependencies.values() for d in ds),
                   *([reg.parent] if reg.parent else []), *([provider_urn] if provider_urn else [])]
    return [r.urn for r in registrations if r.urn in seen]


def stack_registry_targets(loaded: LoadedStack, registrations: list[Any]) -> list[str]:
    """What ``slmctl models targets`` prints for a stack whose weights come from the registry (else nothing)."""
    if not loaded.settings.weights_from_registry:
        return []
    edge = any(edge_published(loaded.settings, source) for source in artifact_sources(loaded.settings))
    return registry_targets(registrations, edge_registry=edge)


@app.command()
def targets(
    stack: Annotated[str | None, typer.Argument(help="Stack name: dev, staging or prod.")] = None,
    stack_file: Annotated[Path | None, typer.Option("--stack-file", help="Any stack file instead of a name.")] = None,
) -> None:
    """Print, one per line, the URNs of `pulumi up --target` that create the weights storage, images and hub first."""
    loaded = _load(stack, stack_file)
    _selected(loaded, [])
    if not loaded.settings.weights_from_registry:
        # An empty target list would make `pulumi up --target` update everything: refuse instead.
        raise _fail(2, [f"registry.weights_source: {loaded.path.name} serves weights from Hugging Face, so no "
                        "registry step comes before the workloads; run a plain `pulumi up`"])
    from slmctl.plan import make_plan

    for urn in stack_registry_targets(loaded, make_plan(loaded).recording.registrations):
        out.print(urn, soft_wrap=True, highlight=False, markup=False)


@app.command()
def sync(  # noqa: PLR0917 (typer reads each option from the signature)
    stack: Annotated[str | None, typer.Argument(help="Stack name: dev, staging or prod.")] = None,
    stack_file: Annotated[Path | None, typer.Option("--stack-file", help="Any stack file instead of a name.")] = None,
    model: Annotated[list[str] | None, typer.Option("--model", help="Only this catalogue model (repeatable).")] = None,
    account_url: Annotated[str | None, typer.Option(
        "--account-url", help="Blob endpoint. Default: the stack's weights storage account.")] = None,
    workdir: Annotated[Path | None, typer.Option("--workdir", help="Scratch space for one file at a time.")] = None,
    registry_server: Annotated[str | None, typer.Option(
        "--registry-server", help="OCI registry for edge artifacts. Default: the stack's ACR login server.")] = None,
) -> None:
    """Copy every pinned artifact of the stack's models into the registry, verified, with a manifest."""
    # Here: components.model_registry loads azure-native, which every other slmctl command would then pay.
    from components.model_registry import physical_names

    loaded = _load(stack, stack_file)
    sources = _selected(loaded, list(model or []))
    token = _hf_token(sources)
    url = account_url or storage_account_url(physical_names(loaded.settings.name_prefix).storage_account)
    login_server = registry_server or registry_login_server(physical_names(loaded.settings.name_prefix).registry)
    oci_registry = None
    from azure.core.exceptions import AzureError
    from huggingface_hub.errors import HfHubHTTPError

    service = _service(url)
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, console=err, transient=False) as progress:
        for source in sources:
            try:
                report = _sync_one(source, service, token, progress, workdir)
            except IntegrityError as exc:
                raise _fail(3, [f"refused: {exc}"]) from None
            except HfHubHTTPError as exc:
                raise _upstream_error(source, exc) from None
            except AzureError as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise _fail(3, [f"{url}/{source.container}: storage failed: {first} (the deployer needs Storage "
                                "Blob Data Contributor on the account and network access to it)"]) from None
            except SupplyError as exc:
                raise _fail(3, [str(exc)]) from None
            except Exception as exc:
                raise _fail(3, [f"{source.repo}@{source.revision}: {type(exc).__name__}: {exc}"]) from None
            assert report.manifest is not None  # noqa: S101 (sync_artifact always sets it)
            digest = hashlib.sha256(report.manifest.to_json().encode()).hexdigest()
            out.print(f"{source.container}/{source.prefix}: {len(report.copied)} copied "
                      f"({report.copied_bytes / 1e6:.1f} MB), {len(report.skipped)} already verified; "
                      f"manifest sha256 {digest}", soft_wrap=True, highlight=False)
            if source.manifest_sha256 is not None and source.manifest_sha256 != digest:
                raise _fail(3, [f"models.{source.model}.artifacts.{source.kind}.manifest_sha256: the stack pins "
                                f"{source.manifest_sha256}, the mirrored manifest is {digest}; every fill step will "
                                "refuse it. Pin the new digest only after finding out why it changed"])
            if edge_published(loaded.settings, source) and report.manifest is not None:
                oci_registry = oci_registry or _oci_registry(login_server)
                pushed = _publish(oci_registry, source, service, report, workdir)
                out.print(f"{pushed.reference}: {len(pushed.pushed)} pushed ({pushed.pushed_bytes / 1e6:.1f} MB), "
                          f"{len(pushed.skipped)} already there; manifest sha256 {digest}",
                          soft_wrap=True, highlight=False)
