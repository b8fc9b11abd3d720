"""ModelRegistry defaults: the secure-by-default contract, per tier, asserted on recorded registrations."""

from __future__ import annotations

import datetime
import itertools
import json
import re

import pytest

from components import model_registry
from components._standard import ROLE_DEFINITION_IDS, Lock, RoleAssignment
from slmctl.recorder import secret_paths

TIERS = ("dev", "staging", "prod")
COMPONENT = "slm:registry:ModelRegistry"


def role_id(role: str) -> str:
    return f"/subscriptions/sub-0000/providers/Microsoft.Authorization/roleDefinitions/{ROLE_DEFINITION_IDS[role]}"


class TestRegistryDefaults:
    @pytest.mark.parametrize("tier", TIERS)
    def test_registry_has_admin_user_and_anonymous_pull_off(self, harness, tier) -> None:
        acr = harness.default(tier).one("containerregistry:Registry").inputs
        assert acr["adminUserEnabled"] is False
        assert acr["anonymousPullEnabled"] is False
        assert acr["registryName"] == f"slm{tier[:4]}acr"

    @pytest.mark.parametrize("tier", ["staging", "prod"])
    def test_premium_registry_is_private_with_content_policies(self, harness, tier) -> None:
        built = harness.default(tier)
        acr = built.one("containerregistry:Registry").inputs
        assert acr["sku"] == {"name": "Premium"}
        assert acr["publicNetworkAccess"] == "Disabled"
        assert acr["networkRuleSet"]["defaultAction"] == "Deny"
        expected_days = {"staging": 14.0, "prod": 30.0}[tier]
        assert acr["policies"]["retentionPolicy"] == {"status": "enabled", "days": expected_days}
        assert acr["policies"]["exportPolicy"] == {"status": "disabled"}
        assert acr["policies"]["quarantinePolicy"]["status"] == "disabled"
        pe = built.one("network:PrivateEndpoint", "models-acr-pe").inputs
        (conn,) = pe["privateLinkServiceConnections"]
        assert conn["groupIds"] == ["registry"]
        assert conn["privateLinkServiceId"] == built.arm_id("models-acr")
        assert pe["subnet"]["id"] == harness.SUBNET_ID
        dns = built.one("network:PrivateDnsZoneGroup", "models-acr-pe-dns").inputs
        assert [c["privateDnsZoneId"] for c in dns["privateDnsZoneConfigs"]] == [
            harness.zone_id("privatelink.azurecr.io")]

    def test_standard_registry_in_dev_sends_no_premium_only_settings(self, harness) -> None:
        built = harness.default("dev")
        acr = built.one("containerregistry:Registry").inputs
        assert acr["sku"] == {"name": "Standard"}
        assert acr["publicNetworkAccess"] == "Enabled"
        assert "networkRuleSet" not in acr
        assert "policies" not in acr
        assert built.of_type("network:PrivateEndpoint") == []

    def test_premium_registry_without_subnet_keeps_export_and_allows_listed_ranges(self, harness) -> None:
        settings = harness.settings("dev", registry={"sku": "Premium", "allowed_ip_ranges": ["203.0.113.0/24"]})
        acr = harness.build(settings).one("containerregistry:Registry").inputs
        assert acr["publicNetworkAccess"] == "Enabled"
        assert acr["networkRuleSet"] == {"defaultAction": "Deny", "ipRules": [
            {"iPAddressOrRange": "203.0.113.0/24", "action": "Allow"}]}
        # Azure rejects a disabled export policy while public network access is on.
        assert acr["policies"]["exportPolicy"] == {"status": "enabled"}


