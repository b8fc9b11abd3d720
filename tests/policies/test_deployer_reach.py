"""slm-reach-deployer: the deployer reaches every data plane `pulumi up` writes (violating fragment + compliant twin)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from policies.rules.deployer import Deployer, deployer_reach
from policies.rules.stack import StackResource
from slmctl.loader import load_stack_file
from slmctl.plan import record_stack
from tests.stack_support import REPO_ROOT

U = "urn:pulumi:s::p::"


def res(typ: str, name: str, props: dict[str, Any] | None = None, deps: Sequence[str] = ()) -> StackResource:
    return StackResource(typ, name, f"{U}{typ}::{name}", props or {}, dependencies=tuple(deps))


def urn(typ: str, name: str) -> str:
    return f"{U}{typ}::{name}"


SUBNET, VNET = "azure-native:network:Subnet", "azure-native:network:VirtualNetwork"
CLUSTER, PROVIDER = "azure-native:containerservice:ManagedCluster", "pulumi:providers:kubernetes"
PIP, NAT = "azure-native:network:PublicIPAddress", "azure-native:network:NatGateway"
VMSS, PE = "azure-native:compute:VirtualMachineScaleSet", "azure-native:network:PrivateEndpoint"
LINK, ACR = "azure-native:privatedns:VirtualNetworkLink", "azure-native:containerregistry:Registry"
IMAGE, HUB = "docker:index/image:Image", "azure-native:iothub:IotHubResource"
DYNAMIC = "pulumi-python:dynamic:Resource"


def network(vnet: str = "vnet-a") -> list[StackResource]:
    """A VNet with the AKS subnet, a private-endpoint subnet and the runner (subnet, NAT, egress IP)."""
    return [
        res(VNET, "vnet", {"virtualNetworkName": vnet}),
        res(SUBNET, "snet-aks", {"virtualNetworkName": vnet}),
        res(SUBNET, "snet-pe", {"virtualNetworkName": vnet}),
        res(PIP, "egress"),
        res(NAT, "nat", deps=[urn(PIP, "egress")]),
        res(SUBNET, "snet-runner", {"virtualNetworkName": vnet}, deps=[urn(NAT, "nat")]),
        res(VMSS, "runner", {"tags": {"slm.io/role": "deploy-runner"}}, deps=[urn(SUBNET, "snet-runner")]),
    ]


def cluster(access: dict[str, Any], deps: Sequence[str] = ()) -> list[StackResource]:
    return [res(CLUSTER, "aks", {"apiServerAccessProfile": access},
                deps=[urn(SUBNET, "snet-aks"), *deps]),
            res(PROVIDER, "k8s", {"kubeconfig": "[secret]"}, deps=[urn(CLUSTER, "aks")])]


HOSTED, IN_VNET = Deployer(), Deployer(location="in-vnet-runner")
PRIVATE = {"enablePrivateCluster": True, "enablePrivateClusterPublicFQDN": False, "disableRunCommand": True}


class TestApiServer:
    def test_private_api_server_from_a_hosted_runner_names_the_cluster_and_the_fix(self) -> None:
        (finding,) = deployer_reach([*network(), *cluster(PRIVATE)], {}, HOSTED)
        assert finding.resource is not None
        assert finding.resource.name == "aks"
        assert "private (enablePrivateCluster, no public FQDN, run-command disabled)" in finding.message
        assert "deployer.location 'github-hosted'" in finding.message
        assert "in-vnet-runner" in finding.message

    def test_private_api_server_from_the_runner_in_its_vnet_passes(self) -> None:
        assert deployer_reach([*network(), *cluster(PRIVATE)], {}, IN_VNET) == []

    def test_a_runner_in_another_vnet_does_not_reach_it(self) -> None:
        other = [r for r in network("vnet-b") if r.type in (VMSS, NAT, PIP)]
        other.append(res(SUBNET, "snet-runner", {"virtualNetworkName": "vnet-b"}, deps=[urn(NAT, "nat")]))
        aks_net = [res(SUBNET, "snet-aks", {"virtualNetworkName": "vnet-a"})]
        (finding,) = deployer_reach([*aks_net, *other, *cluster(PRIVATE)], {}, IN_VNET)
        assert "outside VNet vnet-a" in finding.message
        assert "'runner' (VNet vnet-b)" in finding.message

    def test_in_vnet_setting_without_a_runner_in_the_plan_is_reported(self) -> None:
        plan = [r for r in network() if r.type != VMSS]
        (finding,) = deployer_reach([*plan, *cluster(PRIVATE)], {}, IN_VNET)
        assert "the plan has no deploy runner" in finding.message

    def test_authorized_ranges_without_the_deployers_egress_are_reported(self) -> None:
        access = {"authorizedIPRanges": ["203.0.113.0/24"]}
        (finding,) = deployer_reach([*network(), *cluster(access)], {}, HOSTED)
        assert "['203.0.113.0/24'] of 'aks' do not admit the deployer" in finding.message
        assert "no fixed egress IP" in finding.message

    def test_authorized_ranges_admit_a_fixed_egress_or_the_runners_nat_ip(self) -> None:
        access = {"authorizedIPRanges": ["203.0.113.0/24"]}
        office = Deployer(location="workstation", egress_cidrs=("203.0.113.16/28",))
        assert deployer_reach([*network(), *cluster(access)], {}, office) == []
        assert deployer_reach([*network(), *cluster(access)], {}, IN_VNET) != []  # the NAT IP is not listed
        admitted = cluster({"authorizedIPRanges": ["203.0.113.0/24", "198.51.100.7/32"]}, deps=[urn(PIP, "egress")])
        assert deployer_reach([*network(), *admitted], {}, IN_VNET) == []

    def test_a_cluster_no_kubernetes_provider_talks_to_is_not_touched(self) -> None:
        (aks, _provider) = cluster(PRIVATE)
        assert deployer_reach([*network(), aks], {}, HOSTED) == []


def private_registry(*, endpoint: bool, zone_linked: bool) -> list[StackResource]:
    plan = [res(ACR, "acr", {"publicNetworkAccess": "Disabled"}),
            res(IMAGE, "onnx", {"skipPush": False}, deps=[urn(ACR, "acr")])]
    if endpoint:
        plan.append(res(PE, "acr-pe", {"privateLinkServiceConnections": [{"groupIds": ["registry"]}]},
                        deps=[urn(ACR, "acr"), urn(SUBNET, "snet-pe")]))
    if zone_linked:
        plan.append(res(LINK, "acr-link", {"privateZoneName": "privatelink.azurecr.io"}, deps=[urn(VNET, "vnet")]))
    return plan


class TestRegistryPushAndHubRest:
    def test_push_to_a_private_registry_from_a_hosted_runner_is_reported(self) -> None:
        (finding,) = deployer_reach([*network(), *private_registry(endpoint=True, zone_linked=True)], {}, HOSTED)
        assert finding.resource is not None
        assert finding.resource.name == "acr"
        assert "publicNetworkAccess: Disabled on 'acr', so the image push needs a private path" in finding.message

    def test_push_from_the_runner_through_the_endpoint_and_linked_zone_passes(self) -> None:
        plan = [*network(), *private_registry(endpoint=True, zone_linked=True)]
        assert deployer_reach(plan, {}, IN_VNET) == []

    @pytest.mark.parametrize(("endpoint", "zone"), [(False, True), (True, False)])
    def test_the_runner_needs_both_the_endpoint_and_the_zone(self, endpoint: bool, zone: bool) -> None:
        (finding,) = deployer_reach([*network(), *private_registry(endpoint=endpoint, zone_linked=zone)], {},
                                    IN_VNET)
        assert "a private endpoint (group 'registry') in the runner's VNet and the privatelink.azurecr.io zone" \
            in finding.message

    def test_a_deny_firewall_admits_only_a_listed_fixed_egress(self) -> None:
        acr = res(ACR, "acr", {"publicNetworkAccess": "Enabled", "networkRuleSet": {
            "defaultAction": "Deny", "ipRules": [{"iPAddressOrRange": "203.0.113.0/24", "action": "Allow"}]}})
        image = res(IMAGE, "onnx", {}, deps=[acr.urn])
        (finding,) = deployer_reach([acr, image], {}, HOSTED)
        assert "networkRuleSet: defaultAction Deny on 'acr'" in finding.message
        assert deployer_reach([acr, image], {}, Deployer("workstation", ("203.0.113.9/32",))) == []

    def test_iot_edge_deployments_through_a_private_hub(self) -> None:
        hub = res(HUB, "hub", {"properties": {"publicNetworkAccess": "Disabled"}})
        deployment = res(DYNAMIC, "fleet-base", {"hubHostName": "h.azure-devices.net"}, deps=[hub.urn])
        (finding,) = deployer_reach([*network(), hub, deployment], {}, IN_VNET)
        assert "applying IoT Edge deployments (hub REST)" in finding.message
        assert "group 'iotHub'" in finding.message
        assert "privatelink.azure-devices.net" in finding.message
        reachable = [res(PE, "hub-pe", {"privateLinkServiceConnections": [{"groupIds": ["iotHub"]}]},
                         deps=[hub.urn, urn(SUBNET, "snet-pe")]),
                     res(LINK, "hub-link", {"privateZoneName": "privatelink.azure-devices.net"},
                         deps=[urn(VNET, "vnet")])]
        assert deployer_reach([*network(), hub, deployment, *reachable], {}, IN_VNET) == []


def shipped(stack: str) -> list[StackResource]:
    loaded = load_stack_file(REPO_ROOT / "stacks" / f"Pulumi.{stack}.yaml", stack=stack)
    return [StackResource(r.type, r.name, r.urn, r.inputs, r.parent, tuple(r.dependencies),
                          {k: tuple(v) for k, v in r.property_dependencies.items()})
            for r in record_stack(loaded).registrations]


class TestShippedStacks:
    @pytest.mark.parametrize(("stack", "unreachable"), [
        ("dev", ["serving-aks"]), ("staging", ["serving-aks", "models-acr"]),
        ("prod", ["serving-aks", "models-acr", "edge-hub"])])
    def test_from_a_hosted_runner_the_stack_cannot_be_applied(self, stack: str, unreachable: list[str]) -> None:
        # What the workflows did before the in-VNet runner: every up job on ubuntu-24.04. dev's API server admits
        # only the office range; staging/prod's is private; both push images (registry fill, ONNX server) to a
        # private registry, and prod applies IoT Edge deployments through a private hub.
        findings = deployer_reach(shipped(stack), {}, HOSTED)
        assert sorted(f.resource.name for f in findings if f.resource) == sorted(unreachable)

    @pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
    def test_from_its_in_vnet_runner_it_can(self, stack: str) -> None:
        assert deployer_reach(shipped(stack), {}, IN_VNET) == []


def test_without_stack_settings_a_tagged_runner_in_the_plan_is_where_pulumi_runs() -> None:
    assert Deployer.from_settings({}) is None
    assert Deployer.from_settings({"tier": "dev"}) == Deployer()  # settings without deployer: the default
    assert deployer_reach([*network(), *cluster(PRIVATE)], {}, None) == []
    plan = [r for r in network() if r.type != VMSS]
    assert len(deployer_reach([*plan, *cluster(PRIVATE)], {}, None)) == 1


class TestUnknownVNetName:
    """A first preview: subnets carry their VNet's name as an output, unknown (never read as '')."""

    @staticmethod
    def _first_preview(*, from_the_vnet: bool) -> list[StackResource]:
        from dataclasses import replace

        from policies.rules.wire import Unknown

        out = []
        for r in network():
            deps = {"virtualNetworkName": (urn(VNET, "vnet"),)} if from_the_vnet else {}
            out.append(replace(r, props={**r.props, "virtualNetworkName": Unknown(f"{r.name}.virtualNetworkName")},
                               property_dependencies=deps) if r.type == SUBNET else r)
        return out

    def test_a_vnet_created_here_is_judged_by_the_name_it_is_created_under(self) -> None:
        from policies.rules.wire import tracking_reads

        with tracking_reads() as reads:
            found = deployer_reach([*self._first_preview(from_the_vnet=True), *cluster(PRIVATE)], {}, IN_VNET)
        assert found == []
        assert reads == set()  # nothing unknown was read: no "cannot verify" either

    def test_an_unknown_name_from_outside_is_read_and_no_finding_is_made_up(self) -> None:
        from policies.rules.wire import tracking_reads

        with tracking_reads() as reads:
            found = deployer_reach([*self._first_preview(from_the_vnet=False), *cluster(PRIVATE)], {}, IN_VNET)
        assert found == []  # no "(VNet ?)" / "outside VNet (unknown)" judged from ''
        assert "snet-runner.virtualNetworkName" in reads  # the pack turns this read into "cannot verify"
