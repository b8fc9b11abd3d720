"""The model supply chain: mirror pinned upstream artifacts into blob storage, fill a volume from it.

One module, used by both ends so they agree on the layout and the hashes:

- ``slmctl models sync`` (the mirror, run by a deployer) copies every file of a pinned artifact from
  its upstream (Hugging Face, honouring ``HF_ENDPOINT``) into ``<container>/<model>/<revision>/...``,
  checks each file against the hash the Hub records for it (LFS sha256, or the git blob id of a small
  file) and writes ``<model>/<revision>/slm-manifest.json`` (every file's path, size and sha256) last,
  so an interrupted sync never leaves a manifest that lists files which are not there.
- the fill init container (``components/registry/fill``) downloads the manifest and every file it
  lists into the pod's model volume, hashing while it writes, and refuses (non-zero exit, the pod does
  not start) when a file's sha256 differs from the manifest.

Only the Python standard library and ``azure-storage-blob`` are imported at module level, so the
fill image needs nothing else; ``huggingface_hub`` is imported by the mirror only. Credentials are
whatever ``azure.core.credentials.TokenCredential`` the caller passes (``DefaultAzureCredential``:
workload identity in a pod, the deployer's login for the mirror); never an account key or a SAS.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any, Final, Literal, Protocol

MANIFEST_NAME: Final = "slm-manifest.json"
MANIFEST_SCHEMA: Final = 1
SHA256_METADATA_KEY: Final = "sha256"
"""Blob metadata key holding the verified sha256 of the blob's content (set by the mirror)."""
GIT_BLOB_METADATA_KEY: Final = "gitblobid"
"""Blob metadata key holding the upstream git blob id of a small (non-LFS) file (set by the mirror)."""
CHUNK: Final = 8 * 1024 * 1024
PARTIAL_SUFFIX: Final = ".slm-partial"

ArtifactKind = Literal["safetensors", "onnx", "gguf"]
Progress = Callable[[str, int], None]
"""``(event, bytes)``: called with ``("copied"|"skipped", size)`` per file and ``("bytes", n)`` while copying."""


class SupplyError(Exception):
    """A sync or fill that cannot complete; the message names the artifact, the file and the fix."""


class IntegrityError(SupplyError):
    """Content whose hash differs from the one recorded for it: nothing is used, the step fails closed."""


# --------------------------------------------------------------------------- manifest


@dataclass(frozen=True, kw_only=True)
class FileEntry:
    """One file of an artifact: its path relative to the artifact root, size and sha256."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True, kw_only=True)
class Manifest:
    """What the registry holds for one artifact at one revision."""

    model: str
    kind: ArtifactKind
    source: str
    """Where it came from, e.g. ``hf://microsoft/Phi-4-mini-instruct``."""
    revision: str
    files: tuple[FileEntry, ...]

    @property
    def total_bytes(self) -> int:
        """Sum of the file sizes."""
        return sum(f.size for f in self.files)

    def to_json(self) -> str:
        """Canonical JSON (sorted files), so the same content always has the same digest."""
        doc = {"schema": MANIFEST_SCHEMA, "model": self.model, "kind": self.kind, "source": self.source,
               "revision": self.revision,
               "files": [{"path": f.path, "size": f.size, "sha256": f.sha256}
                         for f in sorted(self.files, key=lambda e: e.path)]}
        return json.dumps(doc, indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> Manifest:
        """Parse and check a manifest; raise ``SupplyError`` naming what is wrong."""
        try:
            doc = json.loads(text)
            if doc.get("schema") != MANIFEST_SCHEMA:
                msg = f"schema {doc.get('schema')!r} is not {MANIFEST_SCHEMA}"
                raise ValueError(msg)
            files = tuple(FileEntry(path=safe_relative_path(f["path"]), size=int(f["size"]),
                                    sha256=_sha256_hex(f["sha256"])) for f in doc["files"])
            return cls(model=str(doc["model"]), kind=doc["kind"], source=str(doc["source"]),
                       revision=str(doc["revision"]), files=files)
        except (ValueError, KeyError, TypeError) as exc:
            msg = f"{MANIFEST_NAME}: not a valid manifest ({exc}); re-run `slmctl models sync`"
            raise SupplyError(msg) from None


def _sha256_hex(value: object) -> str:
    text = str(value)
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        msg = f"sha256 {text!r} is not 64 lowercase hex digits"
        raise ValueError(msg)
    return text


def safe_relative_path(path: str) -> str:
    """A manifest path may not escape the artifact root (no absolute paths, no ``..``)."""
    pure = PurePosixPath(path)
    if not path or pure.is_absolute() or ".." in pure.parts or "\\" in path or path != str(pure):
        msg = f"path {path!r} is not a plain relative path inside the artifact"
        raise ValueError(msg)
    return path


def matches(path: str, patterns: Sequence[str]) -> bool:
    """fnmatch over repo paths, where a pattern without ``/`` matches top-level files only."""
    return any(fnmatch.fnmatch(path, p) and ("/" in p or "/" not in path) for p in patterns)


def artifact_prefix(model: str, revision: str) -> str:
    """The blob name prefix of one artifact: ``<model>/<revision>/``."""
    return f"{model}/{revision}/"


# --------------------------------------------------------------------------- hashing


def sha256_stream(chunks: Iterable[bytes], sink: IO[bytes] | None = None) -> tuple[str, int]:
    """Hash (and optionally write) a byte stream; returns (hex digest, size)."""
    digest = hashlib.sha256()
    size = 0
    for chunk in chunks:
        digest.update(chunk)
        size += len(chunk)
        if sink is not None:
            sink.write(chunk)
    return digest.hexdigest(), size


def file_chunks(path: Path, chunk_size: int = CHUNK) -> Iterator[bytes]:
    """Read a file in chunks."""
    with path.open("rb") as fh:
        while chunk := fh.read(chunk_size):
            yield chunk


def sha256_file(path: Path) -> str:
    """The sha256 of a file."""
    return sha256_stream(file_chunks(path))[0]


def git_blob_id(path: Path) -> str:
    """The git blob id (sha1 of ``blob <size>\\0<content>``) the Hub reports for a non-LFS file."""
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode(), usedforsecurity=False)
    for chunk in file_chunks(path):
        digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------- storage


