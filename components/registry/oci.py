"""Model artifacts in an OCI registry (the environment's ACR): what the mirror pushes, edge devices pull.

Edge devices cannot use the weights storage: they have no Entra identity to read blobs with, and a
SAS would need a minter with an identity and a channel to every device. They already hold a
pull-only ACR token (``EdgePullToken``) for the engine images, so the registry's second copy of a
model revision is an OCI artifact in ``models/<model>`` tagged ``<revision>`` (ORAS-style):

- the config blob is the project manifest itself (``slm-manifest.json``, media type
  ``CONFIG_MEDIA_TYPE``): the same bytes, so the same sha256, as in blob storage;
- one layer per file, media type ``FILE_MEDIA_TYPE``, annotated ``org.opencontainers.image.title``
  with its path; the layer digest is the file's sha256 from the manifest.

The registry checks every pushed blob against its digest, the puller hashes every byte it writes
(``supply.fill_from``), and ``OciArtifacts.read_manifest`` refuses an OCI manifest whose layers are
not exactly the project manifest's files. Uses the ORAS Python SDK (``oras``) for the distribution
API and its auth (Basic, or the Bearer token flow ACR uses: ``/oauth2/token`` with the token name and
password, or ``00000000-0000-0000-0000-000000000000`` and an Entra refresh token for the mirror).
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

try:  # in the fill image: /app/supply.py next to this file
    import supply  # pyright: ignore[reportMissingImports]
except ModuleNotFoundError:  # in the repository
    from components.registry import supply

ARTIFACT_TYPE: Final = "application/vnd.slm-platform.model.v1"
CONFIG_MEDIA_TYPE: Final = "application/vnd.slm-platform.manifest.v1+json"
"""The config blob: the project manifest (``supply.Manifest.to_json``), byte for byte."""
FILE_MEDIA_TYPE: Final = "application/vnd.slm-platform.model.file.v1"
TITLE_ANNOTATION: Final = "org.opencontainers.image.title"
OCI_MANIFEST_MEDIA_TYPE: Final = "application/vnd.oci.image.manifest.v1+json"
REPOSITORY_PREFIX: Final = "models"


def repository(model: str) -> str:
    """The registry repository of a catalogue model: ``models/<model>``."""
    return f"{REPOSITORY_PREFIX}/{model}"


def reference(login_server: str, model: str, revision: str) -> str:
    """``<login_server>/models/<model>:<revision>`` (a 40-hex commit or ``sha256-<hex>`` is a valid tag)."""
    return f"{login_server}/{repository(model)}:{revision}"


def image_manifest(manifest: supply.Manifest) -> dict[str, Any]:
    """The OCI image manifest of one model revision (layers sorted by path: stable digests)."""
    config = manifest.to_json().encode()
    return {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST_MEDIA_TYPE,
        "artifactType": ARTIFACT_TYPE,
        "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": "sha256:" + hashlib.sha256(config).hexdigest(),
                   "size": len(config)},
        "layers": [{"mediaType": FILE_MEDIA_TYPE, "digest": f"sha256:{f.sha256}", "size": f.size,
                    "annotations": {TITLE_ANNOTATION: f.path}}
                   for f in sorted(manifest.files, key=lambda e: e.path)],
        "annotations": {"org.opencontainers.image.source": manifest.source,
                        "org.opencontainers.image.revision": manifest.revision},
    }


@dataclass(kw_only=True)
class OciRegistry:
    """One registry endpoint and the credential used with it (a token name and password)."""

    login_server: str
    """``host[:port]``, e.g. ``slmprodacr.azurecr.io``. Always HTTPS."""
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    _client: Any = None

    def client(self) -> Any:
        """An ``oras.provider.Registry`` with the auth scheme the registry asks for (Basic or Bearer)."""
        if self._client is None:
            import oras.provider
            import requests

            challenge = requests.get(f"https://{self.login_server}/v2/", timeout=30).headers.get(
                "WWW-Authenticate", "")
            backend = "basic" if challenge.lower().startswith("basic") else "token"
            registry = oras.provider.Registry(hostname=self.login_server, auth_backend=backend)
            if self.username and self.password:
                registry.auth.set_basic_auth(self.username, self.password)
                if backend == "basic":
                    # Sent up front: the SDK retries a 401 with credentials, but a registry answers 401 to an
                    # upload chunk before reading its body, so a 16 MB PATCH without them dies mid-send.
                    import base64

                    pair = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
                    registry.set_header("Authorization", f"Basic {pair}")
                else:
                    _refresh_on_new_scope(registry.auth)
            self._client = registry
        return self._client

    def container(self, model: str, ref: str) -> Any:
        """The ORAS container object of ``models/<model>`` at ``ref`` (a tag or ``sha256:`` digest)."""
        separator = "@" if ref.startswith("sha256:") else ":"
        return self.client().get_container(f"{self.login_server}/{repository(model)}{separator}{ref}")


def _refresh_on_new_scope(auth: Any) -> None:
    """Fetch a new Bearer token when a challenge names another scope than the cached token's.

    The SDK caches one token and, on a 401, retries with that same token: a token fetched for
    ``repository:models/x:pull`` (the first HEAD of a push) then fails the upload that needs
    ``pull,push``, and a token for one repository fails the next. ACR, like Distribution, answers
    both with a 401 naming the scope it wants."""
    original = auth.authenticate_request
    state = {"scope": ""}

    def authenticate(response: Any, headers: Any = None, refresh: bool = False) -> Any:
        challenge = str(response.headers.get("Www-Authenticate", ""))
        scope = challenge.partition('scope="')[2].partition('"')[0]
        if scope and scope != state["scope"]:
            refresh, state["scope"] = True, scope
        return original(response, headers, refresh=refresh)

    auth.authenticate_request = authenticate


def _check(response: Any, what: str) -> Any:
    if response.status_code not in (200, 201, 202):
        body = (getattr(response, "text", "") or "").strip().replace("\n", " ")[:300]
        msg = f"{what}: the registry answered HTTP {response.status_code} {body}".rstrip()
        raise supply.SupplyError(msg)
    return response


# --------------------------------------------------------------------------- mirror side


@dataclass(kw_only=True)
class PublishReport:
    """What one publish did."""

    reference: str
    digest: str = ""
    """The OCI manifest digest the registry answered (``Docker-Content-Digest``)."""
    pushed: list[str] = field(default_factory=list[str])
    skipped: list[str] = field(default_factory=list[str])
    pushed_bytes: int = 0


def publish(registry: OciRegistry, manifest: supply.Manifest, fetch: Callable[[supply.FileEntry, Path], Path],
            *, progress: supply.Progress | None = None, workdir: Path | None = None) -> PublishReport:
    """Push one verified model revision as an OCI artifact; idempotent (blobs present are skipped).

    ``fetch(entry, scratch)`` writes one file to a local path (from the weights storage, already
    verified); the registry re-checks its digest on upload. The manifest is pushed last, so an
    interrupted publish leaves no tag that names missing blobs.
    """
    notify = progress or (lambda _event, _n: None)
    oci = image_manifest(manifest)
    report = PublishReport(reference=reference(registry.login_server, manifest.model, manifest.revision))
    target = registry.container(manifest.model, manifest.revision)
    client = registry.client()
    scratch = Path(tempfile.mkdtemp(prefix="slm-publish-", dir=workdir))
    try:
        config_path = scratch / supply.MANIFEST_NAME
        config_path.write_text(manifest.to_json())
        for layer, entry in [(oci["config"], None),
                             *zip(oci["layers"], sorted(manifest.files, key=lambda e: e.path), strict=True)]:
            name = supply.MANIFEST_NAME if entry is None else entry.path
            if client.blob_exists(layer, target):
                report.skipped.append(name)
                notify("skipped", int(layer["size"]))
                continue
            local = config_path if entry is None else fetch(entry, scratch)
            try:
                response = client.upload_blob(str(local), target, layer, do_chunked=True)
            except ValueError as exc:  # the SDK raises ValueError when the registry refuses an upload session
                msg = f"{report.reference}: {name}: the registry refused the upload ({exc})"
                raise supply.SupplyError(msg) from None
            _check(response, f"{report.reference}: {name}")
            if entry is not None:
                local.unlink(missing_ok=True)
            report.pushed.append(name)
            report.pushed_bytes += int(layer["size"])
            notify("copied", int(layer["size"]))
        response = _check(client.upload_manifest(oci, target), f"{report.reference}: manifest")
        report.digest = str(response.headers.get("Docker-Content-Digest", ""))
    finally:
        import shutil

        shutil.rmtree(scratch, ignore_errors=True)
    return report


def blob_fetcher(store: supply.BlobStore, model: str, revision: str) -> Callable[[supply.FileEntry, Path], Path]:
    """``fetch`` for ``publish`` from the weights storage, each file re-verified as it is written."""

    def fetch(entry: supply.FileEntry, scratch: Path) -> Path:
        target = scratch / "file"
        supply.download_verified(supply.BlobArtifacts(store=store), model, revision, entry, target)
        return target

    return fetch


# --------------------------------------------------------------------------- device side


@dataclass(kw_only=True)
class OciArtifacts:
    """``supply.ArtifactReader`` over the registry: the fill step's source on edge devices."""

    registry: OciRegistry

    def where(self, model: str, revision: str, path: str) -> str:
        """A file's place, for messages."""
        return f"{reference(self.registry.login_server, model, revision)} {path}"

    def read_manifest_bytes(self, model: str, revision: str) -> bytes | None:
        """The project manifest (the config blob) after checking the OCI manifest agrees with it."""
        client = self.registry.client()
        target = self.registry.container(model, revision)
        response = client.do_request(f"{client.prefix}://{target.manifest_url()}", "GET",
                                     headers={"Accept": OCI_MANIFEST_MEDIA_TYPE})
        if response.status_code == 404:
            return None
        oci = _check(response, reference(self.registry.login_server, model, revision)).json()
        where = reference(self.registry.login_server, model, revision)
        config = oci.get("config") or {}
        if config.get("mediaType") != CONFIG_MEDIA_TYPE:
            msg = f"{where}: not a model artifact of this platform (config {config.get('mediaType')!r}); refusing it"
            raise supply.IntegrityError(msg)
        data = _check(client.get_blob(target, config["digest"]), f"{where}: manifest blob").content
        if "sha256:" + hashlib.sha256(data).hexdigest() != config["digest"]:
            msg = f"{where}: the manifest blob does not match its digest {config['digest']}; refusing it"
            raise supply.IntegrityError(msg)
        manifest = supply.Manifest.from_json(data)
        layers = {(str((layer.get("annotations") or {}).get(TITLE_ANNOTATION)), str(layer.get("digest")),
                   int(layer.get("size", -1))) for layer in oci.get("layers", [])}
        files = {(f.path, f"sha256:{f.sha256}", f.size) for f in manifest.files}
        if layers != files:
            extra = sorted(p for p, _, _ in layers - files)
            missing = sorted(p for p, _, _ in files - layers)
            msg = (f"{where}: the artifact's layers differ from its manifest (not in the manifest: "
                   f"{', '.join(extra) or 'none'}; not a layer: {', '.join(missing) or 'none'}); refusing it")
            raise supply.IntegrityError(msg)
        return data

    def chunks(self, model: str, revision: str, entry: supply.FileEntry) -> Iterator[bytes]:
        """The bytes of one layer, pulled by digest (content addressing), streamed."""
        target = self.registry.container(model, revision)
        response = self.registry.client().get_blob(target, f"sha256:{entry.sha256}", stream=True)
        if response.status_code == 404:
            msg = f"{self.where(model, revision, entry.path)} is in the manifest but not in the registry"
            raise supply.IntegrityError(msg)
        _check(response, self.where(model, revision, entry.path))
        with response:
            yield from response.iter_content(chunk_size=supply.CHUNK)
