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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    token_server: TokenServer | None = None
    """Default: htpasswd Basic auth. Given: Bearer tokens from it (the flow ACR uses)."""
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
            + (f"auth: {{htpasswd: {{realm: slm-test, path: {self.workdir / 'htpasswd'}}}}}\n"
               if self.token_server is None else
               f"auth: {{token: {{realm: '{self.token_server.realm}', service: {TOKEN_SERVICE}, "
               f"issuer: {TOKEN_ISSUER}, rootcertbundle: {self.token_server.workdir / 'token-cert.pem'}}}}}\n"))
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


# --------------------------------------------------------------------------- Bearer token flow (ACR-shaped)


TOKEN_SERVICE = "slm-test-registry"
TOKEN_ISSUER = "slm-test-token-issuer"


@dataclass
class TokenServer:
    """``/oauth2/token`` the way ACR answers it: Basic credentials in, ``{"access_token": <JWT>}`` out.

    Each user has the actions it may take on ``models/*`` (``grants``): the token carries the
    requested scope's actions that the user holds, like an ACR scope map. The JWT is ES256-signed with
    an ``x5c`` certificate the registry trusts (``rootcertbundle``), which is how Distribution verifies
    tokens. Requests are recorded (``scopes``) so a test can see what the client asked for.
    """

    workdir: Path
    grants: dict[str, tuple[str, tuple[str, ...]]]
    """user -> (password, actions)."""
    scopes: list[str] = field(default_factory=list[str])
    _server: Any = None

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/oauth2/token"

    def __enter__(self) -> TokenServer:
        import base64
        import datetime
        import json
        import secrets
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import parse_qs, urlsplit

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, TOKEN_ISSUER)])
        now = datetime.datetime.now(datetime.UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(key, hashes.SHA256()))
        (self.workdir / "token-cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
        server = self

        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

        def jwt(user: str, access: list[dict[str, Any]]) -> str:
            issued = int(time.time())
            header = {"typ": "JWT", "alg": "ES256", "x5c": [x5c]}
            claims = {"iss": TOKEN_ISSUER, "sub": user, "aud": TOKEN_SERVICE, "exp": issued + 600,
                      "nbf": issued - 10, "iat": issued, "jti": secrets.token_hex(8), "access": access}
            signing = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
            r, s = decode_dss_signature(key.sign(signing.encode(), ec.ECDSA(hashes.SHA256())))
            return f"{signing}.{b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                try:
                    user, _, password = base64.b64decode(
                        self.headers.get("Authorization", "").removeprefix("Basic ")).decode().partition(":")
                except ValueError:
                    user, password = "", ""
                grant = server.grants.get(user)
                if grant is None or grant[0] != password:
                    self.send_response(401)
                    self.end_headers()
                    return
                access = []
                for scope in query.get("scope", []):
                    server.scopes.append(scope)
                    kind, _, rest = scope.partition(":")
                    repo, _, actions = rest.rpartition(":")
                    allowed = [a for a in actions.split(",") if a in grant[1]]
                    access.append({"type": kind, "name": repo, "actions": allowed})
                body = json.dumps({"access_token": jwt(user, access)}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
