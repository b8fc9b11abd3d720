"""Registry, storage, Key Vault and network rules (catalogue group C)."""

# Every rule takes (type, props, config) so the pack can adapt them uniformly; not all use all three.
# ruff: noqa: ARG001

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from policies.rules.cidr import admits_internet, describe
from policies.rules.tokens import (
    BLOB_CONTAINER,
    BLOB_SERVICE,
    NSG,
    REGISTRY,
    SECURITY_RULE,
    STORAGE_ACCOUNT,
    VAULT,
    VAULT_SECRET,
)
from policies.rules.wire import Props, applies_to, get, items, mapping, number, show

SENSITIVE_PORTS: Final = (22, 3389, 6443, 11434, 8000, 8080)
"""SSH, RDP, the Kubernetes API, Ollama, vLLM and ONNX Runtime servers."""


@applies_to(REGISTRY)
def registry_auth(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """ACR-01: no admin user and no anonymous pull."""
    out = []
    if get(props, "adminUserEnabled") is True:
        out.append("adminUserEnabled: found true; disable it and grant AcrPull to managed identities.")
    if get(props, "anonymousPullEnabled") is True:
        out.append("anonymousPullEnabled: found true; disable it, images and model artifacts are private.")
    return out


def open_ip_rules(path: str, rules: Any) -> list[str]:
    """A firewall that defaults to Deny but whose ipRules admit the internet anyway (by arithmetic)."""
    values = [str(mapping(r).get("value") or mapping(r).get("iPAddressOrRange") or "") for r in items(rules)]
    if not admits_internet(values):
        return []
    return [f"{path}: found rules admitting {describe(values)} behind defaultAction 'Deny'; list only your "
            "office/CI ranges (at most a /8 in total) or use a private endpoint."]


@applies_to(REGISTRY)
def registry_network(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """ACR-02: public network access disabled or the firewall defaults to Deny (Premium)."""
    if get(props, "publicNetworkAccess") == "Disabled":
        return []
    if get(props, "networkRuleSet.defaultAction") == "Deny":
        return open_ip_rules("networkRuleSet.ipRules", get(props, "networkRuleSet.ipRules"))
    return [f"publicNetworkAccess: found {show(get(props, 'publicNetworkAccess'))} with networkRuleSet.defaultAction "
            f"{show(get(props, 'networkRuleSet.defaultAction'))}; disable public access (Premium SKU + private "
            "endpoint) or default the firewall to 'Deny'."]


@applies_to(REGISTRY)
def registry_content_policies(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """ACR-02 (advisory part): retention, quarantine, content trust, export disabled."""
    checks = (("policies.retentionPolicy.status", "enabled", "untagged manifests are purged"),
              ("policies.quarantinePolicy.status", "enabled", "images are scanned before use"),
              ("policies.trustPolicy.status", "enabled", "signed images only"),
              ("policies.exportPolicy.status", "disabled", "images cannot be exported out of the network"))
    return [f"{path}: found {show(get(props, path))}; set '{want}' ({why})."
            for path, want, why in checks if get(props, path) != want]


@applies_to(VAULT)
def keyvault_rbac(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """KV-01: Azure RBAC authorization, no access policies."""
    out = []
    if get(props, "properties.enableRbacAuthorization") is not True:
        out.append(f"properties.enableRbacAuthorization: found "
                   f"{show(get(props, 'properties.enableRbacAuthorization'))}; set it to true.")
    if items(get(props, "properties.accessPolicies")):
        out.append("properties.accessPolicies: found access policies; replace them with role assignments.")
    return out


@applies_to(VAULT)
def keyvault_recovery(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """KV-02: soft delete with enough retention, and purge protection."""
    out = []
    if get(props, "properties.enableSoftDelete") is False:
        out.append("properties.enableSoftDelete: found false; keep soft delete on.")
    minimum = number(cfg.get("minSoftDeleteRetentionDays", 7)) or 7
    days = number(get(props, "properties.softDeleteRetentionInDays"))
    effective = 90.0 if days is None else days
    if effective < minimum:
        out.append(f"properties.softDeleteRetentionInDays: found {show(days)}; keep at least {show(minimum)} days.")
    if get(props, "properties.enablePurgeProtection") is not True:
        out.append(f"properties.enablePurgeProtection: found {show(get(props, 'properties.enablePurgeProtection'))};"
                   " set it to true.")
    return out


@applies_to(VAULT)
def keyvault_network(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """KV-03: public access disabled or the firewall defaults to Deny."""
    if get(props, "properties.publicNetworkAccess") == "Disabled":
        return []
    if get(props, "properties.networkAcls.defaultAction") == "Deny":
        return open_ip_rules("properties.networkAcls.ipRules", get(props, "properties.networkAcls.ipRules"))
    return [f"properties.networkAcls.defaultAction: found {show(get(props, 'properties.networkAcls.defaultAction'))}"
            f" with publicNetworkAccess {show(get(props, 'properties.publicNetworkAccess'))}; set "
            "publicNetworkAccess to 'Disabled' or networkAcls.defaultAction to 'Deny'."]


@applies_to(VAULT_SECRET)
def keyvault_secret_metadata(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """KV-04: secrets expire and say what they hold (never reads the value)."""
    out = []
    # azure-native names ARM's `attributes.exp` `expires` on the wire; accept either spelling.
    if get(props, "properties.attributes.expires") is None and get(props, "properties.attributes.exp") is None:
        out.append("properties.attributes.expires: found unset; give the secret an expiry (epoch seconds) "
                   "and rotate it.")
    if not get(props, "properties.contentType"):
        out.append("properties.contentType: found unset; describe the secret, e.g. 'text/plain; hf-token'.")
    return out


@applies_to(STORAGE_ACCOUNT)
def storage_transport(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """STG-01: HTTPS only, TLS 1.2."""
    out = []
    if get(props, "enableHttpsTrafficOnly") is False:
        out.append("enableHttpsTrafficOnly: found false; set it to true.")
    if get(props, "minimumTlsVersion") != "TLS1_2":
        out.append(f"minimumTlsVersion: found {show(get(props, 'minimumTlsVersion'))}; set 'TLS1_2'.")
    return out


@applies_to(STORAGE_ACCOUNT, BLOB_CONTAINER)
def storage_public_blob(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """STG-02: no anonymous blob access (account and containers)."""
    if type_ == STORAGE_ACCOUNT and get(props, "allowBlobPublicAccess") is not False:
        return [f"allowBlobPublicAccess: found {show(get(props, 'allowBlobPublicAccess'))}; set it to false, model "
                "weights are not public."]
    if type_ == BLOB_CONTAINER and get(props, "publicAccess") not in (None, "None"):
        return [f"publicAccess: found {show(get(props, 'publicAccess'))}; use 'None'."]
    return []


@applies_to(STORAGE_ACCOUNT)
def storage_shared_key(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """STG-02: no shared-key (account key / SAS) authorization."""
    if get(props, "allowSharedKeyAccess") is not False:
        return [f"allowSharedKeyAccess: found {show(get(props, 'allowSharedKeyAccess'))}; set it to false and use "
                "Entra ID (Storage Blob Data Reader) for model downloads."]
    return []


@applies_to(STORAGE_ACCOUNT, BLOB_SERVICE)
def storage_network(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """STG-03: firewall Deny (bypassing AzureServices) or no public access; blob soft delete."""
    if type_ == BLOB_SERVICE:
        if get(props, "deleteRetentionPolicy.enabled") is not True:
            return [f"deleteRetentionPolicy.enabled: found {show(get(props, 'deleteRetentionPolicy.enabled'))}; "
                    "enable blob soft delete for model artifacts."]
        return []
    if type_ != STORAGE_ACCOUNT:
        return []
    if get(props, "publicNetworkAccess") == "Disabled":
        return []
    if get(props, "networkRuleSet.defaultAction") == "Deny" and (
            wide := open_ip_rules("networkRuleSet.ipRules", get(props, "networkRuleSet.ipRules"))):
        return wide
    if get(props, "networkRuleSet.defaultAction") != "Deny":
        return [f"networkRuleSet.defaultAction: found {show(get(props, 'networkRuleSet.defaultAction'))}; set 'Deny' "
                "(or publicNetworkAccess 'Disabled') and reach the account through a private endpoint."]
    if "AzureServices" not in str(get(props, "networkRuleSet.bypass", "")):
        return [f"networkRuleSet.bypass: found {show(get(props, 'networkRuleSet.bypass'))}; include 'AzureServices'."]
    return []


def _ports(rule: Mapping[str, Any]) -> list[tuple[int, int]]:
    specs = [rule.get("destinationPortRange"), *items(rule.get("destinationPortRanges"))]
    out = []
    for spec in specs:
        if spec in (None, ""):
            continue
        text = str(spec)
        if text == "*":
            out.append((0, 65535))
            continue
        lo, _, hi = text.partition("-")
        try:
            out.append((int(lo), int(hi or lo)))
        except ValueError:
            continue
    return out


@applies_to(NSG, SECURITY_RULE)
def open_management_ports(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:
    """NET-01: no inbound Allow from the internet to management or model-server ports."""
    if type_ == NSG:
        rules = [(f"securityRules[{i}].", mapping(r), mapping(r).get("name")) for i, r in
                 enumerate(items(get(props, "securityRules")))]
    elif type_ == SECURITY_RULE:
        rules = [("", mapping(props), props.get("name"))]
    else:
        return []
    sensitive = sorted({*SENSITIVE_PORTS, *(int(p) for p in cfg.get("extraPorts", []))})
    out = []
    for path, rule, name in rules:
        r = mapping(rule.get("properties")) or rule
        if r.get("access") != "Allow" or r.get("direction") != "Inbound":
            continue
        sources = [str(s) for s in [r.get("sourceAddressPrefix"), *items(r.get("sourceAddressPrefixes"))] if s]
        if not admits_internet(sources):  # 'internet' in any case, service tags, and split ranges like 0/1 + 128/1
            continue
        hit = [p for p in sensitive if any(lo <= p <= hi for lo, hi in _ports(r))]
        if hit:
            out.append(f"{path}sourceAddressPrefix: rule {show(name)} allows {show(sources)} to ports "
                       f"{', '.join(map(str, hit))}; restrict the source to known CIDRs or use Bastion / a "
                       "private endpoint.")
    return out
