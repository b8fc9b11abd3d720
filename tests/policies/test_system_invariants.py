"""System invariants (reachability, identity, conflicts): a violating plan fragment and its compliant twin each.

Fragments are built as the engine sends them to ``AnalyzeStack``: wire inputs plus the property
dependencies that say whose outputs flowed into which input (ids are unknown at preview, so the rules
must follow the dependencies, not the id strings).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from policies.rules import conflicts, identity, reachability
from policies.rules.plan_graph import ROLE_IDS, UNKNOWN
from policies.rules.stack import Finding, StackResource

SUB = "/subscriptions/00000000-0000-0000-0000-000000000000"


def res(type_: str, name: str, props: Mapping[str, Any] | None = None, *,
        pdeps: Mapping[str, Sequence[str]] | None = None, deps: Sequence[str] = (),
        provider: str = "") -> StackResource:
    urn = f"urn:pulumi:t::p::{type_}::{name}"
    prop_deps = {k: tuple(f"urn:pulumi:t::p::{u}" for u in v) for k, v in (pdeps or {}).items()}
    all_deps = {u for v in prop_deps.values() for u in v} | {f"urn:pulumi:t::p::{d}" for d in deps}
    return StackResource(type_, name, urn, dict(props or {}), None, tuple(sorted(all_deps)), prop_deps,
                         f"urn:pulumi:t::p::{provider}" if provider else "")


ON_AKS = "pulumi:providers:kubernetes::k8s-aks"
"""The provider of the objects applied to cluster 'aks' (its kubeconfig comes from the cluster)."""


UAI = "azure-native:managedidentity:UserAssignedIdentity"
CLUSTER = "azure-native:containerservice:ManagedCluster"
SUBNET = "azure-native:network:Subnet"
VNET = "azure-native:network:VirtualNetwork"
RA = "azure-native:authorization:RoleAssignment"


def ra(name: str, role: str, *, scope: str, principal: str | None = None, description: str | None = None,
       principal_type: str = "ServicePrincipal") -> StackResource:
    props: dict[str, Any] = {"roleDefinitionId": f"{SUB}/providers/Microsoft.Authorization/roleDefinitions/"
                                                 f"{ROLE_IDS[role]}", "scope": UNKNOWN, "principalId": UNKNOWN,
                             "principalType": principal_type}
    if description:
        props["description"] = description
    pdeps: dict[str, list[str]] = {"scope": [scope]}
    if principal is not None:
        pdeps["principalId"] = [principal]
    else:
        props["principalId"] = "5b1a0d2e-0000-4000-8000-000000000001"
    return res(RA, name, props, pdeps=pdeps)


def messages(findings: list[Finding]) -> list[str]:
    return [f"{f.resource.name if f.resource else 'stack'}: {f.message}" for f in findings]


# --------------------------------------------------------------------------- conflicts


def diag(name: str, logs: list[dict[str, Any]], *, target: str = "aks", workspace: str = "law") -> StackResource:
    return res("azure-native:monitor:DiagnosticSetting", name,
               {"resourceUri": UNKNOWN, "workspaceId": UNKNOWN, "logs": logs, "name": name},
               pdeps={"resourceUri": [f"{CLUSTER}::{target}"],
                      "workspaceId": [f"azure-native:operationalinsights:Workspace::{workspace}"]})


def test_two_settings_sending_one_category_to_one_workspace_conflict() -> None:
    a = diag("serving-diag-audit", [{"category": "kube-audit-admin", "enabled": True}])
    b = diag("observability-aks-diag-audit", [{"category": "kube-audit-admin", "enabled": True},
                                              {"category": "guard", "enabled": True}])
    (found,) = messages(conflicts.diagnostic_sinks([a, b], {}))
    assert found.startswith("observability-aks-diag-audit: diagnostic setting 'observability-aks-diag-audit' sends "
                            "kube-audit-admin of ")
    assert "same destination as 'serving-diag-audit'" in found



def test_ids_created_in_the_stack_are_compared_without_reading_them() -> None:
    """At a first preview every resourceUri/workspaceId is unknown: judged by the resources they come from,
    so the check reads no unknown (no "cannot verify") and still finds the conflict."""
    from policies.rules.wire import tracking_reads, with_unknowns

    def unknowns(r: StackResource) -> StackResource:
        return StackResource(r.type, r.name, r.urn, with_unknowns(r.props), None, r.dependencies,
                             r.property_dependencies)

    audit = [{"categoryGroup": "audit", "enabled": True}]
    with tracking_reads() as reads:
        assert len(conflicts.diagnostic_sinks([unknowns(diag("a", audit)), unknowns(diag("b", audit))], {})) == 1
        assert conflicts.diagnostic_sinks([unknowns(diag("a", audit)), unknowns(diag("b", audit, target="kv"))],
                                          {}) == []
    assert reads == set()

def test_a_category_group_overlaps_the_categories_it_covers() -> None:
    a = diag("a", [{"categoryGroup": "allLogs", "enabled": True}])
    b = diag("b", [{"category": "guard", "enabled": True}])
    assert len(conflicts.diagnostic_sinks([a, b], {})) == 1
    audit = diag("c", [{"categoryGroup": "audit", "enabled": True}])
    assert len(conflicts.diagnostic_sinks([audit, b], {})) == 1


def test_distinct_categories_workspaces_or_resources_do_not_conflict() -> None:
    a = diag("a", [{"category": "kube-audit-admin", "enabled": True}])
    assert conflicts.diagnostic_sinks([a, diag("b", [{"category": "guard", "enabled": True}])], {}) == []
    assert conflicts.diagnostic_sinks([a, diag("b", [{"category": "kube-audit-admin"}], workspace="other")], {}) == []
    assert conflicts.diagnostic_sinks([a, diag("b", [{"category": "kube-audit-admin"}], target="aks2")], {}) == []
    assert conflicts.diagnostic_sinks([a, diag("b", [{"category": "kube-audit-admin", "enabled": False}])], {}) == []


def test_names_are_unique_per_scope_and_globally_for_dns_names() -> None:
    kv = "azure-native:keyvault:Vault"
    one = res(kv, "models-kv", {"vaultName": "slmdev-kv", "resourceGroupName": "rg-a"})
    two = res(kv, "other-kv", {"vaultName": "slmdev-kv", "resourceGroupName": "rg-b"})
    (found,) = messages(conflicts.unique_names([one, two], {}))
    assert found == ("models-kv: vaultName: found 'slmdev-kv', which 'other-kv' already uses in all of Azure; the "
                     "second create fails or overwrites the first. Give one of them another name.")
    ns = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
    p1 = res(ns, "a", {"metadata": {"name": "default-deny", "namespace": "slm-a"}})
    p2 = res(ns, "b", {"metadata": {"name": "default-deny", "namespace": "slm-b"}})
    assert conflicts.unique_names([p1, p2], {}) == []
    p3 = res(ns, "c", {"metadata": {"name": "default-deny", "namespace": "slm-a"}})
    assert [f.resource.name for f in conflicts.unique_names([p1, p2, p3], {}) if f.resource] == ["a"]
    pool = "azure-native:containerservice:AgentPool"
    assert conflicts.unique_names([res(pool, "x", {"agentPoolName": "gpu", "resourceName": "aks1"}),
                                   res(pool, "y", {"agentPoolName": "gpu", "resourceName": "aks2"})], {}) == []



def test_a_parent_name_unknown_at_preview_is_the_resource_it_comes_from() -> None:
    """A first preview: each link's zone is created in this stack, so its name is unknown; the links are in
    different zones (different source resources), not in one scope with an unknown parent."""
    link = "azure-native:privatedns:VirtualNetworkLink"
    zone = "azure-native:privatedns:PrivateZone"

    def on(name: str, source: str) -> StackResource:
        return res(link, name, {"virtualNetworkLinkName": "link-slm", "resourceGroupName": "rg",
                                "privateZoneName": UNKNOWN}, pdeps={"privateZoneName": [f"{zone}::{source}"]})

    assert conflicts.unique_names([on("blob-link", "blob"), on("vault-link", "vault")], {}) == []
    assert [f.resource.name for f in conflicts.unique_names([on("a-link", "blob"), on("b-link", "blob")], {})
            if f.resource] == ["a-link"]

# --------------------------------------------------------------------------- identity


def cluster_fragment(*, ordered: bool, with_grants: bool = True) -> list[StackResource]:
    cp = res(UAI, "id-cp")
    kubelet = res(UAI, "id-kubelet")
    vnet = res(VNET, "vnet")
    subnet = res(SUBNET, "snet-aks", {"subnetName": "aks", "virtualNetworkName": UNKNOWN},
                 pdeps={"virtualNetworkName": [f"{VNET}::vnet"]})
    grants = [ra("ra-mio", "Managed Identity Operator", scope=f"{UAI}::id-kubelet", principal=f"{UAI}::id-cp"),
              ra("ra-netc", "Network Contributor", scope=f"{SUBNET}::snet-aks", principal=f"{UAI}::id-cp")] \
        if with_grants else []
    aks = res(CLUSTER, "aks", {"resourceName": "slm-aks", "aadProfile": {"enableAzureRBAC": True},
                               "disableLocalAccounts": True},
              pdeps={"identity": [f"{UAI}::id-cp"], "identityProfile": [f"{UAI}::id-kubelet"],
                     "agentPoolProfiles": [f"{SUBNET}::snet-aks"]},
              deps=[f"{RA}::ra-mio", f"{RA}::ra-netc"] if ordered else [])
    on_aks = res("pulumi:providers:kubernetes", "k8s-aks", {}, deps=[f"{CLUSTER}::aks"])
    return [cp, kubelet, vnet, subnet, *grants, aks, on_aks]


def test_create_time_grants_must_exist_and_precede_the_cluster() -> None:
    assert identity.create_time_grants(cluster_fragment(ordered=True), {}) == []
    parallel = messages(identity.create_time_grants(cluster_fragment(ordered=False), {}))
    assert parallel == [
        "aks: dependsOn: 'aks' is created in parallel with 'ra-mio' ('Managed Identity Operator' on 'id-kubelet' for "
        "'id-cp'), which AKS needs at creation; add 'ra-mio' to 'aks''s depends_on.",
        "aks: dependsOn: 'aks' is created in parallel with 'ra-netc' ('Network Contributor' on 'snet-aks' for "
        "'id-cp'), which AKS needs at creation; add 'ra-netc' to 'aks''s depends_on."]
    missing = messages(identity.create_time_grants(cluster_fragment(ordered=True, with_grants=False), {}))
    assert len(missing) == 2
    assert "control-plane identity 'id-cp' has no 'Managed Identity Operator' on 'id-kubelet'" in missing[0]


def test_a_grant_on_the_vnet_covers_its_subnet() -> None:
    plan = [r for r in cluster_fragment(ordered=True) if r.name != "ra-netc"]
    plan.append(ra("ra-netc", "Network Contributor", scope=f"{VNET}::vnet", principal=f"{UAI}::id-cp"))
    assert identity.create_time_grants(plan, {}) == []


def workload(name: str, image: str, *, namespace: str = "slm-a", labels: dict[str, str] | None = None,
             port: int = 8000, provider: str = ON_AKS) -> StackResource:
    labels = labels or {"app": name}
    return res("kubernetes:apps/v1:Deployment", name, {"metadata": {"name": name, "namespace": namespace}, "spec": {
        "selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}, "spec": {"containers": [
            {"name": "c", "image": image, "ports": [{"name": "http", "containerPort": port}]}]}}}}, provider=provider)


def test_the_kubelet_may_pull_from_the_registry_its_pods_use() -> None:
    registry = res("azure-native:containerregistry:Registry", "acr", {"registryName": "slmacr"})
    plan = [*cluster_fragment(ordered=True), registry, workload("onnx", "slmacr.azurecr.io/slm/onnx@sha256:" + "a" * 64)]
    (found,) = messages(identity.kubelet_acr_pull(plan, {}))
    assert found.startswith("acr: identity: 'onnx' pulls its image from 'acr', but the kubelet of 'aks' "
                            "('id-kubelet') has no AcrPull there")
    plan.append(ra("ra-pull", "AcrPull", scope="azure-native:containerregistry:Registry::acr",
                   principal=f"{UAI}::id-kubelet"))
    assert identity.kubelet_acr_pull(plan, {}) == []
    other = [*cluster_fragment(ordered=True), registry, workload("vllm", "docker.io/vllm/vllm-openai:v0.11.0")]
    assert identity.kubelet_acr_pull(other, {}) == []
    # Pods applied to no cluster of the stack (another provider) are not this cluster's kubelet's business.
    elsewhere = [*cluster_fragment(ordered=True), registry, workload("onnx", "slmacr.azurecr.io/slm/onnx:1",
                                                                    provider="pulumi:providers:kubernetes::edge")]
    assert identity.kubelet_acr_pull(elsewhere, {}) == []


SPC_TYPE = "kubernetes:secrets-store.csi.x-k8s.io/v1:SecretProviderClass"


def secrets_fragment(*, role: str | None) -> list[StackResource]:
    vault = res("azure-native:keyvault:Vault", "kv", {"vaultName": "slm-kv"})
    wi = res(UAI, "id-wi")
    spc = res(SPC_TYPE, "spc", {"spec": {"provider": "azure", "parameters": {
        "clientID": UNKNOWN, "keyvaultName": UNKNOWN}}},
        pdeps={"spec": [f"{UAI}::id-wi", "azure-native:keyvault:Vault::kv"]}, provider=ON_AKS)
    grants = [ra("ra-kv", role, scope="azure-native:keyvault:Vault::kv", principal=f"{UAI}::id-wi")] if role else []
    return [vault, wi, spc, *grants]


def test_the_csi_identity_may_read_the_vault_secrets() -> None:
    assert identity.secrets_reader(secrets_fragment(role="Key Vault Secrets User"), {}) == []
    (found,) = messages(identity.secrets_reader(secrets_fragment(role=None), {}))
    assert found.startswith("spc: identity: SecretProviderClass 'spc' reads 'kv' as 'id-wi', which has no "
                            "'Key Vault Secrets User' there")
    # A role on another principal does not count.
    plan = [*secrets_fragment(role=None), ra("ra-kv", "Key Vault Secrets User", scope="azure-native:keyvault:Vault::kv", principal=f"{UAI}::someone-else")]
    assert len(identity.secrets_reader(plan, {})) == 1


def keda_fragment(*, grant: bool, federated: bool, auth: bool = True) -> list[StackResource]:
    amw = res("azure-native:monitor:AzureMonitorWorkspace", "amw")
    uai = res(UAI, "id-keda")
    out = [amw, uai]
    if federated:
        out.append(res("azure-native:managedidentity:FederatedIdentityCredential", "fic-keda",
                       {"subject": "system:serviceaccount:kube-system:keda-operator", "resourceName": UNKNOWN},
                       pdeps={"resourceName": [f"{UAI}::id-keda"]}))
    if grant:
        out.append(ra("ra-keda", "Monitoring Data Reader", scope="azure-native:monitor:AzureMonitorWorkspace::amw",
                      principal=f"{UAI}::id-keda"))
    out.append(res("kubernetes:keda.sh/v1alpha1:TriggerAuthentication", "auth", {
        "metadata": {"name": "prometheus", "namespace": "slm-a"},
        "spec": {"podIdentity": {"provider": "azure-workload", "identityId": UNKNOWN}}},
        pdeps={"spec": [f"{UAI}::id-keda"]}))
    trigger: dict[str, Any] = {"type": "prometheus", "metadata": {"serverAddress": UNKNOWN}}
    if auth:
        trigger["authenticationRef"] = {"name": "prometheus"}
    out.append(res("kubernetes:keda.sh/v1alpha1:ScaledObject", "scaler", {
        "metadata": {"name": "a", "namespace": "slm-a"}, "spec": {"triggers": [trigger]}},
        pdeps={"spec": ["azure-native:monitor:AzureMonitorWorkspace::amw"]}))
    return out


def test_keda_reads_the_workspace_with_a_federated_reader_identity() -> None:
    assert identity.keda_metrics_reader(keda_fragment(grant=True, federated=True), {}) == []
    found = messages(identity.keda_metrics_reader(keda_fragment(grant=False, federated=False), {}))
    assert [f.split(":", 1)[0] for f in found] == ["auth", "scaler"]
    assert "no federated credential for 'system:serviceaccount:kube-system:keda-operator'" in found[0]
    assert "queries 'amw' as 'id-keda' (TriggerAuthentication 'auth'), which has no 'Monitoring Data Reader'" in found[1]
    (anonymous,) = messages(identity.keda_metrics_reader(keda_fragment(grant=True, federated=True, auth=False), {}))
    assert "without an azure-workload TriggerAuthentication" in anonymous


def provider(deps: Sequence[str]) -> StackResource:
    return res("pulumi:providers:kubernetes", "k8s", {}, deps=deps)


def test_the_deployer_may_write_kubernetes_objects_before_it_does() -> None:
    base = [r for r in cluster_fragment(ordered=True) if r.type != "pulumi:providers:kubernetes"]
    (missing,) = messages(identity.deployer_grants([*base, provider([f"{CLUSTER}::aks"])], {}))
    assert missing.startswith("aks: identity: the deployer writes Kubernetes objects of 'aks' ('k8s') but holds no "
                              "'Azure Kubernetes Service RBAC Cluster Admin' there")
    grant = ra("ra-deployer", "Azure Kubernetes Service RBAC Cluster Admin", scope=f"{CLUSTER}::aks",
               description="deployer: applies the Kubernetes objects")
    (late,) = messages(identity.deployer_grants([*base, grant, provider([f"{CLUSTER}::aks"])], {}))
    assert late.startswith("k8s: dependsOn: 'k8s' writes Kubernetes objects of 'aks' in parallel with the deployer's "
                           "grant 'ra-deployer'")
    assert identity.deployer_grants([*base, grant, provider([f"{CLUSTER}::aks", f"{RA}::ra-deployer"])], {}) == []
    # Without the deployer mark the grant is somebody else's.
    other = ra("ra-deployer", "Azure Kubernetes Service RBAC Cluster Admin", scope=f"{CLUSTER}::aks")
    assert len(identity.deployer_grants([*base, other, provider([f"{CLUSTER}::aks", f"{RA}::ra-deployer"])], {})) == 1


def test_the_deployer_may_write_the_iot_hub_data_plane_before_it_does() -> None:
    hub = res("azure-native:iothub:IotHubResource", "hub", {"properties": {"disableLocalAuth": True}})
    grant = ra("ra-iot", "IoT Hub Data Contributor", scope="azure-native:iothub:IotHubResource::hub",
               description="deployer: applies IoT Edge configurations")
    config = res("pulumi-python:dynamic:Resource", "fleet-base", {"hubHostName": UNKNOWN},
                 pdeps={"hubHostName": ["azure-native:iothub:IotHubResource::hub"]})
    assert "in parallel with the deployer's grant 'ra-iot'" in messages(
        identity.deployer_grants([hub, grant, config], {}))[0]
    ordered = res("pulumi-python:dynamic:Resource", "fleet-base", {"hubHostName": UNKNOWN},
                  pdeps={"hubHostName": ["azure-native:iothub:IotHubResource::hub"]}, deps=[f"{RA}::ra-iot"])
    assert identity.deployer_grants([hub, grant, ordered], {}) == []


def test_somebody_may_sign_in_to_managed_grafana() -> None:
    grafana = res("azure-native:dashboard:Grafana", "grafana", {"workspaceName": "g"})
    own = ra("ra-own", "Grafana Admin", scope="azure-native:dashboard:Grafana::grafana",
             principal="azure-native:dashboard:Grafana::grafana")
    (found,) = messages(identity.grafana_users([grafana, own], {}))
    assert found.startswith("grafana: identity: nobody holds 'Grafana Admin' on 'grafana'")
    people = ra("ra-admins", "Grafana Admin", scope="azure-native:dashboard:Grafana::grafana", principal_type="Group")
    assert identity.grafana_users([grafana, own, people], {}) == []


# --------------------------------------------------------------------------- reachability

NP = "kubernetes:networking.k8s.io/v1:NetworkPolicy"


def scrape_fragment(*, admit: str, managed: bool = True, pods: dict[str, str] | None = None) -> list[StackResource]:
    labels = {"app": "vllm"}
    deploy = workload("vllm", "vllm/vllm-openai:v0.11.0", labels=labels)
    svc = res("kubernetes:core/v1:Service", "svc", {"metadata": {"name": "vllm", "namespace": "slm-a",
                                                                 "labels": labels},
                                                    "spec": {"selector": labels, "ports": [{"name": "http",
                                                                                             "port": 8000}]}})
    group = "azmonitoring.coreos.com" if managed else "monitoring.coreos.com"
    monitor = res(f"kubernetes:{group}/v1:ServiceMonitor", "sm", {"metadata": {"namespace": "slm-a"}, "spec": {
        "selector": {"matchLabels": labels}, "namespaceSelector": {"matchNames": ["slm-a"]},
        "endpoints": [{"targetPort": 8000, "path": "/metrics"}]}})
    deny = res(NP, "np-deny", {"metadata": {"name": "default-deny", "namespace": "slm-a"},
                               "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}})
    allow = res(NP, "np-metrics", {"metadata": {"name": "allow-monitoring", "namespace": "slm-a"}, "spec": {
        "podSelector": {"matchLabels": labels}, "policyTypes": ["Ingress"], "ingress": [{
            "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": admit}},
                      **({"podSelector": {"matchLabels": pods}} if pods is not None else {})}],
            "ports": [{"port": 8000, "protocol": "TCP"}]}]}})
    return [deploy, svc, monitor, deny, allow]


AMA = {"rsName": "ama-metrics"}


def test_managed_prometheus_must_be_admitted_from_kube_system() -> None:
    (found,) = messages(reachability.metrics_scraper(scrape_fragment(admit="monitoring"), {}))
    assert found == (
        "sm: network: 'sm' is scraped by Azure Managed Prometheus (ama-metrics) from namespace 'kube-system', but the "
        "NetworkPolicies guarding port 8000 of 'vllm' ('np-deny', 'np-metrics') admit no traffic from it, so no "
        "metrics arrive (autoscaling and SLO alerts go blind); add an ingress rule from namespaceSelector "
        "kubernetes.io/metadata.name=kube-system and podSelector rsName=ama-metrics on port 8000.")
    assert reachability.metrics_scraper(scrape_fragment(admit="kube-system", pods=AMA), {}) == []


def test_managed_prometheus_admitted_as_all_of_kube_system_fails() -> None:
    # Every add-on in kube-system (CSI drivers, konnectivity, KEDA...) would reach the metrics port.
    (found,) = messages(reachability.metrics_scraper(scrape_fragment(admit="kube-system"), {}))
    assert found == (
        "sm: network: 'np-metrics' admit every pod of 'kube-system' to port 8000 of 'vllm', not only Azure Managed "
        "Prometheus (ama-metrics); name its pods: namespaceSelector kubernetes.io/metadata.name=kube-system and "
        "podSelector rsName=ama-metrics.")


def test_managed_prometheus_pod_selector_must_match_the_addon_labels() -> None:
    # The DaemonSet's label, or the upstream chart's other labels, select no collector of ServiceMonitor targets.
    for wrong in ({"dsName": "ama-metrics-node"}, {"rsName": "ama-metrics-operator-targets"},
                  {"app.kubernetes.io/name": "ama-metrics"}):
        (found,) = messages(reachability.metrics_scraper(scrape_fragment(admit="kube-system", pods=wrong), {}))
        assert "admit no traffic from it" in found
        assert "podSelector rsName=ama-metrics on port 8000" in found


def test_in_cluster_prometheus_must_be_admitted_from_its_namespace() -> None:
    assert reachability.metrics_scraper(scrape_fragment(admit="monitoring", managed=False), {}) == []
    (found,) = messages(reachability.metrics_scraper(scrape_fragment(admit="kube-system", managed=False), {}))
    assert "scraped by Prometheus (monitoring) from namespace 'monitoring'" in found


def test_an_unguarded_or_wrong_port_policy_is_judged_by_its_port() -> None:
    plan = [r for r in scrape_fragment(admit="monitoring") if not r.name.startswith("np-")]
    assert reachability.metrics_scraper(plan, {}) == []  # no NetworkPolicy: everything is admitted
    wrong_port = copy.deepcopy(scrape_fragment(admit="kube-system", pods=AMA))
    wrong_port[-1].props["spec"]["ingress"][0]["ports"] = [{"port": 9090}]  # type: ignore[index]
    assert len(reachability.metrics_scraper(wrong_port, {})) == 1


VAULT = "azure-native:keyvault:Vault"


def vault_fragment(acls: dict[str, Any], *, service_endpoint: bool = False, public: str = "Enabled",
                   pe: bool = False, dns: bool = False) -> list[StackResource]:
    subnet_props: dict[str, Any] = {"subnetName": "aks", "virtualNetworkName": UNKNOWN}
    if service_endpoint:
        subnet_props["serviceEndpoints"] = [{"service": "Microsoft.KeyVault"}]
    plan = [r for r in cluster_fragment(ordered=True) if r.type != SUBNET]
    plan.append(res(SUBNET, "snet-aks", subnet_props, pdeps={"virtualNetworkName": [f"{VNET}::vnet"]}))
    rules_dep = [f"{SUBNET}::snet-aks"] if acls.get("virtualNetworkRules") else []
    plan.append(res(VAULT, "kv", {"vaultName": "slm-kv", "properties": {"publicNetworkAccess": public,
                                                                         "networkAcls": acls}},
                    pdeps={"properties": rules_dep}))
    plan += secrets_fragment(role="Key Vault Secrets User")[1:]
    if pe:
        plan.append(res("azure-native:network:PrivateEndpoint", "kv-pe", {"privateLinkServiceConnections": [
            {"privateLinkServiceId": UNKNOWN, "groupIds": ["vault"]}]},
            pdeps={"privateLinkServiceConnections": [f"{VAULT}::kv"]}))
    if dns:
        zone = "azure-native:privatedns:PrivateZone"
        plan += [res(zone, "dns-vault", {"privateZoneName": "privatelink.vaultcore.azure.net"}),
                 res("azure-native:privatedns:VirtualNetworkLink", "dns-vault-link", {"privateZoneName": UNKNOWN},
                     pdeps={"privateZoneName": [f"{zone}::dns-vault"], "virtualNetwork": [f"{VNET}::vnet"]}),
                 res("azure-native:network:PrivateDnsZoneGroup", "kv-pe-dns", {"privateDnsZoneConfigs": [
                     {"privateDnsZoneId": UNKNOWN}]}, pdeps={"privateEndpointName": [
                         "azure-native:network:PrivateEndpoint::kv-pe"], "privateDnsZoneConfigs": [f"{zone}::dns-vault"]})]
    return plan


def test_a_deny_firewall_without_a_path_for_the_cluster_is_refused() -> None:
    (found,) = messages(reachability.firewalled_data(vault_fragment(
        {"defaultAction": "Deny", "ipRules": [{"value": "203.0.113.0/24"}]}), {}))
    assert found.startswith("kv: network: the CSI driver for 'spc' on 'aks' calls 'kv', but its firewall denies by "
                            "default and admits neither the cluster's subnet nor a private endpoint")
    assert "virtual-network rule for subnet 'snet-aks' with the Microsoft.KeyVault service endpoint" in found


def test_a_vnet_rule_needs_the_service_endpoint_on_the_subnet() -> None:
    rule = {"defaultAction": "Deny", "virtualNetworkRules": [{"id": UNKNOWN}]}
    assert len(reachability.firewalled_data(vault_fragment(rule), {})) == 1
    assert reachability.firewalled_data(vault_fragment(rule, service_endpoint=True), {}) == []
    assert reachability.firewalled_data(vault_fragment({"defaultAction": "Allow"}), {}) == []


def test_a_private_endpoint_needs_its_dns_zone_linked_to_the_cluster_vnet() -> None:
    deny = {"defaultAction": "Deny"}
    (no_dns,) = messages(reachability.firewalled_data(vault_fragment(deny, public="Disabled", pe=True), {}))
    assert "no PrivateDnsZoneGroup on 'kv-pe' registers it in privatelink.vaultcore.azure.net" in no_dns
    assert reachability.firewalled_data(vault_fragment(deny, public="Disabled", pe=True, dns=True), {}) == []
    assert reachability.private_dns(vault_fragment(deny, public="Disabled", pe=True, dns=True), {}) == []


def test_a_private_iot_hub_needs_an_endpoint_and_the_azure_devices_zone() -> None:
    hub = res("azure-native:iothub:IotHubResource", "edge-hub", {"properties": {"publicNetworkAccess": "Disabled"}})
    (found,) = messages(reachability.private_dns([hub], {}))
    assert found == ("edge-hub: publicNetworkAccess: found 'Disabled' on 'edge-hub' but no private endpoint (group "
                     "'iotHub') targets it; add an azure-native:network:PrivateEndpoint with privateLinkServiceId its "
                     "id and a DNS zone group for privatelink.azure-devices.net; otherwise no client can resolve or "
                     "reach it.")
    public = res("azure-native:iothub:IotHubResource", "edge-hub", {"properties": {"publicNetworkAccess": "Enabled"}})
    assert reachability.private_dns([public], {}) == []
