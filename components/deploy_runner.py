"""DeployRunner: the self-hosted GitHub Actions runner inside the platform's VNet.

A private AKS API server (staging, prod), a registry with public access off and an IoT Hub without public
access are reachable only from inside the VNet, so ``pulumi up`` for those stacks cannot run on a
GitHub-hosted runner. This component gives each such stack its own runner: a one-instance VM scale set in
subnet ``deploy-runner`` with no public IP and no inbound rule (its NSG denies all inbound), outbound
through a NAT gateway whose static IP is the deployer's egress (dev adds it to the API server's authorized
ranges). The VM has no managed identity: jobs on it log in to Azure with the workflow's own OIDC identity
(``azure/login``), exactly as on a hosted runner. It registers one *ephemeral* runner at a time with a
GitHub App installation token; the App's private key reaches the VM only inside the CustomScript
extension's ``protectedSettings`` (encrypted to the VM, never returned by ARM), read by root only.

Bootstrap order: the runner is ARM-only (no Kubernetes, image push or data-plane call), so the deploy
workflow first runs ``pulumi up --target`` over exactly these resources and their dependencies from a
hosted runner (``slmctl bootstrap-targets <stack>``), then the full ``pulumi up`` on the runner itself.
"""

from __future__ import annotations

import base64
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Final

import pulumi
from pulumi_azure_native import compute, network

RUNNER_VERSION: Final = "2.328.0"
RUNNER_SHA256: Final = "01066fad3a2893e63e6ca880ae3a1fad5bf9329d60e77ee15f2b97c148c3cd4e"
"""sha256 of ``actions-runner-linux-x64-2.328.0.tar.gz`` as GitHub's "New self-hosted runner" page prints it.
The runner updates itself afterwards (GitHub refuses jobs to runners that are too old)."""
ADMIN_USER: Final = "azureuser"
APP_KEY_CONFIG: Final = "deployRunnerAppKey"
"""Secret stack config holding the GitHub App's private key (PEM)."""
ROLE_TAG: Final = "slm.io/role"
ROLE_VALUE: Final = "deploy-runner"
"""Tag on the scale set: the deployer-reach policy finds the runner (and its subnet) by it."""
LABEL_TAG: Final = "slm.io/runner-label"


@dataclass(frozen=True, kw_only=True)
class GitHubRunnerRegistration:
    """Where the runner registers: one repository, through one GitHub App installation."""

    repository: str
    """``owner/repo`` whose workflows run jobs on the runner."""
    app_id: int
    installation_id: int
    """The App's installation on ``repository``: its tokens mint the runner registration tokens."""
    label: str
    """The ``runs-on`` label the runner registers with (and the workflows select it by)."""


def bootstrap_script(registration: GitHubRunnerRegistration, *, app_key: str) -> str:
    """The root script the CustomScript extension runs once: install, then register ephemeral runners forever."""
    env = {
        "SLM_REPO": registration.repository,
        "SLM_APP_ID": str(registration.app_id),
        "SLM_INSTALLATION_ID": str(registration.installation_id),
        "SLM_LABEL": registration.label,
    }
    env_file = "".join(f"{k}={shlex.quote(v)}\n" for k, v in env.items())
    return f"""#!/usr/bin/env bash
# slm-platform deploy runner: installed once by the CustomScript extension (protected settings), as root.
set -euo pipefail
umask 077
install -d -m 0700 /etc/slm-runner
cat > /etc/slm-runner/env <<'ENV'
{env_file}ENV
cat > /etc/slm-runner/app-key.pem <<'KEY'
{app_key.strip()}
KEY
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends ca-certificates curl gnupg jq openssl git docker.io unzip
install -d -m 0755 /etc/apt/keyrings
curl -fsSL https://packages.microsoft.com/keys/microsoft.asc | gpg --dearmor -o /etc/apt/keyrings/microsoft.gpg
echo "deb [arch=amd64 signed-by=/etc/apt/keyrings/microsoft.gpg] https://packages.microsoft.com/repos/azure-cli/ \\
$(. /etc/os-release && echo "$VERSION_CODENAME") main" > /etc/apt/sources.list.d/azure-cli.list
apt-get update
apt-get install -y --no-install-recommends azure-cli
id runner >/dev/null 2>&1 || useradd --create-home --shell /bin/bash runner
usermod -aG docker runner
install -d -o runner -g runner -m 0750 /opt/actions-runner
cd /opt/actions-runner
curl -fsSL -o runner.tar.gz \\
  https://github.com/actions/runner/releases/download/v{RUNNER_VERSION}/actions-runner-linux-x64-{RUNNER_VERSION}.tar.gz
echo "{RUNNER_SHA256}  runner.tar.gz" | sha256sum -c -
tar xzf runner.tar.gz && rm runner.tar.gz && chown -R runner:runner /opt/actions-runner
./bin/installdependencies.sh
cat > /usr/local/bin/slm-runner-loop <<'LOOP'
#!/usr/bin/env bash
# Register one ephemeral runner with a fresh GitHub App token, run one job, repeat.
set -euo pipefail
. /etc/slm-runner/env
b64url() {{ openssl base64 -A | tr '+/' '-_' | tr -d '='; }}
api() {{ curl -fsS -X POST -H "Authorization: Bearer $1" -H "Accept: application/vnd.github+json" "$2"; }}
cd /opt/actions-runner
while true; do
  now=$(date +%s)
  header=$(printf '{{"alg":"RS256","typ":"JWT"}}' | b64url)
  claims=$(printf '{{"iat":%d,"exp":%d,"iss":"%s"}}' "$((now - 60))" "$((now + 540))" "$SLM_APP_ID" | b64url)
  signature=$(printf '%s.%s' "$header" "$claims" | openssl dgst -sha256 -sign /etc/slm-runner/app-key.pem | b64url)
  app_token=$(api "$header.$claims.$signature" \\
    "https://api.github.com/app/installations/$SLM_INSTALLATION_ID/access_tokens" | jq -r .token)
  registration=$(api "$app_token" \\
    "https://api.github.com/repos/$SLM_REPO/actions/runners/registration-token" | jq -r .token)
  sudo -u runner ./config.sh --unattended --ephemeral --replace --url "https://github.com/$SLM_REPO" \\
    --token "$registration" --name "$(hostname)" --labels "$SLM_LABEL"
  sudo -u runner ./run.sh || true
  sleep 5
done
LOOP
chmod 0755 /usr/local/bin/slm-runner-loop
cat > /etc/systemd/system/slm-runner.service <<'UNIT'
[Unit]
Description=slm-platform deploy runner (ephemeral GitHub Actions runner)
After=network-online.target docker.service
Wants=network-online.target
[Service]
ExecStart=/usr/local/bin/slm-runner-loop
Restart=always
RestartSec=30
[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
systemctl enable --now slm-runner.service
"""  # noqa: S608 (a shell script: its "update"/"where" words are not SQL)


