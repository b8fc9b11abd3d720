"""Azure AI Foundry rules (catalogue group A: AIF-01..AIF-09, GPU-06).

Every function takes the resource type token, its wire properties and the policy's config, and
returns one message per violation: ``<property path>: found <value>; <fix>.``
"""

# Every rule takes (type, props, config) so the pack can adapt them uniformly; not all use all three.
# ruff: noqa: ARG001

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from policies.rules.data import open_ip_rules
from policies.rules.tokens import FOUNDRY_ACCOUNT, FOUNDRY_DEPLOYMENT, FOUNDRY_PROJECT, RAI_POLICY
from policies.rules.wire import Props, Unknown, applies_to, get, items, number, show

CONNECTIONS: Final = frozenset({"azure-native:cognitiveservices:ProjectConnection",
                                "azure-native:cognitiveservices:AccountConnection"})
MANAGED_IDENTITY_TYPES: Final = frozenset({"SystemAssigned", "UserAssigned", "SystemAssigned,UserAssigned",
                                           "SystemAssigned, UserAssigned"})
PREVIEW_TOKEN_RE: Final = re.compile(r"^azure-native:[^:]+/v\d{8}preview:")

DEFAULT_ALLOWED_MODELS: Final = (
    "Microsoft/Phi-4-mini-instruct", "Microsoft/Phi-4-mini-reasoning", "Microsoft/Phi-4",
    "Microsoft/Phi-4-reasoning", "Microsoft/Phi-4-multimodal-instruct", "Microsoft/Phi-3.5-mini-instruct",
)
DEFAULT_RAI_POLICIES: Final = ("Microsoft.DefaultV2", "Microsoft.Default")