class TestStorageDefaults:
    @pytest.mark.parametrize("tier", TIERS)
    def test_weights_account_is_hardened(self, harness, tier) -> None:
        account = harness.default(tier).one("storage:StorageAccount").inputs
        assert account["kind"] == "StorageV2"
        assert account["enableHttpsTrafficOnly"] is True
        assert account["minimumTlsVersion"] == "TLS1_2"
        assert account["allowSharedKeyAccess"] is False
        assert account["allowBlobPublicAccess"] is False
        assert account["networkRuleSet"]["defaultAction"] == "Deny"
        assert account["networkRuleSet"]["bypass"] == "AzureServices"
        assert account["publicNetworkAccess"] == ("Enabled" if tier == "dev" else "Disabled")

    def test_storage_firewall_lists_single_addresses_without_prefix(self, harness) -> None:
        settings = harness.settings("dev", registry={"allowed_ip_ranges": ["198.51.100.7/32", "203.0.113.0/24"]})
        rules = harness.build(settings).one("storage:StorageAccount").inputs["networkRuleSet"]["ipRules"]
        assert [r["iPAddressOrRange"] for r in rules] == ["198.51.100.7", "203.0.113.0/24"]

    @pytest.mark.parametrize(("tier", "days"), [("dev", 7.0), ("staging", 7.0), ("prod", 30.0)])
    def test_blob_service_keeps_versions_and_deleted_blobs(self, harness, tier, days) -> None:
        blob = harness.default(tier).one("storage:BlobServiceProperties").inputs
        assert blob["isVersioningEnabled"] is True
        assert blob["deleteRetentionPolicy"] == {"enabled": True, "days": days}
        assert blob["containerDeleteRetentionPolicy"] == {"enabled": True, "days": days}

    def test_one_private_container_per_model_family(self, harness) -> None:
        settings = harness.settings("staging", models={"phi-4-mini-b": {
            "family": "phi4-mini", "parameters_billion": 3.8, "layers": 32, "kv_heads": 8, "head_dim": 128,
            "max_context_tokens": 4096, "artifacts": {"gguf": {"ollama_tag": "phi4-mini:3.8b"}}}})
        containers = harness.build(settings).of_type("storage:BlobContainer")
        assert [c.inputs["containerName"] for c in containers] == ["phi4-mini", "qwen3"]
        assert all(c.inputs["publicAccess"] == "None" for c in containers)

    @pytest.mark.parametrize("tier", ["staging", "prod"])
    def test_private_storage_gets_a_blob_endpoint(self, harness, tier) -> None:
        built = harness.default(tier)
        (conn,) = built.one("network:PrivateEndpoint", "models-weights-pe").inputs["privateLinkServiceConnections"]
        assert conn["groupIds"] == ["blob"]
        assert conn["privateLinkServiceId"] == built.arm_id("models-weights")


class TestKeyVaultDefaults:
    @pytest.mark.parametrize(("tier", "retention"), [("dev", 7.0), ("staging", 30.0), ("prod", 90.0)])
    def test_vault_uses_rbac_purge_protection_and_tier_retention(self, harness, tier, retention) -> None:
        props = harness.default(tier).one("keyvault:Vault").inputs["properties"]
        assert props["enableRbacAuthorization"] is True
        assert "accessPolicies" not in props
        # dev is disposable: no purge protection (dev's policy level for it is advisory), so a destroyed
        # vault can be purged; staging and prod keep it.
        assert props.get("enablePurgeProtection") is (None if tier == "dev" else True)
        assert props["enableSoftDelete"] is True
        assert props["softDeleteRetentionInDays"] == retention
        assert props["networkAcls"]["defaultAction"] == "Deny"
        assert props["networkAcls"]["bypass"] == "AzureServices"
        assert props["publicNetworkAccess"] == ("Enabled" if tier == "dev" else "Disabled")
        assert props["tenantId"] == "tenant-1111"

    def test_private_vault_gets_a_vault_endpoint_in_the_vault_zone(self, harness) -> None:
        built = harness.default("prod")
        (conn,) = built.one("network:PrivateEndpoint", "models-kv-pe").inputs["privateLinkServiceConnections"]
        assert conn["groupIds"] == ["vault"]
        dns = built.one("network:PrivateDnsZoneGroup", "models-kv-pe-dns").inputs
        assert [c["privateDnsZoneId"] for c in dns["privateDnsZoneConfigs"]] == [
            harness.zone_id("privatelink.vaultcore.azure.net")]

    def test_secrets_expire_one_year_after_the_rotation_date_in_settings(self, harness) -> None:
        secrets = harness.default("prod").of_type("keyvault:Secret")
        expected = datetime.datetime(2027, 1, 15, tzinfo=datetime.UTC).timestamp()
        assert [s.inputs["secretName"] for s in secrets] == ["engine-api-key", "grafana-admin-password"]
        for secret in secrets:
            assert secret.inputs["properties"]["contentType"] == "text/plain"
            assert secret.inputs["properties"]["attributes"] == {"enabled": True, "expires": expected}

    def test_secrets_have_no_expiry_outside_prod_when_no_rotation_date_is_set(self, harness) -> None:
        settings = harness.settings("dev", registry={"secrets_rotated_on": None})
        for secret in harness.build(settings).of_type("keyvault:Secret"):
            assert "expires" not in secret.inputs["properties"]["attributes"]

    def test_two_builds_of_the_same_settings_record_identical_plans(self, harness) -> None:
        settings = harness.settings("prod")
        assert harness.build(settings).plan_text() == harness.build(settings).plan_text()


