"""ModelRegistry errors: raised before any resource is declared, naming the field, the value and the fix."""

from __future__ import annotations

import dataclasses
import re

import pulumi
import pytest

from components._standard import RoleAssignment
from components.domain import FoundryDeployment, FoundryModel, ModelArtifacts
from components.model_registry import ModelRegistry
from slmctl.recorder import record


def without_foundry_artifact(settings):
    """Settings whose Foundry deployment's model lost its Foundry artifact (bypasses pydantic)."""
    phi = settings.models["phi-4-mini"]
    artifacts = ModelArtifacts(onnx=phi.artifacts.onnx)
    return settings.model_copy(update={"models": {
        **settings.models, "phi-4-mini": phi.model_copy(update={"artifacts": artifacts})}})


def with_deployment_sku(settings, sku):
    """Settings with a Foundry deployment whose SKU pydantic would have rejected for the tier."""
    dep = FoundryDeployment(target="foundry", model="phi-4-mini", sku="GlobalStandard")
    return settings.model_copy(update={"deployments": {
        **settings.deployments, "phi-a": dep.model_copy(update={"sku": sku})}})


class TestErrors:
    def test_foundry_deployment_of_a_model_without_a_foundry_artifact_is_rejected(self, harness) -> None:
        settings = without_foundry_artifact(harness.settings("dev"))
        with pytest.raises(ValueError, match=r"deployments\.phi-a\.model: 'phi-4-mini' has no Foundry "
                                             r"artifact \(models\.phi-4-mini\.artifacts\.foundry\)"):
            ModelRegistry("models", harness.args(settings))

    def test_provisioned_capacity_outside_prod_is_rejected(self, harness) -> None:
        settings = with_deployment_sku(harness.settings("staging"), "GlobalProvisionedManaged")
        with pytest.raises(ValueError, match=r"deployments\.phi-a\.sku: 'GlobalProvisionedManaged' .* use "
                                             r"GlobalStandard or DataZoneStandard on staging"):
            ModelRegistry("models", harness.args(settings))

    def test_provisioned_capacity_in_prod_is_accepted(self, harness) -> None:
        settings = harness.settings("prod", deployments={"phi-a": {"sku": "ProvisionedManaged"}})
        built = harness.build(settings)
        skus = {d.inputs["deploymentName"]: d.inputs["sku"]["name"]
                for d in built.of_type("cognitiveservices:Deployment")}
        assert skus["phi-a"] == "ProvisionedManaged"

    @pytest.mark.parametrize("sku", ["Basic", "Standard"])
    def test_non_premium_registry_with_a_private_endpoint_subnet_is_rejected(self, harness, sku) -> None:
        settings = harness.settings("staging", registry={"sku": sku})
        with pytest.raises(ValueError, match=rf"registry_sku: '{sku}' cannot have a private endpoint "
                                             r"\(Premium only\); use Premium"):
            ModelRegistry("models", harness.args(settings, private=True))

    def test_non_premium_registry_in_prod_is_rejected_even_without_a_subnet(self, harness) -> None:
        settings = harness.settings("prod", registry={"sku": "Standard"})
        with pytest.raises(ValueError, match=r"registry\.sku: 'Standard' has no firewall .* prod requires Premium"):
            ModelRegistry("models", harness.args(settings, private=False))

    def test_prod_without_a_secret_rotation_date_is_rejected(self, harness) -> None:
        settings = harness.settings("prod", registry={"secrets_rotated_on": None})
        with pytest.raises(ValueError, match=r"registry\.secrets_rotated_on: required in prod"):
            ModelRegistry("models", harness.args(settings))

    def test_a_too_long_prefix_fails_instead_of_truncating(self, harness) -> None:
        settings = harness.settings("dev").model_copy(update={"name_prefix": "x" * 20})
        with pytest.raises(ValueError, match=r"storage_account name 'x{20}weights' is 27 characters; "
                                             r"Azure allows 3-24") as excinfo:
            ModelRegistry("models", harness.args(settings))
        assert "instead of relying on truncation" in str(excinfo.value)

    def test_an_unknown_dns_zone_key_is_rejected(self, harness) -> None:
        settings = harness.settings("staging")
        zones = {"privatelink.azurecr.io": "/zones/acr", "privatelink.azurecr.com": "/zones/typo"}
        with pytest.raises(ValueError, match=re.escape("unknown zone(s) ['privatelink.azurecr.com']")):
            ModelRegistry("models", harness.args(settings, private_dns_zone_ids=zones))

    def test_a_caller_role_that_is_not_about_these_resources_is_rejected(self, harness) -> None:
        settings = harness.settings("dev")
        grants = {"ops": RoleAssignment(role="Monitoring Reader", principal_id="p")}
        with pytest.raises(ValueError, match=r"role_assignments\.ops: .*'Monitoring Reader' is not about a "
                                             r"ModelRegistry resource"):
            ModelRegistry("models", harness.args(settings, role_assignments=grants))

    def test_a_foundry_role_without_foundry_deployments_is_rejected(self, harness) -> None:
        settings = harness.settings("dev", deployments={"phi-a": None, "phi-b": None})
        grants = {"app": RoleAssignment(role="Cognitive Services User", principal_id="p")}
        with pytest.raises(ValueError, match=r"role_assignments\.app: .*exists only with foundry_deployments"):
            ModelRegistry("models", harness.args(settings, role_assignments=grants))

    def test_the_local_tier_is_rejected(self, harness) -> None:
        settings = harness.settings("dev").model_copy(update={"tier": "local"})
        with pytest.raises(ValueError, match=r"tier: 'local' has no Azure resources"):
            ModelRegistry("models", harness.args(settings))

    def test_all_problems_are_reported_at_once(self, harness) -> None:
        settings = with_deployment_sku(harness.settings("staging", registry={"sku": "Basic"}), "ProvisionedManaged")
        with pytest.raises(ValueError, match=r"^ModelRegistry 'models':\n- ") as excinfo:
            ModelRegistry("models", harness.args(settings))
        message = str(excinfo.value)
        assert "deployments.phi-a.sku" in message
        assert "registry_sku: 'Basic'" in message

    def test_a_caller_grant_reusing_a_reserved_key_is_rejected(self, harness) -> None:
        grants = {"kubelet-acrpull": RoleAssignment(role="AcrPull", principal_id="other")}
        with pytest.raises(ValueError, match=r"key\(s\) \['kubelet-acrpull'\] are reserved"):
            harness.build(harness.settings("dev"), role_assignments=grants)

    def test_nothing_is_declared_when_validation_fails(self, harness) -> None:
        # The component's own check (the platform's mapping would have refused these args first).
        args = dataclasses.replace(harness.args(harness.settings("staging"), private=True), registry_sku="Basic")
        raised: list[str] = []

        def program() -> None:
            try:
                ModelRegistry("models", args)
            except ValueError as err:
                raised.append(str(err))
            pulumi.export("done", True)

        recording = record(program, stack="staging")
        assert len(raised) == 1
        assert recording.registrations == []

    def test_foundry_model_with_explicit_format_is_passed_through(self, harness) -> None:
        # Guard against the opposite failure: a valid non-Microsoft format is not "fixed" by the component.
        settings = harness.settings("dev")
        phi = settings.models["phi-4-mini"]
        artifacts = phi.artifacts.model_copy(update={"foundry": FoundryModel(format="OpenAI", name="gpt-x", version="2")})
        settings = settings.model_copy(update={"models": {
            **settings.models, "phi-4-mini": phi.model_copy(update={"artifacts": artifacts})}})
        models = {d.inputs["properties"]["model"]["format"]
                  for d in harness.build(settings).of_type("cognitiveservices:Deployment")}
        assert models == {"OpenAI"}
