"""IoT Hub configurations (IoT Edge deployments) as a Pulumi dynamic resource.

azure-native manages the IoT Hub (ARM) but not its data-plane configurations, so a fleet's
deployment is applied through the hub's REST API:

    PUT    https://<hub-host>/configurations/<id>?api-version=2021-04-12   (create; update with If-Match)
    GET    https://<hub-host>/configurations/<id>?api-version=2021-04-12   (refresh)
    DELETE https://<hub-host>/configurations/<id>?api-version=2021-04-12   (If-Match: *; 404 is done)

authenticated with an Entra token for ``https://iothubs.azure.net/.default`` (the hub has local
auth disabled; the deploying identity needs *IoT Hub Data Contributor* on it).

A deployment's content cannot change on the hub, so the id carries a content hash and the diff
replaces on a new id (created before the old one is deleted: devices are never left without a
deployment); target condition, priority and labels are updated in place with the etag.

Secrets: the provider object is pickled into the ``__provider`` input, so it holds no credential;
the token is fetched when an operation runs and is never put in inputs, outputs or error messages.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any, Final

import pulumi
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    Resource,
    ResourceProvider,
    UpdateResult,
)

API_VERSION: Final = "2021-04-12"
TOKEN_SCOPE: Final = "https://iothubs.azure.net/.default"  # noqa: S105 (an OAuth scope, not a secret)
BODY_EXCERPT_CHARS: Final = 300
LOCAL_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "::1"})
REPLACE_KEYS: Final = ("hubHostName", "configurationId", "content")
UPDATE_KEYS: Final = ("targetCondition", "priority", "labels")

TokenProvider = Callable[[], str]


class IotHubApiError(RuntimeError):
    """A configurations call failed; the message names the call and the fix, never the token."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class EntraTokenProvider:
    """Bearer tokens for IoT Hub from ``azure-identity``'s DefaultAzureCredential (CLI, OIDC, MSI)."""

    def __call__(self) -> str:
        """A fresh access token (azure-identity caches and refreshes it)."""
        from azure.identity import DefaultAzureCredential  # slow import: only on use

        return DefaultAzureCredential().get_token(TOKEN_SCOPE).token


class IotHubConfigurationClient:
    """The configurations REST API of one hub.

    Args:
        base_url: ``https://<hub-host>``; plain ``http`` only for a local test server.
        token_provider: returns a bearer token (called per request; never stored).
        api_version: the REST API version. Default: ``2021-04-12``.
        timeout_seconds: per-request timeout. Default: 30.
    """

    def __init__(self, base_url: str, token_provider: TokenProvider, *, api_version: str = API_VERSION,
                 timeout_seconds: float = 30.0) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        local = parsed.hostname in LOCAL_HOSTS
        if parsed.scheme != "https" and not (parsed.scheme == "http" and local):
            msg = f"IoT Hub base URL {base_url!r} must be https://<hub-host> (http only for 127.0.0.1)"
            raise ValueError(msg)
        self._base_url = base_url.rstrip("/")
        self._token_provider = token_provider
        self._api_version = api_version
        self._timeout = timeout_seconds

    def _url(self, configuration_id: str) -> str:
        quoted = urllib.parse.quote(configuration_id, safe="")
        return f"{self._base_url}/configurations/{quoted}?api-version={self._api_version}"

    def _call(self, method: str, configuration_id: str, *, body: Mapping[str, Any] | None = None,
              if_match: str | None = None) -> tuple[int, dict[str, Any] | None]:
        token = self._token_provider()
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body, sort_keys=True).encode()
            headers["Content-Type"] = "application/json; charset=utf-8"
        if if_match is not None:
            headers["If-Match"] = if_match if if_match == "*" else f'"{if_match.strip(chr(34))}"'
        what = f"{method} configurations/{configuration_id}"
        request = urllib.request.Request(self._url(configuration_id), data=data, headers=headers,  # noqa: S310 (scheme checked in __init__)
                                         method=method)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        except (urllib.error.URLError, TimeoutError, OSError) as err:
            msg = _scrub(f"{what}: cannot reach the IoT Hub ({err}); check the hub host name and network",
                         token)
            raise IotHubApiError(msg) from None
        if status >= 400:
            raise IotHubApiError(_scrub(_explain(what, status, raw), token), status=status)
        if not raw.strip():
            return status, None
        try:
            parsed = json.loads(raw)
        except ValueError:
            msg = _scrub(f"{what}: IoT Hub answered HTTP {status} with invalid JSON: "
                         f"{_excerpt(raw)!r}", token)
            raise IotHubApiError(msg, status=status) from None
        if not isinstance(parsed, dict):
            msg = f"{what}: IoT Hub answered HTTP {status} with JSON that is not an object"
            raise IotHubApiError(msg, status=status)
        return status, parsed

    def put(self, configuration_id: str, body: Mapping[str, Any], *, etag: str | None = None) -> dict[str, Any]:
        """Create (no etag) or update (``If-Match: etag``) a configuration; returns the hub's copy."""
        _, parsed = self._call("PUT", configuration_id, body=body, if_match=etag)
        if parsed is None or not parsed.get("etag"):
            msg = f"PUT configurations/{configuration_id}: IoT Hub answered without an etag"
            raise IotHubApiError(msg)
        return parsed

    def get(self, configuration_id: str) -> dict[str, Any] | None:
        """The configuration, or None when it does not exist."""
        try:
            _, parsed = self._call("GET", configuration_id)
        except IotHubApiError as err:
            if err.status == 404:
                return None
            raise
        return parsed

    def delete(self, configuration_id: str, *, etag: str = "*") -> bool:
        """Delete; True if it existed, False if it was already gone (404 is success: idempotent)."""
        try:
            self._call("DELETE", configuration_id, if_match=etag)
        except IotHubApiError as err:
            if err.status == 404:
                return False
            raise
        return True