class TestSecretsStaySecret:
    @pytest.mark.parametrize("tier", TIERS)
    def test_no_secret_value_appears_in_the_plan_or_outputs(self, harness, tier) -> None:
        built = harness.default(tier)
        text = built.plan_text()
        for value in (harness.ENGINE_KEY, harness.GRAFANA_PASSWORD, harness.REFRESH_TOKEN):
            assert value not in text
        # ...and they were really sent (wrapped), not dropped.
        raw = json.dumps([r.inputs for r in built.recording.registrations])
        assert harness.ENGINE_KEY in raw
        assert harness.GRAFANA_PASSWORD in raw
        assert harness.REFRESH_TOKEN in raw

    def test_secret_inputs_are_secret_on_the_wire(self, harness) -> None:
        built = harness.default("staging")
        for secret in built.of_type("keyvault:Secret"):
            assert secret_paths(secret.inputs) == ["properties.value"]
        assert secret_paths(built.one(":Image", "models-onnx-server").inputs) == ["registry.password"]

    def test_secret_names_are_plain_outputs(self, harness) -> None:
        outputs = harness.default("dev").outputs
        assert outputs["engine_api_key_secret_name"] == "engine-api-key"
        assert outputs["grafana_password_secret_name"] == "grafana-admin-password"


class TestFoundryDefaults:
    @pytest.mark.parametrize("tier", TIERS)
    def test_account_is_aiservices_with_entra_only_access_and_no_open_network(self, harness, tier) -> None:
        account = harness.default(tier).one("cognitiveservices:Account").inputs
        props = account["properties"]
        assert account["kind"] == "AIServices"
        assert account["sku"] == {"name": "S0"}
        assert account["identity"] == {"type": "SystemAssigned"}
        assert props["customSubDomainName"] == account["accountName"]  # dev adds its suffix (TestDevIsRecreatable)
        assert props["customSubDomainName"].startswith(f"slm{tier[:4]}-foundry")
        assert props["allowProjectManagement"] is True
        assert props["disableLocalAuth"] is True
        assert props["publicNetworkAccess"] == "Disabled"
        assert props["networkAcls"]["defaultAction"] == "Deny"
        assert props["networkAcls"]["ipRules"] == []
        assert props["restrictOutboundNetworkAccess"] is True
        assert props["allowedFqdnList"] == [f"slm{tier[:4]}weights.blob.core.windows.net"]

    def test_dev_may_open_the_account_to_its_allowed_ranges_only(self, harness) -> None:
        settings = harness.settings("dev", foundry={"public_network_access_enabled": True,
                                                    "allowed_ip_ranges": ["203.0.113.0/24"]})
        props = harness.build(settings).one("cognitiveservices:Account").inputs["properties"]
        assert props["publicNetworkAccess"] == "Enabled"
        assert props["networkAcls"] == {"bypass": "AzureServices", "defaultAction": "Deny",
                                        "ipRules": [{"value": "203.0.113.0/24"}]}

    @pytest.mark.parametrize("tier", ["staging", "prod"])
    def test_private_account_endpoint_registers_in_the_three_foundry_zones(self, harness, tier) -> None:
        built = harness.default(tier)
        (conn,) = built.one("network:PrivateEndpoint", "models-foundry-pe").inputs["privateLinkServiceConnections"]
        assert conn["groupIds"] == ["account"]
        assert conn["privateLinkServiceId"] == built.arm_id("models-foundry")
        dns = built.one("network:PrivateDnsZoneGroup", "models-foundry-pe-dns").inputs
        assert sorted(c["privateDnsZoneId"] for c in dns["privateDnsZoneConfigs"]) == sorted(
            harness.zone_id(z) for z in ("privatelink.services.ai.azure.com", "privatelink.openai.azure.com",
                                         "privatelink.cognitiveservices.azure.com"))
        assert len({c["name"] for c in dns["privateDnsZoneConfigs"]}) == 3

    def test_project_has_a_system_assigned_identity(self, harness) -> None:
        project = harness.default("staging").one("cognitiveservices:Project").inputs
        assert project["identity"] == {"type": "SystemAssigned"}
        assert project["accountName"] == "slmstag-foundry"

    @pytest.mark.parametrize(("tier", "upgrade"), [("dev", "OnceCurrentVersionExpired"),
                                                   ("staging", "OnceCurrentVersionExpired"),
                                                   ("prod", "NoAutoUpgrade")])
    def test_deployments_pin_the_model_and_take_sku_from_settings(self, harness, tier, upgrade) -> None:
        deployments = harness.default(tier).of_type("cognitiveservices:Deployment")
        by_name = {d.inputs["deploymentName"]: d.inputs for d in deployments}
        assert sorted(by_name) == ["phi-a", "phi-b"]
        for inputs in by_name.values():
            assert inputs["properties"]["model"] == {"format": "Microsoft", "name": "Phi-4-mini-instruct",
                                                     "version": "1"}
            assert inputs["properties"]["versionUpgradeOption"] == upgrade
            assert inputs["properties"]["raiPolicyName"] == "Microsoft.DefaultV2"
        assert by_name["phi-a"]["sku"] == {"name": "GlobalStandard", "capacity": 1.0}
        assert by_name["phi-b"]["sku"] == {"name": "GlobalStandard", "capacity": 5.0}

    def test_deployments_are_created_one_after_another(self, harness) -> None:
        settings = harness.settings("staging", deployments={
            "phi-c": {"target": "foundry", "model": "phi-4-mini", "sku": "DataZoneStandard"}})
        built = harness.build(settings)
        chain = ["models-project", "models-deploy-phi-a", "models-deploy-phi-b", "models-deploy-phi-c"]
        for previous, current in itertools.pairwise(chain):
            assert built.urn(previous) in built.one("cognitiveservices:Deployment", current).dependencies
        # ...and only the previous one: phi-c does not wait on phi-a directly.
        phi_c = built.one("cognitiveservices:Deployment", "models-deploy-phi-c")
        assert built.urn("models-deploy-phi-a") not in phi_c.dependencies

    def test_no_foundry_resources_without_foundry_deployments(self, harness) -> None:
        settings = harness.settings("staging", deployments={"phi-a": None, "phi-b": None},
                                    foundry={"application_principal_ids": {}})
        built = harness.build(settings)
        assert built.of_type("cognitiveservices:Account") == []
        assert built.of_type("cognitiveservices:Project") == []
        assert built.of_type("cognitiveservices:Deployment") == []
        assert built.outputs["foundry_account_id"] is None
        assert built.outputs["foundry_endpoint"] is None

    def test_endpoint_output_is_the_accounts_endpoint(self, harness) -> None:
        outputs = harness.default("staging").outputs
        assert outputs["foundry_endpoint"] == "https://slmstag-foundry.cognitiveservices.azure.com/"
        assert outputs["foundry_account_name"] == "slmstag-foundry"