class BlobStore(Protocol):
    """The part of ``azure.storage.blob.ContainerClient`` the supply chain uses."""

    def get_blob_client(self, blob: str) -> Any: ...


def blob_metadata(store: BlobStore, name: str) -> tuple[dict[str, str], int] | None:
    """(metadata, size) of a blob, or None when it does not exist."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        props = store.get_blob_client(name).get_blob_properties()
    except ResourceNotFoundError:
        return None
    return dict(props.metadata or {}), int(props.size)


def read_manifest(store: BlobStore, model: str, revision: str) -> Manifest | None:
    """The manifest of an artifact in the registry, or None when there is none (never synced)."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        data = store.get_blob_client(artifact_prefix(model, revision) + MANIFEST_NAME).download_blob().readall()
    except ResourceNotFoundError:
        return None
    return Manifest.from_json(data)


def upload_verified(store: BlobStore, name: str, path: Path, sha256: str, *, git_blob: str | None = None,
                    max_concurrency: int = 4) -> None:
    """Upload a local file whose hash was checked, recording it in the blob's metadata."""
    from azure.storage.blob import ContentSettings

    metadata = {SHA256_METADATA_KEY: sha256, **({GIT_BLOB_METADATA_KEY: git_blob} if git_blob else {})}
    with path.open("rb") as fh:
        store.get_blob_client(name).upload_blob(
            fh, overwrite=True, length=path.stat().st_size, max_concurrency=max_concurrency,
            metadata=metadata,
            content_settings=ContentSettings(content_type="application/octet-stream"))


# --------------------------------------------------------------------------- upstream


@dataclass(frozen=True, kw_only=True)
class UpstreamFile:
    """A file an upstream lists for a pinned revision, with the hash it records for it."""

    path: str
    size: int
    sha256: str | None
    """LFS files: the sha256 of the content (what the manifest records)."""
    git_blob_id: str | None = None
    """Small (non-LFS) files: the git blob id, checked instead when ``sha256`` is unknown."""


class Upstream(Protocol):
    """Where an artifact comes from: list its files at the pinned revision, fetch one to a path."""

    @property
    def source(self) -> str: ...

    def list_files(self) -> list[UpstreamFile]: ...

    def fetch(self, file: UpstreamFile, workdir: Path) -> Path: ...


