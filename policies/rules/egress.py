"""Where serving pods may connect to in the private tiers: DNS, private endpoints, Entra ID (SRV-EGRESS).

In staging and prod a serving pod loads its weights only from the ModelRegistry (the weights
storage's private endpoint), so its namespace's NetworkPolicies may open egress to private address
space and to Entra ID's sign-in ranges (the workload identity token exchange; Entra ID has no
private endpoint), never to the internet at large.
"""

# Every rule takes (type, props, config) so the pack can adapt them uniformly.

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Mapping
from typing import Any, Final

from policies.rules.tokens import NETWORK_POLICY
from policies.rules.wire import Props, applies_to, get, items, mapping, metadata_labels, namespace_of, show

PRIVATE_RANGES: Final = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")
"""RFC 1918 and the shared address space (AKS overlay pod CIDRs): the VNet, peered VNets, private endpoints."""
ENTRA_ID_LOGIN_CIDRS: Final = ("20.20.32.0/19", "20.190.128.0/18", "20.231.128.0/19", "40.126.0.0/18")
"""IPv4 ranges of ``login.microsoftonline.com`` (Microsoft 365 endpoint set 56, "Microsoft Entra ID";
20.190.128.0/18 and 40.126.0.0/18 are also what Azure Backup's network guidance lists for
``*.microsoftonline.com``). Re-check against the published list when it changes."""
DEFAULT_ALLOWED_EGRESS: Final = (*PRIVATE_RANGES, *ENTRA_ID_LOGIN_CIDRS)
SERVING_COMPONENT: Final = "inference"


def _is_serving(props: Props, cfg: Mapping[str, Any]) -> bool:
    labels = metadata_labels(props)
    prefix = str(cfg.get("servingNamespacePrefix", "slm-"))
    return labels.get("app.kubernetes.io/component") == SERVING_COMPONENT or namespace_of(props).startswith(prefix)


def _outside(cidr: str, allowed: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        net = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return True
    return not any(net.version == a.version and net.subnet_of(a) for a in allowed)  # type: ignore[arg-type]


@functools.lru_cache(maxsize=16)
def _networks(cidrs: tuple[str, ...]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The allowed ranges parsed once per configured list, not once per NetworkPolicy (read only)."""
    return [ipaddress.ip_network(c, strict=False) for c in cidrs]


@applies_to(NETWORK_POLICY)
def no_internet_egress(type_: str, props: Props, cfg: Mapping[str, Any]) -> list[str]:  # noqa: ARG001
    """SRV-EGRESS: serving NetworkPolicies open egress only to private ranges and Entra ID."""
    if not _is_serving(props, cfg):
        return []
    allowed = _networks(tuple(str(c) for c in cfg.get("allowedEgressCidrs", DEFAULT_ALLOWED_EGRESS)))
    found: list[str] = []
    for i, rule in enumerate(items(get(props, "spec.egress"))):
        peers = items(mapping(rule).get("to"))
        if not peers:
            found.append(f"spec.egress[{i}].to: found unset; an egress rule without peers reaches every address, "
                         "the internet included. List the private endpoints' subnet (and DNS).")
            continue
        for j, peer in enumerate(peers):
            cidr = get(mapping(peer), "ipBlock.cidr")
            if cidr is not None and _outside(str(cidr), allowed):
                found.append(f"spec.egress[{i}].to[{j}].ipBlock.cidr: found {show(cidr)}; serving pods here reach "
                             "only private endpoints and Entra ID. Load weights from the ModelRegistry (registry fill "
                             "step) and allow the private endpoint subnet instead.")
    return found
