"""Every type token the rules match on, in one place (azure-native default tokens, Kubernetes kinds, providers).

Versioned azure-native tokens (``azure-native:storage/v20230101:StorageAccount``) are normalised to these by
``normalize_type`` (the pack, before a rule sees them; ``slmctl plan``'s cost estimate likewise).
"""

from __future__ import annotations

import re
from typing import Final

# azure-native
PROMETHEUS_RULE_GROUP: Final = "azure-native:alertsmanagement:PrometheusRuleGroup"
ROLE_ASSIGNMENT: Final = "azure-native:authorization:RoleAssignment"
FOUNDRY_ACCOUNT: Final = "azure-native:cognitiveservices:Account"
FOUNDRY_DEPLOYMENT: Final = "azure-native:cognitiveservices:Deployment"
FOUNDRY_PROJECT: Final = "azure-native:cognitiveservices:Project"
RAI_POLICY: Final = "azure-native:cognitiveservices:RaiPolicy"
VM: Final = "azure-native:compute:VirtualMachine"
VMSS: Final = "azure-native:compute:VirtualMachineScaleSet"
CONTAINER_GROUP: Final = "azure-native:containerinstance:ContainerGroup"
REGISTRY: Final = "azure-native:containerregistry:Registry"
AGENT_POOL: Final = "azure-native:containerservice:AgentPool"
CLUSTER: Final = "azure-native:containerservice:ManagedCluster"
GRAFANA: Final = "azure-native:dashboard:Grafana"
IOT_HUB: Final = "azure-native:iothub:IotHubResource"
VAULT_SECRET: Final = "azure-native:keyvault:Secret"  # noqa: S105 (a type token)
VAULT: Final = "azure-native:keyvault:Vault"
FEDERATED_CREDENTIAL: Final = "azure-native:managedidentity:FederatedIdentityCredential"
IDENTITY: Final = "azure-native:managedidentity:UserAssignedIdentity"
ACTION_GROUP: Final = "azure-native:monitor:ActionGroup"
MONITOR_WORKSPACE: Final = "azure-native:monitor:AzureMonitorWorkspace"
NAT_GATEWAY: Final = "azure-native:network:NatGateway"
NSG: Final = "azure-native:network:NetworkSecurityGroup"
DNS_ZONE_GROUP: Final = "azure-native:network:PrivateDnsZoneGroup"
PRIVATE_ENDPOINT: Final = "azure-native:network:PrivateEndpoint"
PUBLIC_IP: Final = "azure-native:network:PublicIPAddress"
SECURITY_RULE: Final = "azure-native:network:SecurityRule"
SUBNET: Final = "azure-native:network:Subnet"
VNET: Final = "azure-native:network:VirtualNetwork"
LOG_WORKSPACE: Final = "azure-native:operationalinsights:Workspace"
DNS_ZONE: Final = "azure-native:privatedns:PrivateZone"
DNS_ZONE_LINK: Final = "azure-native:privatedns:VirtualNetworkLink"
BLOB_CONTAINER: Final = "azure-native:storage:BlobContainer"
BLOB_SERVICE: Final = "azure-native:storage:BlobServiceProperties"
STORAGE_ACCOUNT: Final = "azure-native:storage:StorageAccount"

# kubernetes
REPLICA_SET: Final = "kubernetes:apps/v1:ReplicaSet"
HPA: Final = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
SERVICE: Final = "kubernetes:core/v1:Service"
HELM_RELEASE: Final = "kubernetes:helm.sh/v3:Release"
HELM_RELEASE_TYPES: Final = frozenset({HELM_RELEASE, "kubernetes:helm.sh/v4:Chart", "kubernetes:helm.sh/v3:Chart"})
"""A Helm release as the stack declares it: the v3 Release, or a v3/v4 Chart component."""
K8S_SECRET: Final = "kubernetes:core/v1:Secret"  # noqa: S105 (a type token)
SCALED_OBJECT: Final = "kubernetes:keda.sh/v1alpha1:ScaledObject"
TRIGGER_AUTH: Final = "kubernetes:keda.sh/v1alpha1:TriggerAuthentication"
PROMETHEUS_RULE: Final = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"
NETWORK_POLICY: Final = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
PDB: Final = "kubernetes:policy/v1:PodDisruptionBudget"
SECRET_PROVIDER_CLASS: Final = "kubernetes:secrets-store.csi.x-k8s.io/v1:SecretProviderClass"  # noqa: S105 (a type token)

# pulumi-python
DYNAMIC_RESOURCE: Final = "pulumi-python:dynamic:Resource"

# pulumi
K8S_PROVIDER: Final = "pulumi:providers:kubernetes"

# type-token prefixes (API groups)
MANAGED_PROMETHEUS_GROUP: Final = "kubernetes:azmonitoring.coreos.com/"
"""Azure Managed Prometheus's ServiceMonitor/PodMonitor group (ama-metrics reads these)."""
PROMETHEUS_GROUP: Final = "kubernetes:monitoring.coreos.com/"
"""The Prometheus Operator's group (kube-prometheus-stack)."""


_VERSIONED_TOKEN_RE: Final = re.compile(r"^(azure-native:[A-Za-z0-9]+)/v\d{8}[a-z]*(:[A-Za-z0-9]+)$")


def normalize_type(type_: str) -> str:
    """``azure-native:storage/v20230101:StorageAccount`` -> ``azure-native:storage:StorageAccount``.

    A locally generated API version registers the same resource under a versioned token; rules
    match the default token, so without this every versioned resource passed unread (issue 12.4).
    """
    m = _VERSIONED_TOKEN_RE.match(type_)
    return m.group(1) + m.group(2) if m else type_
RESOURCE_GROUP: Final = "azure-native:resources:ResourceGroup"
STACK_REFERENCE: Final = "pulumi:pulumi:StackReference"
