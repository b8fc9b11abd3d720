"""Drive the REAL pack over the analyzer gRPC protocol through ``run_gate`` (one subprocess per run)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s
import pytest
from pulumi_azure_native import cognitiveservices, monitor, network, privatedns

from slmctl.gate import GateError, GateResult, format_result, run_gate
from slmctl.recorder import Recording, record

TAGS = {"environment": "prod", "owner": "ml@contoso.example", "costCenter": "cc-4711", "workload": "slm-platform"}
HF_TOKEN = "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01"


def insecure_program() -> None:
    cognitiveservices.Account(
        "slmprod-ai", kind="AIServices", resource_group_name="rg", location="swedencentral", tags=TAGS,
        sku=cognitiveservices.SkuArgs(name="S0"), identity=cognitiveservices.IdentityArgs(type="SystemAssigned"),
        properties=cognitiveservices.AccountPropertiesArgs(
            disable_local_auth=False, custom_sub_domain_name="slmprod-ai", public_network_access="Enabled"))
    k8s.apps.v1.Deployment("slmprod-vllm-phi", metadata={"name": "vllm-phi", "namespace": "inference"}, spec={
        "selector": {"matchLabels": {"app": "vllm"}},
        "template": {"metadata": {"labels": {"app": "vllm"}}, "spec": {"containers": [{
            "name": "vllm", "image": "vllm/vllm-openai:latest",
            "args": ["--model", "microsoft/Phi-4-mini-instruct", "--enable-auto-tool-choice"],
            "env": [{"name": "HF_TOKEN", "value": pulumi.Output.secret(HF_TOKEN)}]}]}}})


def compliant_program() -> None:
    acct = cognitiveservices.Account(
        "slmprod-ai", kind="AIServices", resource_group_name="rg", location="swedencentral", tags=TAGS,
        sku=cognitiveservices.SkuArgs(name="S0"), identity=cognitiveservices.IdentityArgs(type="SystemAssigned"),
        properties=cognitiveservices.AccountPropertiesArgs(
            disable_local_auth=True, custom_sub_domain_name="slmprod-ai", public_network_access="Disabled",
            restrict_outbound_network_access=True, allowed_fqdn_list=["slmprodweights.blob.core.windows.net"],
            encryption=cognitiveservices.EncryptionArgs(
                key_source="Microsoft.KeyVault", key_vault_properties=cognitiveservices.KeyVaultPropertiesArgs(
                    key_vault_uri="https://slmprodkv.vault.azure.net/", key_name="cmk"))))
    pe = network.PrivateEndpoint(
        "slmprod-ai-pe", resource_group_name="rg", location="swedencentral", tags=TAGS,
        subnet=network.SubnetArgs(id="/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/"
                                     "virtualNetworks/v/subnets/pe"),
        private_link_service_connections=[network.PrivateLinkServiceConnectionArgs(
            name="account", private_link_service_id=acct.id, group_ids=["account"])])
    zones = ("privatelink.cognitiveservices.azure.com", "privatelink.openai.azure.com",
             "privatelink.services.ai.azure.com")  # the account's zones (slm-reach-private-dns)
    zone_ids = [f"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/privateDnsZones/{z}" for z in zones]
    network.PrivateDnsZoneGroup("slmprod-ai-dns", resource_group_name="rg", private_endpoint_name=pe.name,
                                private_dns_zone_group_name="default", private_dns_zone_configs=[
                                    {"name": z.replace(".", "-"), "private_dns_zone_id": i}
                                    for z, i in zip(zones, zone_ids, strict=True)])
    for zone in zones:
        privatedns.VirtualNetworkLink(f"link-{zone.split('.')[1]}", resource_group_name="rg", private_zone_name=zone,
                                      location="global", registration_enabled=False, tags=TAGS, virtual_network={
                                          "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/"
                                                "virtualNetworks/v"})
    monitor.DiagnosticSetting(
        "slmprod-ai-diag", resource_uri=acct.id, workspace_id="/subscriptions/s/resourceGroups/rg/providers/"
        "Microsoft.OperationalInsights/workspaces/w",
        logs=[{"category_group": "audit", "enabled": True}])


@pytest.fixture(scope="module")
def insecure() -> Recording:
    return record(insecure_program, stack="prod")


@pytest.fixture(scope="module")
def insecure_result(insecure: Recording, tmp_path_factory: pytest.TempPathFactory) -> GateResult:
    stack_file = tmp_path_factory.mktemp("stack") / "Pulumi.prod.yaml"
    stack_file.write_text("config:\n  slm-platform:settings:\n    tier: prod\n    deployments:\n      vllm-phi:\n"
                          "        target: vllm\n")
    return run_gate(insecure, environment="prod", stack_file=stack_file)


def test_insecure_foundry_account_fails_with_the_exact_violation(insecure_result: GateResult) -> None:
    found = [v for v in insecure_result.violations if v.policy == "slm-foundry-local-auth-disabled"]
    assert [(v.level, v.resource, v.detail) for v in found] == [(
        "mandatory", "slmprod-ai",
        "slmprod-ai (azure-native:cognitiveservices:Account): properties.disableLocalAuth: found false; set it to "
        "true and grant callers 'Cognitive Services User' through Entra ID.")]
    assert insecure_result.exit_code == 1


def test_stack_and_serving_policies_run_over_grpc(insecure_result: GateResult) -> None:
    policies = {v.policy for v in insecure_result.mandatory}
    assert {"slm-foundry-public-network", "slm-serving-tool-call-parser", "slm-k8s-no-secrets-in-env",
            "slm-k8s-image-provenance", "slm-k8s-network-policy-coverage", "slm-ops-diagnostic-settings"} <= policies
    stack_violation = next(v for v in insecure_result.violations if v.policy == "slm-k8s-network-policy-coverage"
                           and v.resource)
    assert stack_violation.urn.endswith("::slmprod-vllm-phi")
    assert insecure_result.resources_analyzed == 2
    assert len(insecure_result.violations) == len(set(insecure_result.violations))


@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "junit", "markdown"])
def test_no_format_echoes_the_secret(insecure_result: GateResult, fmt: str) -> None:
    assert HF_TOKEN not in format_result(insecure_result, fmt)  # type: ignore[arg-type]


def test_sarif_is_code_scanning_shaped(insecure_result: GateResult) -> None:
    doc = json.loads(format_result(insecure_result, "sarif"))
    assert doc["version"] == "2.1.0"
    run = doc["runs"][0]
    rule_ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert len(rule_ids) == len(insecure_result.policies)
    assert all(r["shortDescription"]["text"]
                                                                  for r in run["tool"]["driver"]["rules"])
    assert {r["ruleId"] for r in run["results"]} <= set(rule_ids)
    parser = next(r for r in run["results"] if r["ruleId"] == "slm-serving-tool-call-parser")
    assert parser["level"] == "error"
    location = parser["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"].endswith("Pulumi.prod.yaml")
    assert location["region"]["startLine"] == 5  # the `vllm-phi:` deployment key
    assert all(r["partialFingerprints"] for r in run["results"])


def test_junit_has_a_testcase_per_policy_and_failures_for_mandatory(insecure_result: GateResult) -> None:
    suite = ET.fromstring(format_result(insecure_result, "junit")).find("testsuite")  # noqa: S314 (our own output)
    assert suite is not None
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert set(cases) == {p.name for p in insecure_result.policies}
    assert cases["slm-foundry-local-auth-disabled"].find("failure") is not None
    assert cases["slm-storage-no-public-blob"].find("failure") is None
    assert int(suite.get("failures", "0")) == len({v.policy for v in insecure_result.mandatory})


def test_text_and_markdown_summaries(insecure_result: GateResult) -> None:
    text = format_result(insecure_result, "text")
    assert f"mandatory: {len(insecure_result.mandatory)}" in text
    assert text.rstrip().endswith("FAIL (mandatory "
                                                                                              "violations)")
    markdown = format_result(insecure_result, "markdown")
    assert markdown.startswith("### :x: Policy gate: `prod`")
    assert "| mandatory | `slm-foundry-local-auth-disabled` | `slmprod-ai` |" in markdown


def test_same_recording_is_advisory_under_dev_levels(insecure: Recording) -> None:
    result = run_gate(insecure, environment="local")
    assert result.mandatory == []
    assert result.exit_code == 0
    assert any(v.policy == "slm-foundry-local-auth-disabled" for v in result.advisory)


def test_compliant_program_passes_prod() -> None:
    result = run_gate(record(compliant_program, stack="prod"), environment="prod")
    assert [(v.policy, v.detail) for v in result.violations] == []
    assert result.exit_code == 0


def test_exemption_with_reason_is_reported_instead_of_the_violation(insecure: Recording, tmp_path: Path) -> None:
    config = json.loads(Path("policies/config/prod.json").read_text())
    config["slm-foundry-local-auth-disabled"] = {"enforcementLevel": "mandatory", "exempt": [
        {"pattern": "slmprod-ai", "reason": "legacy client until 2026-12, ticket OPS-142"}]}
    path = tmp_path / "prod.json"
    path.write_text(json.dumps(config))
    result = run_gate(insecure, environment="prod", config_path=path)
    assert not any(v.policy == "slm-foundry-local-auth-disabled" for v in result.violations)
    assert [(e.policy, e.resource, e.pattern, e.reason) for e in result.exemptions] == [(
        "slm-foundry-local-auth-disabled", "slmprod-ai", "slmprod-ai", "legacy client until 2026-12, ticket OPS-142")]
    assert "legacy client until 2026-12" in format_result(result, "text")


def test_exemption_without_reason_is_a_config_error(insecure: Recording, tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"slm-foundry-local-auth-disabled": {"exempt": [{"pattern": ".*"}]}}))
    with pytest.raises(GateError, match=r"slm-foundry-local-auth-disabled.exempt\[0\].reason: required"):
        run_gate(insecure, environment="prod", config_path=path)