class TestDevIsRecreatable:
    """After ``pulumi destroy`` a soft-deleted vault keeps its name for the retention days and a deleted
    Foundry account its subdomain for 48 hours; dev gets a per-stack random suffix on both (a new one
    after each destroy, as random.RandomString is re-created), staging and prod keep stable names."""

    def test_dev_vault_and_foundry_names_carry_the_stacks_random_suffix(self, harness) -> None:
        built = harness.default("dev")
        (suffix,) = built.of_type("random:index/randomString:RandomString")
        assert (suffix.inputs["length"], suffix.inputs["special"], suffix.inputs["upper"]) == (5, False, False)
        vault = built.one("keyvault:Vault").inputs["vaultName"]
        account = built.one("cognitiveservices:Account").inputs
        assert re.fullmatch(r"slmdev-kv-[a-z0-9]{5}", vault), vault
        assert re.fullmatch(r"slmdev-foundry-[a-z0-9]{5}", account["accountName"]), account["accountName"]
        assert account["properties"]["customSubDomainName"] == account["accountName"]
        assert vault.rsplit("-", 1)[1] == account["accountName"].rsplit("-", 1)[1]
        assert built.outputs["foundry_endpoint"] == f"https://{account['accountName']}.cognitiveservices.azure.com/"

    def test_the_suffix_is_the_same_in_every_plan_of_the_stack(self, harness) -> None:
        first = harness.build(harness.settings("dev")).one("keyvault:Vault").inputs["vaultName"]
        assert harness.build(harness.settings("dev")).one("keyvault:Vault").inputs["vaultName"] == first

    @pytest.mark.parametrize("tier", ["staging", "prod"])
    def test_staging_and_prod_names_are_stable(self, harness, tier) -> None:
        built = harness.default(tier)
        assert built.of_type("random:index/randomString:RandomString") == []
        assert built.one("keyvault:Vault").inputs["vaultName"] == f"slm{tier[:4]}-kv"