def _excerpt(raw: bytes) -> str:
    text = raw.decode("utf-8", errors="replace").strip()
    return text[:BODY_EXCERPT_CHARS] + ("..." if len(text) > BODY_EXCERPT_CHARS else "")


def _scrub(message: str, token: str) -> str:
    return message.replace(token, "[token]") if token else message


def _explain(what: str, status: int, raw: bytes) -> str:
    hint = {
        401: "the Entra token was rejected; sign in again (az login / OIDC) for the hub's tenant",
        403: "the deploying identity lacks 'IoT Hub Data Contributor' on the hub",
        404: "the configuration or hub does not exist; check the hub host name (pulumi refresh)",
        409: "a configuration with this id already exists (created outside this stack?); delete it "
             "or import it, and remember deployment content is immutable: a change needs a new id",
        412: "the etag no longer matches: the configuration changed outside Pulumi; run pulumi refresh",
        429: "IoT Hub throttled the request; retry later or raise the hub's units",
    }.get(status, "IoT Hub server error; retry, and check the Azure status page" if status >= 500
          else "the request was rejected; see the hub's message")
    return f"{what}: HTTP {status}: {hint}. Hub said: {_excerpt(raw)!r}"


def configuration_body(props: Mapping[str, Any], *, etag: str | None = None) -> dict[str, Any]:
    """The REST body of a configuration from the resource's inputs."""
    body: dict[str, Any] = {
        "id": props["configurationId"],
        "schemaVersion": "1.0",
        "labels": dict(props.get("labels") or {}),
        "content": props["content"],
        "targetCondition": props["targetCondition"],
        "priority": int(props["priority"]),
    }
    if etag is not None:
        body["etag"] = etag
    return body


class IotHubConfigurationProvider(ResourceProvider):
    """CRUD of one IoT Hub configuration (an IoT Edge base or layered deployment).

    Holds no credential: each operation builds a client with ``EntraTokenProvider``. ``client_factory``
    exists for tests (a local server); leave it unset in programs.
    """

    serialize_as_secret_always = False  # nothing secret is captured; keep __provider inspectable

    def __init__(self, client_factory: Callable[[str], IotHubConfigurationClient] | None = None) -> None:
        super().__init__()
        self._client_factory = client_factory

    def _client(self, host: str) -> IotHubConfigurationClient:
        if self._client_factory is not None:
            return self._client_factory(host)
        return IotHubConfigurationClient(f"https://{host}", EntraTokenProvider())

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        """Refuse inputs the hub would reject, before any call."""
        failures: list[CheckFailure] = []
        for key in ("hubHostName", "configurationId", "targetCondition"):
            if not news.get(key):
                failures.append(CheckFailure(key, f"{key} is required"))
        content = news.get("content")
        if not isinstance(content, dict) or "modulesContent" not in content:
            failures.append(CheckFailure("content", "content must be {'modulesContent': {...}}"))
        priority = news.get("priority")
        if not isinstance(priority, int | float) or priority < 0:
            failures.append(CheckFailure("priority", "priority must be a non-negative integer"))
        return CheckResult(news, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        """Content, id or hub changes replace (content is immutable); the rest updates in place."""
        replaces = [k for k in REPLACE_KEYS if olds.get(k) != news.get(k)]
        updates = [k for k in UPDATE_KEYS if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(replaces or updates), replaces=replaces,
                          delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> CreateResult:
        """PUT without If-Match: fails with 409 if the id exists (never silently adopted)."""
        got = self._client(props["hubHostName"]).put(props["configurationId"], configuration_body(props))
        return CreateResult(id_=props["configurationId"], outs={**props, "etag": got["etag"]})

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        """PUT with If-Match: the etag Pulumi last saw."""
        etag = olds.get("etag")
        got = self._client(news["hubHostName"]).put(
            news["configurationId"], configuration_body(news, etag=etag), etag=etag)
        return UpdateResult(outs={**news, "etag": got["etag"]})

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        """DELETE with If-Match ``*``; already gone is fine."""
        self._client(props["hubHostName"]).delete(props["configurationId"])

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """Refresh the etag and the mutable fields; a vanished configuration reads as deleted."""
        got = self._client(props["hubHostName"]).get(id_)
        if got is None:
            return ReadResult(id_="", outs={})
        outs = {**props, "etag": got.get("etag"), "targetCondition": got.get("targetCondition"),
                "priority": got.get("priority"), "labels": got.get("labels") or {}}
        return ReadResult(id_=id_, outs=outs)


class IotEdgeConfiguration(Resource):
    """One IoT Hub configuration, applied through ``IotHubConfigurationProvider``."""

    etag: pulumi.Output[str]
    configurationId: pulumi.Output[str]  # noqa: N815 (wire name of a dynamic resource property)

    def __init__(
        self,
        name: str,
        *,
        hub_host_name: pulumi.Input[str],
        configuration_id: pulumi.Input[str],
        content: pulumi.Input[Mapping[str, Any]],
        target_condition: str,
        priority: int,
        labels: Mapping[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props: dict[str, Any] = {
            "hubHostName": hub_host_name, "configurationId": configuration_id, "content": content,
            "targetCondition": target_condition, "priority": priority, "labels": dict(labels), "etag": None,
        }
        super().__init__(IotHubConfigurationProvider(), name, props, opts)
