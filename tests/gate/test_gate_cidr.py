"""Issue 12.3: coverage by arithmetic, in the settings and in the rules (one pure function, ``cidr.py``).

``0.0.0.0/1`` + ``128.0.0.0/1`` (or any set of ranges) admits the whole internet although neither is
``/0``; ``ipRules`` with ``0.0.0.0/0`` behind ``defaultAction: Deny``; NSG sources ``internet`` in lower
case and the ``AzureCloud`` service tag. Each is refused in the settings and reported by the pack.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from policies.pack import SPECS, run_resource_rule
from policies.rules.cidr import admits_internet
from slmctl.loader import StackFileError, load_stack_file

REPO_ROOT = Path(__file__).resolve().parents[2]
SPEC = {s.name: s for s in SPECS}
SPLIT = ["0.0.0.0/1", "128.0.0.0/1"]
OPEN_SETS = [SPLIT, ["0.0.0.0/0"], ["1.0.0.0/8", "2.0.0.0/8"], [f"{i}.0.0.0/4" for i in (16, 32, 48)],
             ["::/0"], ["2000::/3"], ["Internet"], ["internet"], ["*"], ["Any"], ["AzureCloud"],
             ["AzureCloud.westeurope"]]
CLOSED_SETS = [["203.0.113.0/24"], ["198.51.100.0/24", "203.0.113.0/24"], ["20.0.0.0/8"], [], ["not-a-cidr"],
               ["VirtualNetwork"], ["AzureLoadBalancer"]]


@pytest.mark.parametrize("prefixes", OPEN_SETS, ids=str)
def test_open_sets_admit_the_internet(prefixes: list[str]) -> None:
    assert admits_internet(prefixes)


@pytest.mark.parametrize("prefixes", CLOSED_SETS, ids=str)
def test_narrow_sets_do_not(prefixes: list[str]) -> None:
    assert not admits_internet(prefixes)


def _run(policy: str, type_: str, props: dict[str, Any]) -> list[str]:
    return run_resource_rule(SPEC[policy], type_, props, {})


@pytest.mark.parametrize("prefixes", [SPLIT, ["0.0.0.0/0"], ["1.0.0.0/7", "3.0.0.0/8", "4.0.0.0/6"]], ids=str)
def test_aks_authorized_ranges_by_arithmetic(prefixes: list[str]) -> None:
    found = _run("slm-aks-api-server-access", "azure-native:containerservice:ManagedCluster",
                 {"apiServerAccessProfile": {"authorizedIPRanges": prefixes}})
    assert found
    assert found[0].startswith("apiServerAccessProfile.authorizedIPRanges: found [")


def test_aks_narrow_ranges_pass() -> None:
    assert _run("slm-aks-api-server-access", "azure-native:containerservice:ManagedCluster",
                {"apiServerAccessProfile": {"authorizedIPRanges": ["203.0.113.0/24"]}}) == []


def _acl(values: list[str], key: str = "value") -> dict[str, Any]:
    return {"defaultAction": "Deny", "ipRules": [{key: v} for v in values]}


FIREWALLS = [
    ("slm-foundry-public-network", "azure-native:cognitiveservices:Account",
     lambda v: {"properties": {"publicNetworkAccess": "Enabled", "networkAcls": _acl(v)}}),
    ("slm-keyvault-network", "azure-native:keyvault:Vault",
     lambda v: {"properties": {"publicNetworkAccess": "Enabled", "networkAcls": _acl(v)}}),
    ("slm-storage-network", "azure-native:storage:StorageAccount",
     lambda v: {"publicNetworkAccess": "Enabled", "networkRuleSet": {**_acl(v, "iPAddressOrRange"),
                                                                     "bypass": "AzureServices"}}),
    ("slm-registry-network", "azure-native:containerregistry:Registry",
     lambda v: {"publicNetworkAccess": "Enabled", "networkRuleSet": _acl(v, "iPAddressOrRange")}),
]


@pytest.mark.parametrize(("policy", "type_", "props"), FIREWALLS, ids=[f[0] for f in FIREWALLS])
@pytest.mark.parametrize("values", [["0.0.0.0/0"], SPLIT, ["203.0.113.0/24", "0.0.0.0/1", "128.0.0.0/1"]], ids=str)
def test_ip_rules_behind_deny_are_judged_by_what_they_admit(policy: str, type_: str, props: Any,
                                                            values: list[str]) -> None:
    (found,) = _run(policy, type_, props(values))
    assert "behind defaultAction 'Deny'" in found


@pytest.mark.parametrize(("policy", "type_", "props"), FIREWALLS, ids=[f[0] for f in FIREWALLS])
def test_narrow_ip_rules_behind_deny_pass(policy: str, type_: str, props: Any) -> None:
    assert _run(policy, type_, props(["203.0.113.0/24"])) == []


@pytest.mark.parametrize("sources", [["internet"], ["INTERNET"], ["AzureCloud"], SPLIT, ["0.0.0.0/0"]], ids=str)
def test_nsg_sources_by_arithmetic_and_any_case(sources: list[str]) -> None:
    rule = {"name": "ssh", "access": "Allow", "direction": "Inbound", "protocol": "Tcp", "priority": 100,
            "sourceAddressPrefixes": sources, "destinationPortRange": "22"}
    assert _run("slm-network-no-open-management-ports", "azure-native:network:NetworkSecurityGroup",
                {"securityRules": [rule]})


def _settings_problem(tmp_path: Path, section: str, key: str, value: list[str]) -> list[str]:
    doc = yaml.safe_load((REPO_ROOT / "stacks" / "Pulumi.dev.yaml").read_text(encoding="utf-8"))
    doc = copy.deepcopy(doc)
    doc["config"]["slm-platform:settings"].setdefault(section, {})[key] = value
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    with pytest.raises(StackFileError) as err:
        load_stack_file(path)
    return err.value.problems


@pytest.mark.parametrize("value", [SPLIT, ["0.0.0.0/2", "64.0.0.0/2", "128.0.0.0/1"]], ids=str)
def test_settings_refuse_split_ranges_for_the_api_server(tmp_path: Path, value: list[str]) -> None:
    (problem,) = _settings_problem(tmp_path, "cluster", "authorized_ip_ranges", value)
    assert "opens the API server to the internet" in problem


@pytest.mark.parametrize("section", ["foundry", "registry"])
def test_settings_refuse_split_ranges_for_firewalls(tmp_path: Path, section: str) -> None:
    (problem,) = _settings_problem(tmp_path, section, "allowed_ip_ranges", ["1.0.0.0/1", "128.0.0.0/1"])
    assert "together admit 4,294,967,296 IPv4 addresses, which is the internet" in problem
