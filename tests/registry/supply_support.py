"""Real, local stand-ins for the two ends of the model supply chain.

- ``FakeHub``: an HTTP server on 127.0.0.1 that answers the Hub routes ``huggingface_hub`` calls for
  a pinned revision (``/api/models/<repo>/tree/<rev>`` and ``HEAD``/``GET /<repo>/resolve/<rev>/<file>``
  with the ``X-Repo-Commit``, ``ETag``/``X-Linked-Etag`` and ``X-Linked-Size`` headers it reads, see
  ``huggingface_hub.file_download.get_hf_file_metadata``). ``tampered`` serves other bytes than the
  tree records, to prove verification fails closed.
- ``Azurite``: the Azure Storage emulator (npm ``azurite``) over HTTPS with ``--oauth basic``, so the
  real ``azure-storage-blob`` client authenticates with a bearer token, never an account key.
  Azurite checks the token's issuer, audience and lifetime but not its signature, so a token minted
  here stands in for Entra ID's. ``fake_az_dir`` puts an ``az`` on PATH that prints such a token
  the way ``az account get-access-token`` does: ``DefaultAzureCredential`` (restricted to
  ``AzureCliCredential`` by ``AZURE_TOKEN_CREDENTIALS``) then runs its real code path offline.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from azure.core.credentials import AccessToken

REPO_ROOT = Path(__file__).resolve().parents[2]
AZURITE = REPO_ROOT / "node_modules" / ".bin" / "azurite-blob"
ACCOUNT = "devstoreaccount1"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


# --------------------------------------------------------------------------- Hub


def git_blob_id(data: bytes) -> str:
    """The git blob id of a small file, as the Hub reports it in ``oid``."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


