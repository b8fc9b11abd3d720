"""The gateway serves a real certificate from Key Vault, and private tiers get an internal load balancer (#14)."""

from __future__ import annotations

import pytest

from slmctl.loader import load_stack_file
from slmctl.plan import record_stack
from slmctl.recorder import Recording, computed_outputs
from tests.stack_support import REPO_ROOT

CERTIFICATE_USER = "db79e9a7-68ee-4b58-9aeb-b90e7c24fcba"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
CLUSTER = "azure-native:containerservice:ManagedCluster"


def recorded(stack: str) -> Recording:
    return record_stack(load_stack_file(REPO_ROOT / "stacks" / f"Pulumi.{stack}.yaml", stack=stack))


@pytest.fixture(scope="module", params=["dev", "staging", "prod"])
def azure(request: pytest.FixtureRequest) -> Recording:
    return recorded(str(request.param))


def test_every_ingress_takes_its_certificate_from_the_platform_vault(azure: Recording) -> None:
    vault = next(r for r in azure.registrations if r.type == "azure-native:keyvault:Vault")
    ingresses = azure.by_type(INGRESS)
    assert ingresses
    for ing in ingresses:
        name = ing.inputs["metadata"]["name"]
        uri = ing.inputs["metadata"]["annotations"]["kubernetes.azure.com/tls-cert-keyvault-uri"]
        # Unversioned: the add-on picks up renewals. The secret is the one the add-on writes: keyvault-<ingress>.
        assert uri == f"https://{vault.inputs['vaultName']}.vault.azure.net/certificates/gateway-tls"
        (tls,) = ing.inputs["spec"]["tls"]
        assert tls["secretName"] == f"keyvault-{name}"


def test_the_app_routing_identity_may_read_the_certificate_before_any_ingress_exists(azure: Recording) -> None:
    grants = [r for r in azure.registrations if r.type == "azure-native:authorization:RoleAssignment"
              and r.inputs["roleDefinitionId"].endswith(CERTIFICATE_USER)]
    (grant,) = grants
    assert grant.inputs["scope"].endswith("/vaults/" + next(
        r.inputs["vaultName"] for r in azure.registrations if r.type == "azure-native:keyvault:Vault"))
    (cluster,) = azure.by_type(CLUSTER)
    # The add-on's own identity, as the cluster reports it (ingressProfile.webAppRouting.identity).
    identity = computed_outputs(CLUSTER, cluster.name, cluster.inputs)["ingressProfile"]["webAppRouting"]["identity"]
    assert grant.inputs["principalId"] == identity["objectId"]
    for ing in azure.by_type(INGRESS):
        assert grant.urn in ing.dependencies, ing.name
    assert cluster.urn in grant.dependencies


@pytest.mark.parametrize(("stack", "controller"), [("dev", "External"), ("staging", "Internal"),
                                                    ("prod", "Internal")])
def test_private_tiers_get_an_internal_load_balancer(stack: str, controller: str) -> None:
    (cluster,) = recorded(stack).by_type(CLUSTER)
    routing = cluster.inputs["ingressProfile"]["webAppRouting"]
    assert routing["enabled"] is True
    assert routing["nginx"] == {"defaultIngressControllerType": controller}
