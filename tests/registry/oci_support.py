"""A real OCI registry for the edge supply-chain tests: CNCF Distribution (Debian ``docker-registry``).

Started on 127.0.0.1 over HTTPS (a self-signed certificate) with htpasswd (bcrypt) Basic auth, so the
device-side fill authenticates with a token name and password as it does against ACR, the registry
checks every pushed blob against its digest, and a test can change a stored blob on disk the way a
compromised registry backend would (the registry serves it as is; the puller must refuse it).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from components.registry.oci import OciRegistry
from tests.registry.supply_support import _free_port, self_signed_cert

REGISTRY_BINARY = "docker-registry"
USERNAME = "edge-pull"
PASSWORD = "edge-pull-password-3c9f1a"


@dataclass
class DistributionRegistry:
    """A running ``docker-registry serve`` with one htpasswd user."""

    workdir: Path
    port: int = 0
    cert: Path | None = None
    key: Path | None = None
    """Default: a new self-signed pair. Pass Azurite's to let one CA bundle trust both servers."""
    _proc: subprocess.Popen[bytes] | None = None

    @property
    def login_server(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def data(self) -> Path:
        return self.workdir / "data"

    def client(self, username: str = USERNAME, password: str = PASSWORD) -> OciRegistry:
        return OciRegistry(login_server=self.login_server, username=username, password=password)

    def blob_path(self, sha256: str) -> Path:
        """Where the filesystem driver keeps a blob's bytes."""
        return self.data / "docker/registry/v2/blobs/sha256" / sha256[:2] / sha256 / "data"

    def start(self) -> None:
        assert self.cert is not None
        self.port = self.port or _free_port()
        key = self.key or self.workdir / "key.pem"
        config = self.workdir / "config.yml"
        config.write_text(
            "version: 0.1\nlog: {level: error, accesslog: {disabled: true}}\n"
            f"storage: {{filesystem: {{rootdirectory: {self.data}}}}}\n"
            f"http: {{addr: '127.0.0.1:{self.port}', tls: {{certificate: {self.cert}, key: {key}}}}}\n"
            f"auth: {{htpasswd: {{realm: slm-test, path: {self.workdir / 'htpasswd'}}}}}\n")
        self._proc = subprocess.Popen([REGISTRY_BINARY, "serve", str(config)], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, cwd=self.workdir)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                msg = f"docker-registry exited: {self._proc.stderr.read().decode() if self._proc.stderr else ''}"
                raise RuntimeError(msg)
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        msg = "docker-registry did not listen within 60 s"
        raise RuntimeError(msg)

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=30)
            self._proc = None

    def __enter__(self) -> DistributionRegistry:
        import bcrypt

        if shutil.which(REGISTRY_BINARY) is None:
            msg = ("docker-registry is missing: scripts/install-tools.sh installs the Debian package "
                   "docker-registry (the CNCF Distribution registry)")
            raise RuntimeError(msg)
        if self.cert is None:
            self.cert, self.key = self_signed_cert(self.workdir)
        hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
        (self.workdir / "htpasswd").write_text(f"{USERNAME}:{hashed}\n")
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
