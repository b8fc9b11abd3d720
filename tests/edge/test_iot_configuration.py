"""The IoT Hub configurations client and dynamic provider against a local HTTP server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from components.edge.iot_configuration import (
    API_VERSION,
    IotHubApiError,
    IotHubConfigurationClient,
    IotHubConfigurationProvider,
)

TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.secret-token-value"


@dataclass
class Reply:
    status: int
    body: bytes = b""


@dataclass
class Hub:
    """What the fake hub received, and what it answers next (FIFO; default: echo with an etag)."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    replies: list[Reply] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    hub: Hub

    def log_message(self, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        call = {"method": self.command, "path": url.path, "query": parse_qs(url.query),
                "authorization": self.headers.get("Authorization"), "if_match": self.headers.get("If-Match"),
                "content_type": self.headers.get("Content-Type"), "body": json.loads(raw) if raw else None}
        self.hub.calls.append(call)
        if self.hub.replies:
            reply = self.hub.replies.pop(0)
        elif self.command == "DELETE":
            reply = Reply(204)
        else:
            reply = Reply(200, json.dumps({**(call["body"] or {}), "etag": "ImV0YWcxIg=="}).encode())
        self.send_response(reply.status)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    do_PUT = do_GET = do_DELETE = _handle  # noqa: N815


@pytest.fixture
def hub() -> Iterator[tuple[Hub, str]]:
    state = Hub()
    handler = type("Handler", (_Handler,), {"hub": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _props(**over: Any) -> dict[str, Any]:
    props = {"hubHostName": "slmdev.azure-devices.net", "configurationId": "slm-plant-model-0123456789",
             "content": {"modulesContent": {"$edgeAgent": {"properties.desired.modules.slm-plant": {}}}},
             "targetCondition": "tags.slmFleet='plant'", "priority": 10.0, "labels": {"slmFleet": "plant"},
             "etag": None}
    return {**props, **over}


def _provider(base_url: str) -> IotHubConfigurationProvider:
    return IotHubConfigurationProvider(lambda _host: IotHubConfigurationClient(base_url, lambda: TOKEN))


class TestCalls:
    def test_create_puts_the_configuration_without_if_match(self, hub: tuple[Hub, str]) -> None:
        state, url = hub
        result = _provider(url).create(_props())
        (call,) = state.calls
        assert call["method"] == "PUT"
        assert call["path"] == "/configurations/slm-plant-model-0123456789"
        assert call["query"] == {"api-version": [API_VERSION]}
        assert call["authorization"] == f"Bearer {TOKEN}"
        assert call["if_match"] is None
        assert call["content_type"].startswith("application/json")
        body = call["body"]
        assert set(body) == {"id", "schemaVersion", "labels", "content", "targetCondition", "priority"}
        assert body["id"] == "slm-plant-model-0123456789"
        assert body["priority"] == 10
        assert "modulesContent" in body["content"]
        assert result.id == "slm-plant-model-0123456789"
        assert result.outs["etag"] == "ImV0YWcxIg=="

    def test_update_sends_the_previous_etag_in_if_match(self, hub: tuple[Hub, str]) -> None:
        state, url = hub
        result = _provider(url).update("slm-plant-model-0123456789", _props(etag="ImV0YWcxIg=="),
                                       _props(priority=20.0))
        (call,) = state.calls
        assert call["method"] == "PUT"
        assert call["if_match"] == '"ImV0YWcxIg=="'
        assert call["body"]["etag"] == "ImV0YWcxIg=="
        assert call["body"]["priority"] == 20
        assert result.outs["priority"] == 20.0

    def test_delete_uses_a_wildcard_if_match(self, hub: tuple[Hub, str]) -> None:
        state, url = hub
        _provider(url).delete("slm-plant-model-0123456789", _props())
        (call,) = state.calls
        assert (call["method"], call["path"], call["if_match"]) == (
            "DELETE", "/configurations/slm-plant-model-0123456789", "*")
        assert call["query"] == {"api-version": [API_VERSION]}
        assert call["authorization"] == f"Bearer {TOKEN}"

    def test_delete_of_a_missing_configuration_is_idempotent(self, hub: tuple[Hub, str]) -> None:
        state, url = hub
        state.replies.append(Reply(404, b'{"Message":"ConfigurationNotFound"}'))
        client = IotHubConfigurationClient(url, lambda: TOKEN)
        assert client.delete("gone") is False
        _provider(url).delete("gone", _props(configurationId="gone"))  # no error either

    def test_read_of_a_vanished_configuration_reports_it_deleted(self, hub: tuple[Hub, str]) -> None:
        state, url = hub
        state.replies.append(Reply(404, b"{}"))
        assert _provider(url).read("slm-plant-model-0123456789", _props()).id == ""


class TestErrors:
    @pytest.mark.parametrize(("status", "fragment"), [
        (401, "token was rejected"),
        (409, "already exists"),
        (412, "changed outside Pulumi"),
        (500, "server error"),
    ])
    def test_bad_status_names_the_call_and_the_fix_without_the_token(
            self, hub: tuple[Hub, str], status: int, fragment: str) -> None:
        state, url = hub
        state.replies.append(Reply(status, f'{{"Message":"nope","echo":"Bearer {TOKEN}"}}'.encode()))
        with pytest.raises(IotHubApiError, match=fragment) as info:
            _provider(url).create(_props())
        text = str(info.value)
        assert f"PUT configurations/slm-plant-model-0123456789: HTTP {status}" in text
        assert TOKEN not in text
        assert info.value.status == status

    def test_invalid_json_is_reported_clearly(self, hub: tuple[Hub, str]) -> None:
        state, url = hub
        state.replies.append(Reply(200, b"<html>gateway</html>"))
        with pytest.raises(IotHubApiError, match="invalid JSON"):
            _provider(url).create(_props())

    def test_a_response_without_etag_is_an_error(self, hub: tuple[Hub, str]) -> None:
        state, url = hub
        state.replies.append(Reply(200, b'{"id":"x"}'))
        with pytest.raises(IotHubApiError, match="without an etag"):
            IotHubConfigurationClient(url, lambda: TOKEN).put("x", {"id": "x"})

    def test_unreachable_hub_is_reported_without_the_token(self) -> None:
        client = IotHubConfigurationClient("http://127.0.0.1:9", lambda: TOKEN, timeout_seconds=2)
        with pytest.raises(IotHubApiError, match="cannot reach") as info:
            client.get("x")
        assert TOKEN not in str(info.value)

    def test_plain_http_to_a_remote_host_is_refused(self) -> None:
        with pytest.raises(ValueError, match="must be https"):
            IotHubConfigurationClient("http://slmdev.azure-devices.net", lambda: TOKEN)


class TestDiffAndCheck:
    def test_content_change_replaces_and_priority_change_updates(self) -> None:
        provider = IotHubConfigurationProvider()
        replace = provider.diff("id", _props(), _props(content={"modulesContent": {"x": {}}},
                                                       configurationId="slm-plant-model-9999999999"))
        assert replace.changes is True
        assert set(replace.replaces or []) == {"content", "configurationId"}
        assert replace.delete_before_replace is False
        update = provider.diff("id", _props(), _props(priority=20.0))
        assert update.changes is True
        assert not update.replaces
        same = provider.diff("id", _props(etag="e"), _props())
        assert same.changes is False

    def test_check_rejects_a_missing_condition_and_bad_content(self) -> None:
        result = IotHubConfigurationProvider().check({}, _props(targetCondition="", content={}))
        assert {f.property for f in result.failures or []} == {"targetCondition", "content"}