@dataclass(kw_only=True)
class HuggingFaceRepo:
    """A Hub model repo at a 40-hex commit, restricted to ``patterns`` (fnmatch over paths)."""

    repo: str
    revision: str
    patterns: tuple[str, ...] = ("*", "*/*")
    """fnmatch patterns; one without ``/`` matches top-level files only. Default: every file."""
    token: str | None = None
    """Gated repos (Gemma): the mirror's token. Default: ``HF_TOKEN`` from the environment."""
    endpoint: str | None = None
    """Default: ``HF_ENDPOINT`` from the environment, else https://huggingface.co."""

    @property
    def source(self) -> str:
        """``hf://<repo>``."""
        return f"hf://{self.repo}"

    def _api(self) -> Any:
        from huggingface_hub import HfApi

        return HfApi(endpoint=self.endpoint, token=self.token)

    def list_files(self) -> list[UpstreamFile]:
        """Every file of the revision that matches the patterns, with the Hub's hash for it."""
        from huggingface_hub.hf_api import RepoFile

        files: list[UpstreamFile] = []
        for entry in self._api().list_repo_tree(self.repo, revision=self.revision, recursive=True):
            if not isinstance(entry, RepoFile) or not matches(entry.path, self.patterns):
                continue
            lfs = entry.lfs
            files.append(UpstreamFile(path=safe_relative_path(entry.path), size=int(entry.size),
                                      sha256=lfs.sha256 if lfs is not None else None,
                                      git_blob_id=None if lfs is not None else entry.blob_id))
        if not files:
            msg = (f"{self.source}@{self.revision}: no file matches {', '.join(self.patterns)}; check the repo, "
                   "the revision and the variant folder in the stack's artifacts")
            raise SupplyError(msg)
        return sorted(files, key=lambda f: f.path)

    def fetch(self, file: UpstreamFile, workdir: Path) -> Path:
        """Download one file at the pinned revision (resumable: the Hub client keeps partial downloads)."""
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(self.repo, file.path, revision=self.revision, local_dir=workdir,
                                    endpoint=self.endpoint, token=self.token))


OLLAMA_REGISTRY: Final = "https://registry.ollama.ai"
OLLAMA_MANIFEST_MEDIA_TYPE: Final = "application/vnd.docker.distribution.manifest.v2+json"
OLLAMA_MODEL_LAYER: Final = "application/vnd.ollama.image.model"


def gguf_revision(sha256: str) -> str:
    """The registry revision of a GGUF artifact: its pinned model-blob digest, ``sha256-<hex>``."""
    return f"sha256-{sha256}"


@dataclass(kw_only=True)
class OllamaLibrary:
    """An Ollama library tag, accepted only while its model layer is the pinned GGUF blob.

    Files are laid out the way Ollama stores them under ``OLLAMA_MODELS`` (``manifests/<host>/<ns>/
    <name>/<tag>`` and ``blobs/sha256-<hex>``), so a filled volume is a model store the server
    loads without pulling. Every blob is named by its sha256, so each file verifies itself.
    """

    tag: str
    sha256: str
    """The pinned digest of the model (GGUF) layer: a re-pushed tag fails closed."""
    endpoint: str = OLLAMA_REGISTRY
    _manifest: bytes | None = None

    @property
    def _parts(self) -> tuple[str, str, str]:
        name, _, tag = self.tag.partition(":")
        namespace, _, repo = name.rpartition("/")
        return namespace or "library", repo, tag

    @property
    def source(self) -> str:
        """``ollama://<host>/<namespace>/<name>:<tag>``."""
        namespace, repo, tag = self._parts
        return f"ollama://{self.endpoint.split('://', 1)[-1]}/{namespace}/{repo}:{tag}"

    def _open(self, path: str, accept: str | None = None) -> IO[bytes]:
        import urllib.request

        request = urllib.request.Request(f"{self.endpoint.rstrip('/')}{path}",  # noqa: S310 (https or a test server)
                                         headers={"Accept": accept} if accept else {})
        return urllib.request.urlopen(request, timeout=60)  # noqa: S310

    def manifest_path(self) -> str:
        """Where Ollama keeps this tag's manifest under ``OLLAMA_MODELS``."""
        namespace, repo, tag = self._parts
        return f"manifests/registry.ollama.ai/{namespace}/{repo}/{tag}"

    def list_files(self) -> list[UpstreamFile]:
        """The manifest and every blob it references (config, model, template, params...)."""
        namespace, repo, tag = self._parts
        with self._open(f"/v2/{namespace}/{repo}/manifests/{tag}", OLLAMA_MANIFEST_MEDIA_TYPE) as response:
            self._manifest = response.read()
        doc = json.loads(self._manifest)
        layers = [doc["config"], *doc["layers"]]
        model = [layer for layer in doc["layers"] if layer.get("mediaType") == OLLAMA_MODEL_LAYER]
        if [layer["digest"] for layer in model] != [f"sha256:{self.sha256}"]:
            msg = (f"{self.source}: the tag's model layer is {[m['digest'] for m in model]}, not the pinned "
                   f"sha256:{self.sha256}; the tag was re-pushed. Refusing it; pin the new digest deliberately")
            raise IntegrityError(msg)
        files = [UpstreamFile(path=self.manifest_path(), size=len(self._manifest),
                              sha256=hashlib.sha256(self._manifest).hexdigest())]
        for layer in layers:
            hexdigest = _sha256_hex(str(layer["digest"]).removeprefix("sha256:"))
            files.append(UpstreamFile(path=f"blobs/sha256-{hexdigest}", size=int(layer["size"]), sha256=hexdigest))
        return sorted(files, key=lambda f: f.path)

    def fetch(self, file: UpstreamFile, workdir: Path) -> Path:
        """Write the manifest read by ``list_files``, or stream one blob to ``workdir``."""
        target = workdir / file.path.replace("/", "_")
        if file.path == self.manifest_path():
            assert self._manifest is not None  # noqa: S101 (list_files ran first)
            target.write_bytes(self._manifest)
            return target
        namespace, repo, _ = self._parts
        digest = file.path.removeprefix("blobs/sha256-")
        with self._open(f"/v2/{namespace}/{repo}/blobs/sha256:{digest}") as response, target.open("wb") as sink:
            shutil.copyfileobj(response, sink, CHUNK)
        return target


