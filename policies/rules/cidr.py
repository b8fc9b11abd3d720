"""How much of the internet a set of address prefixes admits, by arithmetic (issue 12.3).

One pure function for the settings and the rules alike. ``0.0.0.0/1`` + ``128.0.0.0/1`` is the whole
internet although neither is ``/0``; ``Internet`` / ``internet`` / ``*`` / ``Any`` and the
``AzureCloud`` service tag (every Azure tenant's addresses) are open whatever their case. The union of
the ranges is collapsed and its size compared with ``MAX_ADMITTED_V4`` (a /8 in total) and
``MAX_ADMITTED_V6`` (a /32): a firewall that admits more than that is open to the internet.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Final

OPEN_TAGS: Final = frozenset({"*", "internet", "any", "azurecloud"})
"""Service tags and wildcards that admit the internet (compared case-insensitively; ``AzureCloud.<region>`` too)."""
MAX_ADMITTED_V4: Final = 2 ** 24
MAX_ADMITTED_V6: Final = 2 ** 96


def admitted(prefixes: Iterable[str]) -> tuple[int, int, list[str]]:
    """(IPv4 addresses, IPv6 addresses, open tags) the union of ``prefixes`` admits; unparsable entries count 0."""
    v4: list[ipaddress.IPv4Network] = []
    v6: list[ipaddress.IPv6Network] = []
    tags: list[str] = []
    for raw in prefixes:
        text = str(raw).strip()
        if text.lower() in OPEN_TAGS or text.lower().startswith("azurecloud."):
            tags.append(text)
            continue
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            continue
        (v4 if isinstance(net, ipaddress.IPv4Network) else v6).append(net)  # type: ignore[arg-type]
    total4 = sum(n.num_addresses for n in ipaddress.collapse_addresses(v4))
    total6 = sum(n.num_addresses for n in ipaddress.collapse_addresses(v6))
    return total4, total6, tags


def admits_internet(prefixes: Iterable[str]) -> bool:
    """True when the prefixes together admit the internet (an open tag, or more than a /8 / a /32)."""
    total4, total6, tags = admitted(prefixes)
    return bool(tags) or total4 > MAX_ADMITTED_V4 or total6 > MAX_ADMITTED_V6


def describe(prefixes: Iterable[str]) -> str:
    """``'Internet'`` or ``'2,147,483,648 IPv4 addresses'``: what an open set admits, for a message."""
    total4, total6, tags = admitted(prefixes)
    if tags:
        return repr(tags[0])
    parts = [f"{total4:,} IPv4 addresses" if total4 else "", f"2^{total6.bit_length() - 1} IPv6 addresses"
             if total6 else ""]
    return " and ".join(p for p in parts if p)
