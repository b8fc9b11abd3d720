"""Push to Azure Container Registry without a registry password.

The registry's admin user stays off (policy ACR-01), so ``docker push`` authenticates the way
``az acr login`` does: get a Microsoft Entra ID access token for the deploying identity, and
exchange it at ``https://<login_server>/oauth2/exchange`` for an ACR refresh token
(Azure/acr ``docs/AAD-OAuth.md``). The refresh token is then the password of the fixed user
``00000000-0000-0000-0000-000000000000``. It lives about three hours and carries exactly the
deploying identity's registry permissions (it needs *AcrPush*).

Everything here is a plain function with injectable collaborators (credential, base URL, URL
opener), so it is tested against a local HTTP server and never touches the network in tests.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Final, Protocol

ACR_TOKEN_USERNAME: Final = "00000000-0000-0000-0000-000000000000"  # noqa: S105 (a user name)
"""The user name that tells the registry the password is an ACR refresh token."""

ACR_AUDIENCE_SCOPE: Final = "https://containerregistry.azure.net/.default"
"""Entra ID scope of an ACR-audience token.

Registries accept it whether or not ARM-audience tokens are allowed
(``azureADAuthenticationAsArmPolicy``), and unlike an ARM token it cannot manage the subscription
if it leaks. ``https://management.azure.com/.default`` also works while that policy is enabled.
"""

DEFAULT_TIMEOUT_SECONDS: Final = 30.0
_LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "::1"})
_MAX_ERROR_BODY_CHARS: Final = 300


class AccessTokenLike(Protocol):
    """What ``azure.core.credentials.AccessToken`` provides and we use."""

    @property
    def token(self) -> str:
        """The bearer token."""
        ...


class TokenCredentialLike(Protocol):
    """The part of ``azure.core.credentials.TokenCredential`` we call."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessTokenLike:
        """Return an access token for ``scopes``."""
        ...


class AcrTokenExchangeError(RuntimeError):
    """The registry did not give us a refresh token; the message says why and what to do."""


def exchange_url(login_server: str, *, base_url: str | None = None) -> str:
    """The token-exchange endpoint of ``login_server``.

    Args:
        login_server: e.g. ``slmprodacr.azurecr.io``.
        base_url: overrides ``https://<login_server>`` (tests point it at a local server). Only
            ``https`` or a loopback ``http`` address is accepted: the request carries a bearer token.
    """
    base = (base_url or f"https://{login_server}").rstrip("/")
    parsed = urllib.parse.urlsplit(base)
    loopback_http = parsed.scheme == "http" and parsed.hostname in _LOOPBACK_HOSTS
    if parsed.scheme != "https" and not loopback_http:
        msg = (f"refusing to send an Entra ID token to {base!r}: the exchange URL must be https "
               "(plain http is allowed only on a loopback address, for tests)")
        raise ValueError(msg)
    return f"{base}/oauth2/exchange"


def exchange_refresh_token(
    login_server: str,
    *,
    access_token: str,
    tenant_id: str | None = None,
    base_url: str | None = None,
    opener: urllib.request.OpenerDirector | None = None,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
) -> str:
    """Exchange an Entra ID access token for an ACR refresh token.

    Args:
        login_server: the registry, e.g. ``slmprodacr.azurecr.io`` (sent as ``service``).
        access_token: an Entra ID access token of the identity that pushes.
        tenant_id: the identity's tenant. Default: not sent; the registry uses the token's tenant.
        base_url: see ``exchange_url``. Default: ``https://<login_server>``.
        opener: the ``urllib`` opener used for the request. Default: ``urllib.request.build_opener()``.
        timeout_seconds: socket timeout. Default: 30 seconds.

    Raises:
        AcrTokenExchangeError: the registry refused the token, answered something that is not a
            refresh token, or could not be reached. The message names the registry and the fix and
            never contains a token.
    """
    url = exchange_url(login_server, base_url=base_url)
    form = {"grant_type": "access_token", "service": login_server, "access_token": access_token}
    if tenant_id:
        form["tenant"] = tenant_id
    request = urllib.request.Request(  # noqa: S310 (scheme checked by exchange_url)
        url,
        data=urllib.parse.urlencode(form).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
        method="POST",
    )
    http = opener or urllib.request.build_opener()
    try:
        with http.open(request, timeout=timeout_seconds) as response:
            body = response.read().decode("utf-8", errors="replace")
    except urllib.error.HTTPError as err:
        raise AcrTokenExchangeError(_http_error_message(login_server, err)) from None
    except (urllib.error.URLError, TimeoutError, OSError) as err:
        reason = getattr(err, "reason", err)
        msg = (f"could not reach registry {login_server} at {url}: {reason}. When the registry has "
               "public network access disabled, run the deployment from a network that resolves and "
               "reaches its private endpoint (e.g. a self-hosted runner in the VNet)")
        raise AcrTokenExchangeError(msg) from None
    return _refresh_token_from(login_server, body)