class TestAccess:
    def test_role_assignments_have_the_right_scope_role_and_principal(self, harness) -> None:
        built = harness.default("staging")
        got = {(r.name, r.inputs["scope"], r.inputs["roleDefinitionId"], r.inputs["principalId"],
                r.inputs["principalType"]) for r in built.of_type("authorization:RoleAssignment")}
        assert got == {
            ("models-acr-ra-kubelet-acrpull", built.arm_id("models-acr"), role_id("AcrPull"),
             harness.KUBELET, "ServicePrincipal"),
            ("models-weights-ra-wi-phi-onnx-blobreader", built.arm_id("models-weights"),
             role_id("Storage Blob Data Reader"), harness.WORKLOAD, "ServicePrincipal"),
            ("models-kv-ra-wi-phi-onnx-secretsuser", built.arm_id("models-kv"),
             role_id("Key Vault Secrets User"), harness.WORKLOAD, "ServicePrincipal"),
            ("models-foundry-ra-app-chat-api-csuser", built.arm_id("models-foundry"),
             role_id("Cognitive Services User"), harness.APP_PRINCIPAL, "ServicePrincipal"),
        }

    def test_no_kubelet_grant_without_a_kubelet_identity(self, harness) -> None:
        built = harness.build(harness.settings("dev"), kubelet_principal_id=None, workload_principal_ids={})
        names = [r.name for r in built.of_type("authorization:RoleAssignment")]
        assert names == ["models-foundry-ra-app-chat-api-csuser"]

    def test_caller_role_assignments_are_scoped_to_the_resource_their_role_is_about(self, harness) -> None:
        built = harness.build(harness.settings("staging"), role_assignments={
            "ci-push": RoleAssignment(role="AcrPush", principal_id="ci"),
            "ops-secrets": RoleAssignment(role="Key Vault Secrets Officer", principal_id="ops", principal_type="Group"),
        })
        push = built.one("authorization:RoleAssignment", "models-acr-ra-ci-push").inputs
        assert (push["scope"], push["roleDefinitionId"]) == (built.arm_id("models-acr"), role_id("AcrPush"))
        ops = built.one("authorization:RoleAssignment", "models-kv-ra-ops-secrets").inputs
        assert (ops["scope"], ops["principalType"]) == (built.arm_id("models-kv"), "Group")
        # The image push waits for a caller AcrPush grant (e.g. for the deploying identity).
        assert built.urn("models-acr-ra-ci-push") in built.one(":Image", "models-onnx-server").dependencies