@applies_to(FOUNDRY_ACCOUNT)
def account_kind(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """AIF-01: a Foundry account is ``kind: AIServices`` with a custom subdomain (Entra auth needs it)."""
    out = []
    if get(props, "kind") != "AIServices":
        out.append(f"kind: found {show(get(props, 'kind'))}; use 'AIServices', the Foundry resource kind.")
    subdomain = get(props, "properties.customSubDomainName")
    if isinstance(subdomain, Unknown):  # e.g. a re-creatable dev name from a RandomString: unknown, not unset
        subdomain.touch()  # read: "cannot verify" where unknowns fail closed
    elif not subdomain:
        out.append("properties.customSubDomainName: found unset; set a globally unique subdomain, "
                   "required for Entra ID auth and private endpoints.")
    return out


@applies_to(FOUNDRY_ACCOUNT, CONNECTIONS)
def local_auth_disabled(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """AIF-02: key auth off on the account; connections do not use API keys."""
    if type_ == FOUNDRY_ACCOUNT and get(props, "properties.disableLocalAuth") is not True:
        return [f"properties.disableLocalAuth: found {show(get(props, 'properties.disableLocalAuth'))}; "
                "set it to true and grant callers 'Cognitive Services User' through Entra ID."]
    if type_ in CONNECTIONS and get(props, "properties.authType") == "ApiKey":
        return ["properties.authType: found 'ApiKey'; use 'AAD' (managed identity) for the connection."]
    return []


@applies_to(FOUNDRY_ACCOUNT)
def public_network(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """AIF-03 inbound: public network access disabled, or network ACLs default to Deny."""
    pna = get(props, "properties.publicNetworkAccess")
    default_action = get(props, "properties.networkAcls.defaultAction")
    if pna == "Disabled":
        return []
    if default_action == "Deny":
        return open_ip_rules("properties.networkAcls.ipRules", get(props, "properties.networkAcls.ipRules"))
    return [f"properties.publicNetworkAccess: found {show(pna)} with properties.networkAcls.defaultAction "
            f"{show(default_action)}; set publicNetworkAccess to 'Disabled' and reach the account through a "
            "private endpoint (or set networkAcls.defaultAction to 'Deny' with explicit ipRules)."]


@applies_to(FOUNDRY_ACCOUNT)
def outbound_restricted(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """AIF-03 outbound: data exfiltration protection with an FQDN allow-list."""
    if get(props, "properties.restrictOutboundNetworkAccess") is not True:
        return [f"properties.restrictOutboundNetworkAccess: found "
                f"{show(get(props, 'properties.restrictOutboundNetworkAccess'))}; set it to true and list the "
                "allowed destinations in properties.allowedFqdnList."]
    if not items(get(props, "properties.allowedFqdnList")):
        return ["properties.allowedFqdnList: found empty; list the FQDNs the account may call."]
    return []


@applies_to(FOUNDRY_ACCOUNT, FOUNDRY_PROJECT)
def managed_identity(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """AIF-05: accounts and projects have a managed identity."""
    kind = get(props, "identity.type")
    if kind in MANAGED_IDENTITY_TYPES:
        return []
    return [f"identity.type: found {show(kind)}; use 'SystemAssigned' (or 'UserAssigned') so the "
            "resource authenticates to storage and Key Vault without keys."]


@applies_to(FOUNDRY_ACCOUNT)
def customer_managed_key(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """AIF-06: encryption with a customer-managed key when ``requireCmk``."""
    if not cfg.get("requireCmk", True):
        return []
    if get(props, "properties.encryption.keySource") != "Microsoft.KeyVault":
        return [f"properties.encryption.keySource: found {show(get(props, 'properties.encryption.keySource'))};"
                " set 'Microsoft.KeyVault' with keyVaultProperties.keyVaultUri and keyName."]
    missing = [k for k in ("keyVaultUri", "keyName") if not get(props, f"properties.encryption.keyVaultProperties.{k}")]
    if missing:
        return [f"properties.encryption.keyVaultProperties: found no {', '.join(missing)}; set them to the CMK."]
    return []


@applies_to(FOUNDRY_DEPLOYMENT)
def approved_models(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """AIF-07: deployments use catalogue models, pinned, without silent auto-upgrade (config)."""
    out = []
    fmt, name = get(props, "properties.model.format"), get(props, "properties.model.name")
    allowed = [str(m) for m in cfg.get("allowedModels", DEFAULT_ALLOWED_MODELS)]
    if f"{fmt}/{name}" not in allowed:
        out.append(f"properties.model: found {show(f'{fmt}/{name}')}; deploy one of the approved SLMs "
                   f"({', '.join(allowed)}) or add it to allowedModels.")
    if not get(props, "properties.model.version"):
        out.append("properties.model.version: found unset; pin the model version.")
    upgrade = get(props, "properties.versionUpgradeOption")
    if cfg.get("forbidAutoUpgrade", False) and upgrade not in ("NoAutoUpgrade", "OnceCurrentVersionExpired"):
        out.append(f"properties.versionUpgradeOption: found {show(upgrade)}; use 'NoAutoUpgrade' so the "
                   "model changes only through a reviewed deployment.")
    return out


@applies_to(FOUNDRY_DEPLOYMENT, RAI_POLICY)
def rai_policy(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """AIF-08: deployments name an approved content-filter (RAI) policy."""
    allowed = [str(p) for p in cfg.get("approvedRaiPolicies", DEFAULT_RAI_POLICIES)]
    if type_ == FOUNDRY_DEPLOYMENT:
        name = get(props, "properties.raiPolicyName")
    elif type_ == RAI_POLICY:
        name = get(props, "raiPolicyName")
    else:
        return []
    if name in allowed:
        return []
    return [f"properties.raiPolicyName: found {show(name)}; use one of {', '.join(allowed)} "
            "or add your reviewed policy to approvedRaiPolicies."]


def no_preview_api(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """AIF-09 / EDGE-03: no preview API-version type tokens."""
    if PREVIEW_TOKEN_RE.match(type_):
        stable = re.sub(r"/v\d{8}preview", "", type_)
        return [f"type: found preview API version {type_!r}; use the default-version token {stable!r}."]
    return []


@applies_to(FOUNDRY_DEPLOYMENT)
def deployment_sku(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """GPU-06: deployment type and capacity within the environment's allowance."""
    out = []
    sku = get(props, "sku.name")
    allowed = [str(s) for s in cfg.get("allowedDeploymentTypes", ["GlobalStandard", "DataZoneStandard", "Standard"])]
    if sku not in allowed:
        out.append(f"sku.name: found {show(sku)}; use one of {', '.join(allowed)} in this environment.")
    capacity = number(get(props, "sku.capacity"))
    max_capacity = number(cfg.get("maxCapacity", 100))
    if capacity is not None and max_capacity is not None and capacity > max_capacity:
        out.append(f"sku.capacity: found {show(capacity)}; at most {show(max_capacity)} here "
                   "(raise maxCapacity in the policy config after a cost review).")
    return out
