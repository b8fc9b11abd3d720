"""The in-VNet deploy runner: private, outbound-only, its GitHub App key only in protected settings, ARM-only."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest

from components.deploy_runner import RUNNER_SHA256, RUNNER_VERSION, GitHubRunnerRegistration, bootstrap_script
from slmctl.bootstrap import BootstrapError, bootstrap_targets
from slmctl.loader import load_stack_file
from slmctl.plan import record_stack
from slmctl.recorder import SECRET_SIG, Recording, redact, secret_paths
from stacks.settings import EnvironmentSettings
from tests.stack_support import REPO_ROOT, stack_settings

KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEAtest\n-----END RSA PRIVATE KEY-----"


def recorded(stack: str) -> Recording:
    return record_stack(load_stack_file(REPO_ROOT / "stacks" / f"Pulumi.{stack}.yaml", stack=stack))


@pytest.fixture(scope="module")
def staging() -> Recording:
    return recorded("staging")


def one(recording: Recording, typ: str, name: str) -> dict[str, object]:
    (reg,) = [r for r in recording.registrations if r.type == typ and r.name == name]
    return reg.inputs


class TestRunnerResources:
    def test_the_scale_set_has_no_public_ip_and_one_instance_in_the_runner_subnet(self, staging: Recording) -> None:
        vmss = one(staging, "azure-native:compute:VirtualMachineScaleSet", "deploy-vmss")
        profile = redact(vmss["virtualMachineProfile"])
        (nic,) = profile["networkProfile"]["networkInterfaceConfigurations"]
        (ipconfig,) = nic["ipConfigurations"]
        assert "publicIPAddressConfiguration" not in ipconfig
        assert ipconfig["subnet"]["id"].endswith("/deploy-runner")
        assert vmss["sku"] == {"name": "Standard_D2ds_v5", "tier": "Standard", "capacity": 1}
        assert profile["osProfile"]["linuxConfiguration"]["disablePasswordAuthentication"] is True
        assert profile["securityProfile"]["encryptionAtHost"] is True
        assert vmss["tags"]["slm.io/role"] == "deploy-runner"

    def test_the_github_app_key_is_only_in_the_protected_settings_and_secret(self, staging: Recording) -> None:
        vmss = one(staging, "azure-native:compute:VirtualMachineScaleSet", "deploy-vmss")
        assert secret_paths(vmss) == ["virtualMachineProfile.extensionProfile.extensions[0].protectedSettings"]
        (ext,) = vmss["virtualMachineProfile"]["extensionProfile"]["extensions"]  # type: ignore[index]
        assert "settings" not in ext

    def test_inbound_is_denied_and_outbound_leaves_through_the_nat_gateway(self, staging: Recording) -> None:
        (rule,) = one(staging, "azure-native:network:NetworkSecurityGroup", "deploy-nsg")["securityRules"]
        assert (rule["direction"], rule["access"], rule["sourceAddressPrefix"]) == ("Inbound", "Deny", "*")
        subnet = one(staging, "azure-native:network:Subnet", "deploy-snet")
        assert subnet["addressPrefix"] == "10.41.17.0/27"
        assert subnet["defaultOutboundAccess"] is False
        assert subnet["natGateway"]["id"].endswith("/ng-slmstg-deploy-runner")

    def test_the_runner_registers_the_label_of_its_stack_not_its_tier(self, staging: Recording,
                                                                       tmp_path: Path) -> None:
        # a qa stack on the staging tier: its runner must not answer staging's runs-on label
        qa_file = tmp_path / "Pulumi.qa.yaml"
        qa_file.write_text((REPO_ROOT / "stacks" / "Pulumi.staging.yaml").read_text())
        qa = record_stack(load_stack_file(qa_file))
        labels = {name: one(rec, "azure-native:compute:VirtualMachineScaleSet", "deploy-vmss")["tags"]["slm.io/runner-label"]
                  for name, rec in (("staging", staging), ("qa", qa))}
        assert labels == {"staging": "slm-deploy-staging", "qa": "slm-deploy-qa"}

    def test_dev_api_server_admits_the_runners_nat_ip(self) -> None:
        dev = recorded("dev")
        access = one(dev, "azure-native:containerservice:ManagedCluster", "serving-aks")["apiServerAccessProfile"]
        (pip,) = [r for r in dev.registrations if r.name == "deploy-egress-ip"]
        assert access["authorizedIPRanges"][0] == "203.0.113.0/24"  # type: ignore[index]
        assert access["authorizedIPRanges"][1].endswith("/32")  # type: ignore[index]
        (aks,) = [r for r in dev.registrations if r.name == "serving-aks"]
        assert pip.urn in aks.dependencies


class TestBootstrapScript:
    def script(self) -> str:
        runner = EnvironmentSettings.model_validate(stack_settings("staging")).deployer.runner
        assert runner is not None
        registration = GitHubRunnerRegistration(
            repository=runner.github_repository, app_id=runner.github_app_id,
            installation_id=runner.github_app_installation_id, label="slm-deploy-staging")
        return bootstrap_script(registration, app_key=KEY)

    def test_it_is_valid_bash(self) -> None:
        result = subprocess.run(["bash", "-n"], input=self.script(), text=True, capture_output=True, check=False)
        assert result.returncode == 0, result.stderr

    def test_the_runner_release_is_verified_and_registrations_are_ephemeral(self) -> None:
        script = self.script()
        assert f'echo "{RUNNER_SHA256}  runner.tar.gz" | sha256sum -c -' in script
        assert f"download/v{RUNNER_VERSION}/actions-runner-linux-x64-{RUNNER_VERSION}.tar.gz" in script
        assert "--ephemeral" in script
        assert '--labels "$SLM_LABEL"' in script
        assert "SLM_LABEL=slm-deploy-staging" in script
        assert "SLM_REPO=contoso/slm-platform" in script
        # The key is written root-only (umask 077) and jobs run as the unprivileged runner user.
        assert "umask 077" in script
        assert "sudo -u runner ./run.sh" in script

    def test_the_extension_carries_the_script_base64(self, staging: Recording) -> None:
        vmss = one(staging, "azure-native:compute:VirtualMachineScaleSet", "deploy-vmss")
        (ext,) = vmss["virtualMachineProfile"]["extensionProfile"]["extensions"]  # type: ignore[index]
        protected = ext["protectedSettings"]
        assert SECRET_SIG in protected
        script = base64.b64decode(protected["value"]["script"]).decode()
        assert script.startswith("#!/usr/bin/env bash")
        assert "KEY\n" in script


class TestBootstrapTargets:
    def test_the_targets_are_the_runner_and_its_arm_dependencies_only(self, staging: Recording) -> None:
        urns = bootstrap_targets(staging)
        types = {u.rsplit("::", 1)[0].rsplit("$", 1)[-1].rsplit("::", 1)[-1] for u in urns}
        assert "azure-native:compute:VirtualMachineScaleSet" in types
        assert "azure-native:network:VirtualNetwork" in types
        assert "azure-native:resources:ResourceGroup" in types
        assert not [u for u in urns if "kubernetes" in u or "docker" in u or "ManagedCluster" in u]
        assert len(urns) == len(set(urns)) == 11

    def test_a_data_plane_dependency_is_refused(self, staging: Recording) -> None:
        vmss = next(r for r in staging.registrations if r.name == "deploy-vmss")
        k8s = next(r for r in staging.registrations if r.type.startswith("kubernetes:"))
        vmss.dependencies.append(k8s.urn)
        try:
            with pytest.raises(BootstrapError, match="data-plane resources a hosted runner cannot reach"):
                bootstrap_targets(staging)
        finally:
            vmss.dependencies.remove(k8s.urn)

    def test_a_stack_without_a_runner_has_nothing_to_bootstrap(self) -> None:
        with pytest.raises(BootstrapError, match="no deploy runner to bootstrap"):
            bootstrap_targets(recorded("local"))

    def test_the_command_prints_one_urn_per_line(self) -> None:
        result = subprocess.run([".venv/bin/python", "-m", "slmctl", "bootstrap-targets", "staging"], cwd=REPO_ROOT,
                                text=True, capture_output=True, check=False)
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert all(line.startswith("urn:pulumi:staging::slm-platform::") for line in lines)
        assert "PRIVATE KEY" not in result.stdout