class TestDiagnostics:
    def test_each_primary_resource_logs_its_audit_categories_to_the_workspace(self, harness) -> None:
        built = harness.default("prod")
        got = {d.name: (d.inputs["resourceUri"], d.inputs["workspaceId"],
                        sorted(log["category"] for log in d.inputs["logs"]))
               for d in built.of_type("monitor:DiagnosticSetting")}
        ws = harness.WORKSPACE_ID
        assert got == {
            "models-acr-diag-workspace": (built.arm_id("models-acr"), ws,
                                          ["ContainerRegistryLoginEvents", "ContainerRegistryRepositoryEvents"]),
            "models-weights-blob-diag-workspace": (f"{built.arm_id('models-weights')}/blobServices/default", ws,
                                                   ["StorageDelete", "StorageRead", "StorageWrite"]),
            "models-kv-diag-workspace": (built.arm_id("models-kv"), ws, ["AuditEvent"]),
            "models-foundry-diag-workspace": (built.arm_id("models-foundry"), ws, ["Audit", "RequestResponse"]),
        }


class TestLocksAndProtect:
    def test_prod_locks_and_protects_exactly_the_stateful_resources(self, harness) -> None:
        built = harness.default("prod")
        protected = sorted(r.name for r in built.recording.registrations if r.protect)
        assert protected == ["models-acr", "models-kv", "models-weights"]
        locks = {r.name: r.inputs for r in built.of_type("authorization:ManagementLockByScope")}
        assert {k: (v["scope"], v["level"]) for k, v in locks.items()} == {
            "models-acr-lock": (built.arm_id("models-acr"), "CanNotDelete"),
            "models-weights-lock": (built.arm_id("models-weights"), "CanNotDelete"),
            "models-kv-lock": (built.arm_id("models-kv"), "CanNotDelete"),
        }

    def test_vault_lock_waits_for_the_secrets(self, harness) -> None:
        built = harness.default("prod")
        lock = built.one("authorization:ManagementLockByScope", "models-kv-lock")
        for secret in built.of_type("keyvault:Secret"):
            assert secret.urn in lock.dependencies

    @pytest.mark.parametrize("tier", ["dev", "staging"])
    def test_no_locks_or_protect_outside_prod_by_default(self, harness, tier) -> None:
        built = harness.default(tier)
        assert built.of_type("authorization:ManagementLockByScope") == []
        assert [r.name for r in built.recording.registrations if r.protect] == []

    def test_an_explicit_lock_outside_prod_locks_and_protects(self, harness) -> None:
        built = harness.build(harness.settings("staging"), lock=Lock(kind="ReadOnly"))
        levels = {r.inputs["level"] for r in built.of_type("authorization:ManagementLockByScope")}
        assert levels == {"ReadOnly"}
        assert sorted(r.name for r in built.recording.registrations if r.protect) == [
            "models-acr", "models-kv", "models-weights"]


class TestStructure:
    @pytest.mark.parametrize("tier", TIERS)
    def test_every_child_is_parented_to_the_component(self, harness, tier) -> None:
        built = harness.default(tier)
        (component,) = [r for r in built.recording.registrations if r.type == COMPONENT]
        children = [r for r in built.recording.registrations if r.type != COMPONENT]
        assert children
        assert {r.parent for r in children} == {component.urn}

    @pytest.mark.parametrize("tier", TIERS)
    def test_every_taggable_child_carries_the_required_tags(self, harness, tier) -> None:
        built = harness.default(tier)
        taggable = [r for r in built.recording.registrations if r.type in harness.TAGGABLE]
        assert len({r.type for r in taggable}) >= 7
        for reg in taggable:
            tags = reg.inputs.get("tags", {})
            missing = [t for t in harness.REQUIRED_TAGS if t not in tags]
            assert missing == [], f"{reg.name} lacks {missing}"
            assert tags["environment"] == tier

    def test_outputs_name_the_resources(self, harness) -> None:
        outputs = harness.default("staging").outputs
        assert outputs["registry_login_server"] == "slmstagacr.azurecr.io"
        assert outputs["registry_name"] == "slmstagacr"
        assert outputs["storage_account_name"] == "slmstagweights"
        assert outputs["key_vault_name"] == "slmstag-kv"
        assert outputs["key_vault_uri"] == "https://slmstag-kv.vault.azure.net/"