def acr_refresh_token(
    login_server: str,
    tenant_id: str | None = None,
    *,
    credential: TokenCredentialLike | None = None,
    scope: str = ACR_AUDIENCE_SCOPE,
    base_url: str | None = None,
    opener: urllib.request.OpenerDirector | None = None,
) -> str:
    """An ACR refresh token for the identity ``credential`` represents.

    This is the default ``ModelRegistryArgs.registry_token_provider``; it is called at deploy time
    only (never during preview) and its result is wrapped with ``pulumi.Output.secret``.

    Args:
        login_server: the registry, e.g. ``slmprodacr.azurecr.io``.
        tenant_id: the tenant to request the Entra ID token from and to send to the registry.
            Default: the credential's own tenant.
        credential: an ``azure-identity`` credential. Default: ``DefaultAzureCredential()``
            (environment, workload identity, managed identity, Azure CLI, ... in that order).
        scope: the Entra ID scope. Default: the ACR audience (``ACR_AUDIENCE_SCOPE``).
        base_url: see ``exchange_url``.
        opener: see ``exchange_refresh_token``.
    """
    if credential is None:
        from azure.identity import DefaultAzureCredential  # deploy-time only: keep imports light

        credential = DefaultAzureCredential()
    token_kwargs: dict[str, Any] = {"tenant_id": tenant_id} if tenant_id else {}
    try:
        access = credential.get_token(scope, **token_kwargs)
    except Exception as err:  # azure-identity raises several unrelated types; wrap them all
        msg = (f"could not get a Microsoft Entra ID token (scope {scope}) to push to registry "
               f"{login_server}: {type(err).__name__}: {err}. Sign in with 'az login', or set up "
               "workload identity / AZURE_CLIENT_ID for the deploying identity")
        raise AcrTokenExchangeError(msg) from err
    return exchange_refresh_token(login_server, access_token=access.token, tenant_id=tenant_id,
                                  base_url=base_url, opener=opener)


def _http_error_message(login_server: str, err: urllib.error.HTTPError) -> str:
    try:
        detail = err.read().decode("utf-8", errors="replace")[:_MAX_ERROR_BODY_CHARS]
    except OSError:
        detail = ""
    if err.code in {401, 403}:
        return (f"registry {login_server} refused the Entra ID token (HTTP {err.code}): the deploying "
                "identity may not push there. Grant it AcrPush on the registry: az role assignment "
                "create --assignee <deployer-object-id> --role AcrPush --scope <registry-id> "
                "(role assignments take a few minutes to apply)"
                + (f"; registry said: {detail}" if detail else ""))
    return (f"registry {login_server} answered HTTP {err.code} to the token exchange"
            + (f": {detail}" if detail else ""))


def _refresh_token_from(login_server: str, body: str) -> str:
    try:
        payload = json.loads(body)
    except json.JSONDecodeError:
        msg = (f"registry {login_server} answered the token exchange with something that is not "
               f"JSON (first {min(len(body), 80)} characters: {body[:80]!r}); check that "
               f"{login_server} is an Azure Container Registry login server")
        raise AcrTokenExchangeError(msg) from None
    token = payload.get("refresh_token") if isinstance(payload, dict) else None
    if not isinstance(token, str) or not token:
        keys = sorted(payload) if isinstance(payload, dict) else type(payload).__name__
        msg = (f"registry {login_server} answered the token exchange without a refresh_token "
               f"(got {keys}); check that {login_server} is an Azure Container Registry login server")
        raise AcrTokenExchangeError(msg)
    return token