class LoopbackServer:
    """A threaded HTTP server on 127.0.0.1 and a free port, stopped when its ``with`` block ends."""

    _server: ThreadingHTTPServer | None = None

    @property
    def endpoint(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def _serve(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()


@dataclass
class FakeHub(LoopbackServer):
    """A one-repo Hub. ``lfs`` names the files stored as LFS (sha256 recorded), the rest are git blobs."""

    repo: str
    revision: str
    files: dict[str, bytes]
    lfs: frozenset[str] = frozenset()
    tampered: dict[str, bytes] = field(default_factory=dict[str, bytes])
    downloads: list[str] = field(default_factory=list[str])

    def tree(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        folders = sorted({str(Path(p).parent) for p in self.files if "/" in p})
        for folder in folders:
            entries.append({"type": "directory", "path": folder, "oid": "0" * 40})
        for path, data in sorted(self.files.items()):
            entry: dict[str, Any] = {"type": "file", "path": path, "size": len(data), "oid": git_blob_id(data)}
            if path in self.lfs:
                entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
            entries.append(entry)
        return entries

    def __enter__(self) -> FakeHub:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                del format, args

            def _file(self) -> tuple[str, bytes] | None:
                prefix = f"/{hub.repo}/resolve/{hub.revision}/"
                path = self.path.split("?", 1)[0]
                if not path.startswith(prefix):
                    return None
                name = path[len(prefix):]
                if name not in hub.files:
                    return None
                return name, hub.tampered.get(name, hub.files[name])

            def _headers(self, name: str, data: bytes) -> None:
                recorded = hub.files[name]
                self.send_header("X-Repo-Commit", hub.revision)
                etag = hashlib.sha256(recorded).hexdigest() if name in hub.lfs else git_blob_id(recorded)
                self.send_header("ETag", f'"{etag}"')
                if name in hub.lfs:
                    self.send_header("X-Linked-Etag", f'"{etag}"')
                    self.send_header("X-Linked-Size", str(len(recorded)))
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Content-Type", "application/octet-stream")

            def do_HEAD(self) -> None:
                found = self._file()
                if found is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self._headers(*found)
                self.end_headers()

            def do_GET(self) -> None:
                tree_prefix = f"/api/models/{hub.repo}/tree/{hub.revision}"
                if self.path.split("?", 1)[0] == tree_prefix:
                    body = json.dumps(hub.tree()).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                found = self._file()
                if found is None:
                    self.send_error(404)
                    return
                name, data = found
                hub.downloads.append(name)
                self.send_response(200)
                self._headers(name, data)
                self.end_headers()
                self.wfile.write(data)

        self._serve(Handler)
        return self


# --------------------------------------------------------------------------- Entra-shaped tokens


def storage_token(lifetime_seconds: int = 3600) -> tuple[str, int]:
    """An unsigned JWT with the claims Azurite's ``--oauth basic`` checks (issuer, audience, lifetime)."""
    now = int(time.time())
    claims = {"aud": "https://storage.azure.com", "iss": f"https://sts.windows.net/{TENANT}/", "tid": TENANT,
              "oid": "0b5b7a3e-6d4e-4e0f-9d53-1c3a2b4c5d6e", "nbf": now - 60, "iat": now - 60,
              "exp": now + lifetime_seconds}

    def part(obj: Mapping[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2ln", now + lifetime_seconds


class EntraShapedCredential:
    """A ``TokenCredential`` handing out ``storage_token()`` (what Entra would issue to a workload)."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        del kwargs
        assert scopes == ("https://storage.azure.com/.default",), scopes
        token, expires = storage_token()
        return AccessToken(token, expires)


def write_fake_az(directory: Path) -> Path:
    """An ``az`` executable answering ``account get-access-token`` like the Azure CLI does."""
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "az"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from supply_support import storage_token\n"
        "assert sys.argv[1:3] == ['account', 'get-access-token'], sys.argv\n"
        "token, expires = storage_token()\n"
        "print(json.dumps({'accessToken': token, 'expires_on': expires, 'tokenType': 'Bearer'}))\n",
        encoding="utf-8")
    script.chmod(0o755)
    return directory


def cli_credential_env(az_dir: Path, ca_bundle: Path) -> dict[str, str]:
    """Environment for a subprocess whose ``DefaultAzureCredential`` must use only the (fake) Azure CLI."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "HF_"))}
    env |= {"PATH": f"{az_dir}{os.pathsep}{env.get('PATH', '')}", "AZURE_TOKEN_CREDENTIALS": "AzureCliCredential",
            "REQUESTS_CA_BUNDLE": str(ca_bundle), "SSL_CERT_FILE": str(ca_bundle)}
    return env


# --------------------------------------------------------------------------- Azurite


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (Azurite serves OAuth over HTTPS only)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@dataclass
class Azurite:
    """A running Azurite blob service with OAuth over HTTPS."""

    workdir: Path
    port: int = 0
    cert: Path | None = None
    _proc: subprocess.Popen[bytes] | None = None

    @property
    def account_url(self) -> str:
        return f"https://127.0.0.1:{self.port}/{ACCOUNT}"

    def service(self) -> Any:
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient(self.account_url, credential=EntraShapedCredential(),
                                 connection_verify=str(self.cert))

    def container(self, name: str) -> Any:
        client = self.service().get_container_client(name)
        if not client.exists():
            client.create_container()
        return client

    def __enter__(self) -> Azurite:
        node = shutil.which("node")
        if node is None or not AZURITE.exists():
            msg = ("Azurite is missing: run `npm ci` at the repository root (scripts/install-tools.sh does); "
                   "it is the npm devDependency `azurite`")
            raise RuntimeError(msg)
        self.cert, key = self_signed_cert(self.workdir)
        self.port = _free_port()
        self._proc = subprocess.Popen(
            [str(AZURITE), "--blobHost", "127.0.0.1", "--blobPort", str(self.port), "--inMemoryPersistence", "--silent", "--oauth", "basic",
             "--cert", str(self.cert), "--key", str(key), "--skipApiVersionCheck", "--disableTelemetry"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=self.workdir)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                msg = f"azurite exited: {self._proc.stderr.read().decode() if self._proc.stderr else ''}"
                raise RuntimeError(msg)
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.2)
        msg = "azurite did not listen within 60 s"
        raise RuntimeError(msg)

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=30)


def tiny_repo() -> dict[str, bytes]:
    """A model repository small enough for a test, shaped like a real one."""
    return {
        "config.json": b'{"architectures": ["Phi3ForCausalLM"], "hidden_size": 64}\n',
        "tokenizer.json": b'{"version": "1.0", "model": {"type": "BPE"}}\n',
        "model-00001-of-00002.safetensors": bytes(range(256)) * 4096,
        "model-00002-of-00002.safetensors": bytes(reversed(range(256))) * 2048,
        "model.safetensors.index.json": b'{"weight_map": {}}\n',
        "pytorch_model.bin": b"pickled duplicate that is never mirrored",
        "cpu/cpu-int4/genai_config.json": b'{"model": {"type": "phi3"}}\n',
        "cpu/cpu-int4/model.onnx": b"\x08\x07" * 1000,
    }


LFS_FILES = frozenset({"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                       "pytorch_model.bin", "cpu/cpu-int4/model.onnx"})


def iter_blob_names(container: Any, prefix: str) -> Iterator[str]:
    """Names of the blobs under a prefix."""
    for blob in container.list_blobs(name_starts_with=prefix):
        yield blob.name


@dataclass
class FakeOllama(LoopbackServer):
    """An Ollama registry with one tag: ``/v2/<ns>/<name>/manifests/<tag>`` and ``/blobs/sha256:<hex>``."""

    tag: str
    blobs: dict[str, bytes]
    """mediaType -> content (config, model, template...)."""

    @staticmethod
    def digest(data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()

    def manifest(self) -> bytes:
        def layer(media: str) -> dict[str, Any]:
            return {"mediaType": media, "digest": f"sha256:{self.digest(self.blobs[media])}",
                    "size": len(self.blobs[media])}

        config = "application/vnd.docker.container.image.v1+json"
        return json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                           "config": layer(config), "layers": [layer(m) for m in self.blobs if m != config]}).encode()

    def __enter__(self) -> FakeOllama:
        fake = self
        name, _, tag = self.tag.partition(":")

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                del format, args

            def do_GET(self) -> None:
                by_digest = {f"sha256:{fake.digest(b)}": b for b in fake.blobs.values()}
                if self.path == f"/v2/library/{name}/manifests/{tag}":
                    body = fake.manifest()
                elif self.path.startswith(f"/v2/library/{name}/blobs/") and self.path.rsplit("/", 1)[1] in by_digest:
                    body = by_digest[self.path.rsplit("/", 1)[1]]
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._serve(Handler)
        return self