@dataclass(frozen=True, kw_only=True)
class DeployRunnerArgs:
    """Inputs of ``DeployRunner``."""

    name_prefix: str
    """Physical names are ``<kind>-<prefix>-deploy-runner``; the VMs' host names start ``<prefix>run``."""
    location: str
    resource_group_name: pulumi.Input[str]
    virtual_network_name: pulumi.Input[str]
    subnet_cidr: str
    """Subnet ``deploy-runner`` is created in ``virtual_network_name`` with this range (a /27 is plenty)."""
    registration: GitHubRunnerRegistration
    app_key: pulumi.Input[str]
    """Secret: the GitHub App's private key (PEM)."""
    admin_ssh_public_key: str
    """Azure requires one for a Linux VM; nothing can reach port 22 (no public IP, inbound denied)."""
    vm_size: str = "Standard_D2ds_v5"
    """Default: 2 vCPU, 8 GiB, local temp disk: enough for ``pulumi up`` and an image build."""
    after: Sequence[pulumi.Resource] = ()
    """Default: none. The VNet's other subnets: ARM updates one subnet of a VNet at a time."""
    tags: Mapping[str, str] = field(default_factory=dict[str, str])


class DeployRunner(pulumi.ComponentResource):
    """NSG, static egress IP, NAT gateway, subnet ``deploy-runner`` and a one-instance runner scale set."""

    _type_token: ClassVar[str] = "slm:platform:DeployRunner"  # noqa: S105 (a type token)
    """Our stacks' token; the component package constructs it as ``slm:index:DeployRunner``."""

    egress_ip: pulumi.Output[str]
    """The runner's public egress address (its NAT gateway's), as ``a.b.c.d``."""
    subnet_id: pulumi.Output[str]
    label: str

    def __init__(self, name: str, args: DeployRunnerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(self._type_token, name, None, opts)
        label = args.registration.label
        self.label = label
        child = pulumi.ResourceOptions(parent=self)
        tags = {**dict(args.tags), ROLE_TAG: ROLE_VALUE, LABEL_TAG: label}
        prefix = args.name_prefix
        nsg = network.NetworkSecurityGroup(
            f"{name}-nsg", network_security_group_name=f"nsg-{prefix}-deploy-runner",
            resource_group_name=args.resource_group_name, location=args.location, tags=tags,
            security_rules=[network.SecurityRuleArgs(
                name="deny-all-inbound", priority=4000, direction="Inbound", access="Deny", protocol="*",
                source_address_prefix="*", source_port_range="*", destination_address_prefix="*",
                destination_port_range="*", description="Nothing calls the runner; it only calls out.")],
            opts=child)
        pip = network.PublicIPAddress(
            f"{name}-egress-ip", public_ip_address_name=f"pip-{prefix}-deploy-runner",
            resource_group_name=args.resource_group_name, location=args.location,
            sku=network.PublicIPAddressSkuArgs(name="Standard", tier="Regional"),
            public_ip_allocation_method="Static", public_ip_address_version="IPv4", tags=tags, opts=child)
        nat = network.NatGateway(
            f"{name}-nat", nat_gateway_name=f"ng-{prefix}-deploy-runner",
            resource_group_name=args.resource_group_name, location=args.location,
            sku=network.NatGatewaySkuArgs(name="Standard"), idle_timeout_in_minutes=10,
            public_ip_addresses=[network.SubResourceArgs(id=pip.id)], tags=tags, opts=child)
        subnet = network.Subnet(
            f"{name}-snet", subnet_name="deploy-runner", resource_group_name=args.resource_group_name,
            virtual_network_name=args.virtual_network_name, address_prefix=args.subnet_cidr,
            network_security_group=network.NetworkSecurityGroupArgs(id=nsg.id),
            nat_gateway=network.SubResourceArgs(id=nat.id), default_outbound_access=False,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after)))
        self.subnet_id = subnet.id
        self.egress_ip = pip.ip_address.apply(lambda ip: ip or "")
        self._scale_set(name, args, subnet.id, tags)
        self.register_outputs({"egress_ip": self.egress_ip, "subnet_id": self.subnet_id})

    def _scale_set(self, name: str, args: DeployRunnerArgs, subnet_id: pulumi.Output[str],
                   tags: Mapping[str, str]) -> None:
        """The one-instance Ubuntu scale set whose CustomScript extension installs and registers the runner."""
        prefix = args.name_prefix
        child = pulumi.ResourceOptions(parent=self)
        script = pulumi.Output.secret(args.app_key).apply(
            lambda key: base64.b64encode(bootstrap_script(args.registration, app_key=key).encode()).decode())
        compute.VirtualMachineScaleSet(
            f"{name}-vmss", vm_scale_set_name=f"vmss-{prefix}-deploy-runner",
            resource_group_name=args.resource_group_name, location=args.location,
            sku=compute.SkuArgs(name=args.vm_size, tier="Standard", capacity=1),
            orchestration_mode="Uniform", overprovision=False,
            upgrade_policy=compute.UpgradePolicyArgs(mode=compute.UpgradeMode.MANUAL),
            virtual_machine_profile=compute.VirtualMachineScaleSetVMProfileArgs(
                os_profile=compute.VirtualMachineScaleSetOSProfileArgs(
                    computer_name_prefix=f"{prefix}run", admin_username=ADMIN_USER,
                    linux_configuration=compute.LinuxConfigurationArgs(
                        disable_password_authentication=True,
                        ssh=compute.SshConfigurationArgs(public_keys=[compute.SshPublicKeyArgs(
                            path=f"/home/{ADMIN_USER}/.ssh/authorized_keys",
                            key_data=args.admin_ssh_public_key)]))),
                storage_profile=compute.VirtualMachineScaleSetStorageProfileArgs(
                    image_reference=compute.ImageReferenceArgs(
                        publisher="Canonical", offer="ubuntu-24_04-lts", sku="server", version="latest"),
                    os_disk=compute.VirtualMachineScaleSetOSDiskArgs(
                        create_option="FromImage", caching=compute.CachingTypes.READ_WRITE, disk_size_gb=128,
                        managed_disk=compute.VirtualMachineScaleSetManagedDiskParametersArgs(
                            storage_account_type="Premium_LRS"))),
                network_profile=compute.VirtualMachineScaleSetNetworkProfileArgs(
                    network_interface_configurations=[compute.VirtualMachineScaleSetNetworkConfigurationArgs(
                        name="nic", primary=True, ip_configurations=[
                            compute.VirtualMachineScaleSetIPConfigurationArgs(
                                name="ipconfig", primary=True,
                                subnet=compute.ApiEntityReferenceArgs(id=subnet_id))])]),
                security_profile=compute.SecurityProfileArgs(
                    encryption_at_host=True, security_type="TrustedLaunch",
                    uefi_settings=compute.UefiSettingsArgs(secure_boot_enabled=True, v_tpm_enabled=True)),
                extension_profile=compute.VirtualMachineScaleSetExtensionProfileArgs(extensions=[
                    compute.VirtualMachineScaleSetExtensionArgs(
                        name="slm-runner", publisher="Microsoft.Azure.Extensions", type="CustomScript",
                        type_handler_version="2.1", auto_upgrade_minor_version=True,
                        protected_settings=script.apply(lambda b64: {"script": b64}))]),
            ),
            tags=tags,
            opts=child)


__all__: Sequence[str] = ("DeployRunner", "DeployRunnerArgs", "GitHubRunnerRegistration", "bootstrap_script")