class TestModelFillImage:
    def test_private_tiers_build_the_fill_step_from_the_registry_package(self, harness) -> None:
        built = harness.default("prod")
        image = built.one(":Image", "models-model-fill").inputs
        assert image["imageName"] == "slmprodacr.azurecr.io/slm/model-fill:0.1.0"
        # The context holds supply.py, which the fill Dockerfile copies next to its entrypoint.
        assert image["build"] == {"context": "components/registry", "dockerfile": "components/registry/fill/Dockerfile",
                                  "platform": "linux/amd64"}
        assert secret_paths(image) == ["registry.password"]
        assert built.urn("models-acr-pe") in built.one(":Image", "models-model-fill").dependencies
        assert built.outputs["model_fill_image"].startswith("slmprodacr.azurecr.io/slm/model-fill@sha256:")

    def test_dev_on_the_direct_hugging_face_path_builds_no_fill_image(self, harness) -> None:
        built = harness.default("dev")
        assert [r.name for r in built.of_type(":Image")] == ["models-onnx-server"]
        assert built.outputs["model_fill_image"] is None


class TestOnnxServerImage:
    def test_image_is_built_for_amd64_and_pushed_with_a_refresh_token(self, harness) -> None:
        built = harness.default("staging")
        image = built.one(":Image", "models-onnx-server").inputs
        assert image["imageName"] == "slmstagacr.azurecr.io/slm/onnx-genai-server:0.1.0"
        assert image["build"] == {"context": "components/engines/onnx_server",
                                  "dockerfile": "components/engines/onnx_server/Dockerfile",
                                  "platform": "linux/amd64"}
        assert image["buildOnPreview"] is False
        assert image["registry"]["server"] == "slmstagacr.azurecr.io"
        assert image["registry"]["username"] == "00000000-0000-0000-0000-000000000000"
        # One exchange per pushed image (the ONNX server and the registry fill step).
        assert built.token_calls == [("slmstagacr.azurecr.io", "tenant-1111")] * 2
        assert built.outputs["onnx_server_image"].startswith("slmstagacr.azurecr.io/slm/onnx-genai-server@sha256:")

    def test_image_waits_for_the_registry_private_endpoint(self, harness) -> None:
        built = harness.default("prod")
        assert built.urn("models-acr-pe") in built.one(":Image", "models-onnx-server").dependencies

    def test_an_edge_fleet_on_onnx_genai_also_needs_the_image(self, harness) -> None:
        settings = harness.settings("dev", deployments={"phi-onnx": None}, edge={
            "device_classes": {"gateway": {"architecture": "amd64", "memory_gib": 16}},
            "fleets": {"plant": {"device_class": "gateway", "model": "phi-4-mini", "delivery": "kubernetes",
                                 "engine": "onnx-genai", "devices": ["gw-1"]}}})
        assert len(harness.build(settings).of_type(":Image")) == 1

    def test_no_image_and_no_token_exchange_without_an_onnx_genai_engine(self, harness) -> None:
        built = harness.build(harness.settings("dev", deployments={"phi-onnx": None}))
        assert built.of_type(":Image") == []
        assert built.token_calls == []
        assert built.outputs["onnx_server_image"] is None

    def test_offline_plan_without_a_provider_never_runs_the_real_exchange(self, harness, monkeypatch) -> None:
        def forbidden(*_: object) -> str:
            # An ordinary exception: pytest.fail's BaseException would hang Pulumi's event loop.
            msg = "the real ACR token exchange ran under the mock monitor"
            raise AssertionError(msg)

        monkeypatch.setattr(model_registry, "acr_refresh_token", forbidden)
        built = harness.build(harness.settings("dev"), provider=None)
        assert secret_paths(built.one(":Image", "models-onnx-server").inputs) == ["registry.password"]