# --------------------------------------------------------------------------- mirror


@dataclass(kw_only=True)
class SyncReport:
    """What one sync did."""

    model: str
    revision: str
    copied: list[str] = field(default_factory=list[str])
    skipped: list[str] = field(default_factory=list[str])
    copied_bytes: int = 0
    manifest: Manifest | None = None


def verify_upstream_file(file: UpstreamFile, path: Path, source: str) -> str:
    """The sha256 of a downloaded file, after checking it against what the upstream records."""
    size = path.stat().st_size
    sha = sha256_file(path)
    if size != file.size:
        msg = (f"{source}: {file.path} is {size} bytes, the upstream lists {file.size}; refusing it "
               "(nothing was written for this file)")
        raise IntegrityError(msg)
    if file.sha256 is not None and sha != file.sha256:
        msg = (f"{source}: {file.path} has sha256 {sha}, the upstream records {file.sha256}; refusing it "
               "(nothing was written for this file)")
        raise IntegrityError(msg)
    if file.sha256 is None and file.git_blob_id is not None and git_blob_id(path) != file.git_blob_id:
        msg = (f"{source}: {file.path} does not match its git blob id {file.git_blob_id}; refusing it "
               "(nothing was written for this file)")
        raise IntegrityError(msg)
    return sha


def already_mirrored(store: BlobStore, name: str, file: UpstreamFile) -> str | None:
    """The verified sha256 of the blob when it holds exactly this upstream file, else None."""
    found = blob_metadata(store, name)
    if found is None:
        return None
    metadata, size = found
    sha = metadata.get(SHA256_METADATA_KEY)
    if sha is None or size != file.size:
        return None
    if file.sha256 is not None:
        return sha if sha == file.sha256 else None
    return sha if file.git_blob_id is not None and metadata.get(GIT_BLOB_METADATA_KEY) == file.git_blob_id else None


