"""Who is told when an alert fires: receivers and the secret config keys they read."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from components.domain._base import CONFIG_NAMESPACE
from components.domain._base import FrozenModel as _Model

AlertSeverity = Literal["critical", "warning", "info"]
SecretConfigKey = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]*(:[A-Za-z][A-Za-z0-9_.-]*)?$")]
"""A stack-config key set with ``pulumi config set --secret``; bare keys are in ``slm-platform:``."""
EmailAddress = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]


def secret_config_key(key: str) -> str:
    """``namespace:key`` (bare keys live in the project's namespace)."""
    return key if ":" in key else f"{CONFIG_NAMESPACE}:{key}"


class EmailReceiver(_Model):
    """Alerts by e-mail (Azure action group e-mail; Alertmanager through ``monitoring.smtp``)."""

    kind: Literal["email"]
    to: tuple[EmailAddress, ...] = Field(min_length=1, strict=False)


class WebhookReceiver(_Model):
    """Alerts POSTed to a URL (a Teams workflow, a chat or ticketing hook). The URL carries a token, so
    it is a secret config value, never in the settings."""

    kind: Literal["webhook"]
    url_secret: SecretConfigKey
    """The secret config key holding the URL (``pulumi config set --secret <key> https://...``)."""


class PagerDutyReceiver(_Model):
    """Alerts to a PagerDuty-style Events API v2 service, by its integration (routing) key."""

    kind: Literal["pagerduty"]
    routing_key_secret: SecretConfigKey
    """The secret config key holding the routing key."""


Receiver = Annotated[EmailReceiver | WebhookReceiver | PagerDutyReceiver, Field(discriminator="kind")]
