"""components.acr_auth against a local HTTP server that plays the registry's token endpoint."""

from __future__ import annotations

import json
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from components.acr_auth import (
    ACR_AUDIENCE_SCOPE,
    AcrTokenExchangeError,
    acr_refresh_token,
    exchange_refresh_token,
    exchange_url,
)

LOGIN_SERVER = "slmprodacr.azurecr.io"
ACCESS_TOKEN = "entra-access-token-3c1e"
REFRESH = "acr-refresh-token-77aa"
TENANT = "11111111-1111-1111-1111-111111111111"


@dataclass
class Registry:
    """What the fake registry answers, and what it received."""

    status: int = 200
    body: bytes = json.dumps({"refresh_token": REFRESH}).encode()
    requests: list[dict[str, Any]] = field(default_factory=list)
    base_url: str = ""


@pytest.fixture
def registry() -> Iterator[Registry]:
    state = Registry()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length).decode()
            state.requests.append({"path": self.path, "content_type": self.headers.get("Content-Type"),
                                   "form": dict(urllib.parse.parse_qsl(raw, strict_parsing=True))})
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(state.body)))
            self.end_headers()
            self.wfile.write(state.body)

        def log_message(self, *_: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@dataclass
class FakeToken:
    token: str


@dataclass
class FakeCredential:
    """Records get_token calls; optionally fails like azure-identity does."""

    calls: list[tuple[tuple[str, ...], dict[str, Any]]] = field(default_factory=list)
    error: Exception | None = None

    def get_token(self, *scopes: str, **kwargs: Any) -> FakeToken:
        self.calls.append((scopes, kwargs))
        if self.error is not None:
            raise self.error
        return FakeToken(ACCESS_TOKEN)


class TestExchange:
    def test_posts_the_documented_form_and_returns_the_refresh_token(self, registry) -> None:
        token = exchange_refresh_token(LOGIN_SERVER, access_token=ACCESS_TOKEN, tenant_id=TENANT,
                                       base_url=registry.base_url)
        assert token == REFRESH
        (request,) = registry.requests
        assert request["path"] == "/oauth2/exchange"
        assert request["content_type"] == "application/x-www-form-urlencoded"
        assert request["form"] == {"grant_type": "access_token", "service": LOGIN_SERVER,
                                   "tenant": TENANT, "access_token": ACCESS_TOKEN}

    def test_tenant_is_left_out_when_not_given(self, registry) -> None:
        exchange_refresh_token(LOGIN_SERVER, access_token=ACCESS_TOKEN, base_url=registry.base_url)
        assert "tenant" not in registry.requests[0]["form"]

    def test_default_credential_flow_uses_the_acr_audience_and_the_tenant(self, registry) -> None:
        credential = FakeCredential()
        token = acr_refresh_token(LOGIN_SERVER, TENANT, credential=credential, base_url=registry.base_url)
        assert token == REFRESH
        assert credential.calls == [((ACR_AUDIENCE_SCOPE,), {"tenant_id": TENANT})]
        assert ACR_AUDIENCE_SCOPE == "https://containerregistry.azure.net/.default"
        assert registry.requests[0]["form"]["access_token"] == ACCESS_TOKEN


class TestExchangeErrors:
    @pytest.mark.parametrize("status", [401, 403])
    def test_a_refused_token_names_the_registry_and_the_acrpush_fix(self, registry, status) -> None:
        registry.status = status
        registry.body = b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
        with pytest.raises(AcrTokenExchangeError) as excinfo:
            exchange_refresh_token(LOGIN_SERVER, access_token=ACCESS_TOKEN, base_url=registry.base_url)
        message = str(excinfo.value)
        assert f"registry {LOGIN_SERVER} refused the Entra ID token (HTTP {status})" in message
        assert "az role assignment create --assignee <deployer-object-id> --role AcrPush" in message
        assert "authentication required" in message
        assert ACCESS_TOKEN not in message

    def test_another_http_error_reports_the_status(self, registry) -> None:
        registry.status = 500
        registry.body = b"upstream failure"
        with pytest.raises(AcrTokenExchangeError, match=rf"registry {LOGIN_SERVER} answered HTTP 500 to the "
                                                        r"token exchange: upstream failure"):
            exchange_refresh_token(LOGIN_SERVER, access_token=ACCESS_TOKEN, base_url=registry.base_url)

    def test_a_body_that_is_not_json_is_an_error(self, registry) -> None:
        registry.body = b"<html>login</html>"
        with pytest.raises(AcrTokenExchangeError, match=r"not JSON .*'<html>login</html>'.*is an Azure "
                                                        r"Container Registry login server"):
            exchange_refresh_token(LOGIN_SERVER, access_token=ACCESS_TOKEN, base_url=registry.base_url)

    @pytest.mark.parametrize("body", [b'{"access_token": "x"}', b'{"refresh_token": ""}', b"[1, 2]"])
    def test_an_answer_without_a_refresh_token_is_an_error(self, registry, body) -> None:
        registry.body = body
        with pytest.raises(AcrTokenExchangeError, match=r"without a refresh_token"):
            exchange_refresh_token(LOGIN_SERVER, access_token=ACCESS_TOKEN, base_url=registry.base_url)

    def test_an_unreachable_registry_says_how_to_reach_a_private_one(self) -> None:
        with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        with pytest.raises(AcrTokenExchangeError, match=rf"could not reach registry {LOGIN_SERVER} .*private "
                                                        r"endpoint"):
            exchange_refresh_token(LOGIN_SERVER, access_token=ACCESS_TOKEN, base_url=f"http://127.0.0.1:{port}",
                                   timeout_seconds=5)

    def test_a_credential_failure_is_wrapped_with_the_sign_in_fix(self) -> None:
        credential = FakeCredential(error=RuntimeError("no credential in the chain"))
        with pytest.raises(AcrTokenExchangeError, match=r"could not get a Microsoft Entra ID token .* "
                                                        r"no credential in the chain\. Sign in with 'az login'"):
            acr_refresh_token(LOGIN_SERVER, credential=credential, base_url="http://127.0.0.1:9")

    @pytest.mark.parametrize("base_url", ["http://registry.example.com", "ftp://127.0.0.1"])
    def test_a_token_is_never_sent_over_plain_http_to_a_remote_host(self, base_url) -> None:
        with pytest.raises(ValueError, match=r"refusing to send an Entra ID token"):
            exchange_refresh_token(LOGIN_SERVER, access_token=ACCESS_TOKEN, base_url=base_url)

    def test_the_real_endpoint_is_https_on_the_login_server(self) -> None:
        assert exchange_url(LOGIN_SERVER) == f"https://{LOGIN_SERVER}/oauth2/exchange"