def sync_artifact(upstream: Upstream, store: BlobStore, *, model: str, kind: ArtifactKind, revision: str,
                  progress: Progress | None = None, workdir: Path | None = None) -> SyncReport:
    """Copy every upstream file that the registry does not already hold verified; write the manifest last.

    Idempotent: a file whose blob carries the expected sha256 (and size) is skipped, so a re-run copies
    nothing and an interrupted run resumes where it stopped.
    """
    notify = progress or (lambda _event, _n: None)
    prefix = artifact_prefix(model, revision)
    report = SyncReport(model=model, revision=revision)
    previous = read_manifest(store, model, revision)
    entries: list[FileEntry] = []
    scratch = Path(tempfile.mkdtemp(prefix="slm-sync-", dir=workdir))
    try:
        for file in upstream.list_files():
            have = already_mirrored(store, prefix + file.path, file)
            if have is not None:
                entries.append(FileEntry(path=file.path, size=file.size, sha256=have))
                report.skipped.append(file.path)
                notify("skipped", file.size)
                continue
            local = upstream.fetch(file, scratch)
            sha = verify_upstream_file(file, local, upstream.source)
            upload_verified(store, prefix + file.path, local, sha, git_blob=file.git_blob_id)
            local.unlink()
            entries.append(FileEntry(path=file.path, size=file.size, sha256=sha))
            report.copied.append(file.path)
            report.copied_bytes += file.size
            notify("copied", file.size)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    manifest = Manifest(model=model, kind=kind, source=upstream.source, revision=revision, files=tuple(entries))
    if previous is None or previous.to_json() != manifest.to_json():
        store.get_blob_client(prefix + MANIFEST_NAME).upload_blob(manifest.to_json().encode(), overwrite=True)
    report.manifest = manifest
    return report


# --------------------------------------------------------------------------- fill


@dataclass(kw_only=True)
class FillReport:
    """What one fill did."""

    downloaded: list[str] = field(default_factory=list[str])
    reused: list[str] = field(default_factory=list[str])
    removed: list[str] = field(default_factory=list[str])
    verified_bytes: int = 0
    offline: bool = False
    """The registry was unreachable and the files were re-verified against the stored manifest."""


class ArtifactReader(Protocol):
    """Where a fill reads one model revision from: blob storage (AKS) or an OCI registry (edge)."""

    def read_manifest_bytes(self, model: str, revision: str) -> bytes | None:
        """The project manifest's bytes, or None when the registry has no such revision."""
        ...

    def chunks(self, model: str, revision: str, entry: FileEntry) -> Iterable[bytes]:
        """The content of one file; raises ``IntegrityError`` when the registry lacks it."""
        ...

    def where(self, model: str, revision: str, path: str) -> str:
        """A file's place in the registry, for messages."""
        ...


@dataclass(frozen=True, kw_only=True)
class BlobArtifacts:
    """``ArtifactReader`` over the weights storage container of a model family."""

    store: BlobStore

    def where(self, model: str, revision: str, path: str) -> str:
        """``<model>/<revision>/<path>``."""
        return artifact_prefix(model, revision) + path

    def read_manifest_bytes(self, model: str, revision: str) -> bytes | None:
        """The ``slm-manifest.json`` blob, or None."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return bytes(self.store.get_blob_client(artifact_prefix(model, revision) + MANIFEST_NAME)
                         .download_blob().readall())
        except ResourceNotFoundError:
            return None

    def chunks(self, model: str, revision: str, entry: FileEntry) -> Iterator[bytes]:
        """The blob's content, in chunks."""
        from azure.core.exceptions import ResourceNotFoundError

        name = self.where(model, revision, entry.path)
        try:
            yield from self.store.get_blob_client(name).download_blob(max_concurrency=4).chunks()
        except ResourceNotFoundError:
            msg = f"{name} is in the manifest but not in the registry"
            raise IntegrityError(msg) from None


def download_verified(reader: ArtifactReader, model: str, revision: str, entry: FileEntry, target: Path) -> None:
    """Stream one file into ``target`` via a partial file, hashing as it writes; refuse a mismatch."""
    partial = target.with_name(target.name + PARTIAL_SUFFIX)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with partial.open("wb") as sink:
            sha, size = sha256_stream(reader.chunks(model, revision, entry), sink)
        if size != entry.size or sha != entry.sha256:
            msg = (f"{reader.where(model, revision, entry.path)}: the registry's copy has sha256 {sha} ({size} "
                   f"bytes), the manifest records {entry.sha256} ({entry.size} bytes); refusing to start. Re-run "
                   "`slmctl models sync` and find out who changed it (storage logs: StorageWrite; registry: "
                   "the repository's audit log)")
            raise IntegrityError(msg)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


STATE_DIR: Final = ".slm"
"""Inside a filled volume (edge only): the verified manifest and the ``verified`` marker."""
VERIFIED_MARKER: Final = "verified"


def _check_manifest(data: bytes, model: str, revision: str, manifest_sha256: str | None, where: str) -> Manifest:
    if manifest_sha256 is not None and hashlib.sha256(data).hexdigest() != manifest_sha256:
        msg = (f"{where}: the manifest's sha256 is {hashlib.sha256(data).hexdigest()}, the stack pins "
               f"{manifest_sha256}; refusing it (someone rewrote the manifest, or the pin is stale: run "
               "`slmctl models sync` and pin what it prints)")
        raise IntegrityError(msg)
    manifest = Manifest.from_json(data)
    if manifest.revision != revision or manifest.model != model:
        msg = f"manifest is for {manifest.model}@{manifest.revision}, not {model}@{revision}; refusing it"
        raise IntegrityError(msg)
    return manifest


def fill(store: BlobStore, *, model: str, revision: str, dest: Path,
         include: Sequence[str] | None = None, progress: Progress | None = None) -> FillReport:
    """``fill_from`` the weights storage container ``store``."""
    return fill_from(BlobArtifacts(store=store), model=model, revision=revision, dest=dest, include=include,
                     progress=progress)


def fill_from(reader: ArtifactReader, *, model: str, revision: str, dest: Path,
              include: Sequence[str] | None = None, progress: Progress | None = None,
              manifest_sha256: str | None = None, offline_ok: bool = False,
              unreachable: tuple[type[BaseException], ...] = (OSError,)) -> FillReport:
    """Make ``dest`` hold exactly the manifest's files (those matching ``include``; default all), verified.

    A file already in ``dest`` is re-hashed and kept only when it matches; anything else in ``dest``
    (a stale or injected file) is removed. Raises ``IntegrityError`` on any mismatch.

    ``manifest_sha256``: the manifest itself must have this digest (pinned in the stack), checked
    before any file. ``offline_ok`` (edge devices, which must restart without a network): the verified
    manifest is kept in ``dest/.slm/``; when the registry is unreachable (``unreachable`` errors), the
    files already in ``dest`` are re-verified against it instead, and anything missing or changed still
    fails. A ``dest/.slm/verified`` marker (``<model>@<revision>``) is written only after success.
    """
    notify = progress or (lambda _event, _n: None)
    state = dest / STATE_DIR
    marker = state / VERIFIED_MARKER
    marker.unlink(missing_ok=True)
    stored = state / MANIFEST_NAME
    report = FillReport()
    where = reader.where(model, revision, MANIFEST_NAME)
    try:
        data = reader.read_manifest_bytes(model, revision)
    except unreachable:
        if not (offline_ok and stored.is_file()):
            raise
        data, report.offline = stored.read_bytes(), True
    if data is None:
        msg = (f"{where} is not in the registry; run `slmctl models sync <stack>` before deploying the "
               "serving workloads")
        raise SupplyError(msg)
    manifest = _check_manifest(data, model, revision, manifest_sha256, where)
    wanted = [f for f in manifest.files if include is None or matches(f.path, include)]
    if not wanted:
        msg = f"{model}@{revision}: the manifest lists no file matching {', '.join(include or ['*'])}"
        raise SupplyError(msg)
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    for entry in wanted:
        target = (root / entry.path).resolve()
        if not target.is_relative_to(root) or (offline_ok and target.is_relative_to(root / STATE_DIR)):
            msg = f"manifest path {entry.path!r} leaves {dest}; refusing it"
            raise IntegrityError(msg)
        if target.is_file() and target.stat().st_size == entry.size and sha256_file(target) == entry.sha256:
            report.reused.append(entry.path)
            notify("skipped", entry.size)
        elif report.offline:
            msg = (f"{where}: the registry is unreachable and {entry.path} is missing or differs from the stored "
                   "manifest; refusing to start (restore the network path to the registry)")
            raise IntegrityError(msg)
        else:
            download_verified(reader, model, revision, entry, target)
            report.downloaded.append(entry.path)
            notify("copied", entry.size)
        report.verified_bytes += entry.size
    keep = {(root / e.path).resolve() for e in wanted}
    for path in sorted(root.rglob("*"), reverse=True):
        if offline_ok and path.resolve().is_relative_to(root / STATE_DIR):
            continue
        if path.is_file() and path.resolve() not in keep:
            path.unlink()
            report.removed.append(str(path.relative_to(root)))
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    if offline_ok:
        state.mkdir(exist_ok=True)
        stored.write_bytes(data)
        marker.write_text(f"{model}@{revision}\n")
    return report
