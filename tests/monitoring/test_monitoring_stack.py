"""MonitoringStack under the SDK mock monitor, in both modes (recorded wire-form registrations)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest

from components._standard import ROLE_DEFINITION_IDS, Lock, RoleAssignment
from components.monitoring.rules import AZURE_SEVERITY, iso8601
from components.monitoring.spec import AlertReceiver, AlertRouting, ReceiverKind
from components.monitoring_stack import MonitoringStack, MonitoringStackArgs
from slmctl.recorder import SECRET_SIG, Recording, Registration, record
from stacks.monitoring import azure_target, monitoring_args
from stacks.settings import EnvironmentSettings
from tests.monitoring.support import FakeWorkload, make_settings, rule_groups_for, workloads_for

PASSWORD = "correct-horse-battery-staple"  # a stand-in test secret
TYPE = "slm:monitoring:MonitoringStack"


def _with_mode(settings: EnvironmentSettings, mode: str) -> EnvironmentSettings:
    return settings.model_copy(update={"monitoring": settings.monitoring.model_copy(update={"mode": mode})})


AZURE_IDS: dict[str, Any] = {
    "resource_group_name": "slmdev-rg", "subscription_id": "00000000-0000-0000-0000-000000000000",
    "log_analytics_workspace_id": "/subscriptions/0/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/law",
    "cluster_id": "/subscriptions/0/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks",
    "cluster_name": "slmdev-aks", "azure_monitor_workspace_id": None, "private_endpoint_subnet_id": None,
    "private_dns_zone_ids": {},
}


def _args(settings: EnvironmentSettings, *, workloads: Any = None, **overrides: Any) -> MonitoringStackArgs:
    """The args ``stacks/platform.py`` would pass for ``settings`` (Azure ids above), then ``overrides``."""
    azure = azure_target(settings, **AZURE_IDS) if settings.uses_azure else None
    args = monitoring_args(settings, azure=azure,
                           workloads=workloads_for(settings) if workloads is None else workloads)
    return dataclasses.replace(args, **overrides)


def _record(settings: EnvironmentSettings, **overrides: Any) -> Recording:
    def program() -> None:
        overrides.setdefault("kube_provider", k8s.Provider("k8s"))
        overrides.setdefault("grafana_admin_password", pulumi.Output.secret(PASSWORD))
        stack = MonitoringStack("observability", _args(settings, **overrides))
        pulumi.export("grafana_endpoint", stack.grafana_endpoint)
        pulumi.export("azure_monitor_workspace_id", stack.azure_monitor_workspace_id)
        pulumi.export("prometheus_rule_names", stack.prometheus_rule_names)
    return record(program)


def _one(rec: Recording, type_token: str, name: str) -> Registration:
    (reg,) = [r for r in rec.by_type(type_token) if r.name == name]
    return reg


def _release_values(rec: Recording, name: str) -> dict[str, Any]:
    return _one(rec, "kubernetes:helm.sh/v3:Release", name).inputs["values"]


@pytest.fixture(scope="module")
def in_cluster() -> Recording:
    return _record(_with_mode(make_settings(), "in-cluster"))


def _prod_settings() -> EnvironmentSettings:
    return make_settings(tier="prod", cluster={
        "private_api_server": True,
        "pools": {"gput4": {"vm_size": "Standard_NC4as_T4_v3", "max_count": 2},
                  "cpu": {"vm_size": "Standard_D8ds_v5", "max_count": 3}}})


@pytest.fixture(scope="module")
def managed_prod() -> Recording:
    settings = _prod_settings()
    assert settings.monitoring.mode == "azure-managed"
    return _record(settings, lock=Lock())


class TestInClusterDefaults:
    def test_every_child_is_parented_to_the_component(self, in_cluster: Recording) -> None:
        children = [r for r in in_cluster.registrations if r.type not in (TYPE, "pulumi:providers:kubernetes")]
        assert children
        assert all(r.parent is not None and f"{TYPE}::observability" in r.parent for r in children)

    def test_kube_prometheus_stack_is_pinned(self, in_cluster: Recording) -> None:
        release = _one(in_cluster, "kubernetes:helm.sh/v3:Release", "observability-kps").inputs
        assert release["chart"] == "kube-prometheus-stack"
        assert release["version"] == "81.4.3"  # 81.4.5 never existed (issue 17, defect 11)
        assert release["repositoryOpts"]["repo"] == "https://prometheus-community.github.io/helm-charts"

    def test_helm_values_never_carry_the_password(self, in_cluster: Recording) -> None:
        for release in in_cluster.by_type("kubernetes:helm.sh/v3:Release"):
            text = json.dumps(release.inputs)
            assert PASSWORD not in text
            assert SECRET_SIG not in text
            assert "adminPassword" not in text

    def test_grafana_reads_its_admin_from_a_secret(self, in_cluster: Recording) -> None:
        grafana = _release_values(in_cluster, "observability-kps")["grafana"]
        assert grafana["admin"] == {"existingSecret": "grafana-admin", "userKey": "admin-user",
                                    "passwordKey": "admin-password"}
        secret = _one(in_cluster, "kubernetes:core/v1:Secret", "observability-grafana-admin").inputs
        assert secret["metadata"]["name"] == "grafana-admin"
        assert SECRET_SIG in secret["stringData"]  # the whole stringData is secret on the wire
        assert secret["stringData"]["value"]["admin-password"] == PASSWORD

    def test_uis_are_cluster_ip_without_ingress_and_anonymous_access_is_off(self, in_cluster: Recording) -> None:
        values = _release_values(in_cluster, "observability-kps")
        for ui in ("grafana", "prometheus", "alertmanager"):
            assert values[ui]["service"]["type"] == "ClusterIP", ui
            assert values[ui]["ingress"]["enabled"] is False, ui
        assert values["grafana"]["grafana.ini"]["auth.anonymous"]["enabled"] is False

    def test_prometheus_selects_monitors_and_rules_beyond_helm_labels(self, in_cluster: Recording) -> None:
        spec = _release_values(in_cluster, "observability-kps")["prometheus"]["prometheusSpec"]
        for key in ("serviceMonitorSelectorNilUsesHelmValues", "podMonitorSelectorNilUsesHelmValues",
                    "ruleSelectorNilUsesHelmValues"):
            assert spec[key] is False, key
        assert spec["scrapeInterval"] == "30s"
        assert spec["retention"] == "30d"

    def test_grafana_sidecar_loads_labelled_dashboards(self, in_cluster: Recording) -> None:
        sidecar = _release_values(in_cluster, "observability-kps")["grafana"]["sidecar"]["dashboards"]
        assert sidecar == {"enabled": True, "label": "grafana_dashboard", "labelValue": "1"}
        maps = in_cluster.by_type("kubernetes:core/v1:ConfigMap")
        assert {m.name for m in maps} == {"observability-dashboard-slm-serving", "observability-dashboard-slm-gpu"}
        for cm in maps:
            assert cm.inputs["metadata"]["labels"]["grafana_dashboard"] == "1"
            (board,) = cm.inputs["data"].values()
            assert json.loads(board)["panels"]

    def test_service_monitor_per_scraped_workload_and_none_for_ollama(self, in_cluster: Recording) -> None:
        monitors = {r.name: r.inputs for r in in_cluster.by_type("kubernetes:monitoring.coreos.com/v1:ServiceMonitor")}
        assert set(monitors) == {"observability-sm-phi-vllm", "observability-sm-phi-onnx", "observability-sm-dcgm"}
        vllm = monitors["observability-sm-phi-vllm"]
        assert vllm["metadata"]["namespace"] == "serving"
        assert vllm["spec"]["selector"]["matchLabels"] == {  # the Service's labels: no pod-only ones
            "app.kubernetes.io/component": "inference", "app.kubernetes.io/instance": "phi-vllm",
            "app.kubernetes.io/name": "vllm"}
        assert vllm["spec"]["endpoints"] == [{"targetPort": 8000, "path": "/metrics", "interval": "30s",
                                              "scheme": "http"}]
        assert "ollama" not in json.dumps(monitors)

    def test_dcgm_exporter_release_on_gpu_stacks(self, in_cluster: Recording) -> None:
        release = _one(in_cluster, "kubernetes:helm.sh/v3:Release", "observability-dcgm").inputs
        assert release["chart"] == "dcgm-exporter"
        assert release["repositoryOpts"]["repo"] == "https://nvidia.github.io/dcgm-exporter/helm-charts"
        assert release["values"]["serviceMonitor"] == {"enabled": False}
        assert {"key": "sku", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"} in release["values"]["tolerations"]

    def test_prometheus_rules_are_the_generated_groups(self, in_cluster: Recording) -> None:
        groups = rule_groups_for(make_settings())
        rules = {r.inputs["metadata"]["name"]: r.inputs["spec"]
                 for r in in_cluster.by_type("kubernetes:monitoring.coreos.com/v1:PrometheusRule")}
        assert set(rules) == {g.name for g in groups}
        for group in groups:
            (spec_group,) = rules[group.name]["groups"]
            assert [r["expr"] for r in spec_group["rules"]] == [r.expr for r in group.rules]
        assert in_cluster.outputs["prometheus_rule_names"] == [g.name for g in groups]

    def test_outputs(self, in_cluster: Recording) -> None:
        assert in_cluster.outputs["grafana_endpoint"] == "http://kps-grafana.monitoring.svc.cluster.local"
        assert in_cluster.outputs.get("azure_monitor_workspace_id") is None
        assert not in_cluster.by_type("azure-native:dashboard:Grafana")

    def test_audit_logs_are_left_to_the_resource_owners(self, in_cluster: Recording) -> None:
        # InferenceCluster and ModelRegistry create the audit settings of what they own; a second
        # setting to the same workspace would be rejected by Azure (slm-conflict-diagnostic-sinks).
        assert not in_cluster.by_type("azure-native:monitor:DiagnosticSetting")
        (ci,) = in_cluster.by_type("azure-native:monitor:DataCollectionRule")
        assert ci.inputs["destinations"]["logAnalytics"][0]["workspaceResourceId"].endswith("/workspaces/law")
        assert not in_cluster.by_type("azure-native:operationalinsights:Workspace")  # never created here


class TestInClusterVariants:
    def test_no_gpu_no_dcgm_exporter(self) -> None:
        data = make_settings().model_dump()
        data["cluster"]["pools"].pop("gput4")
        data["deployments"].pop("phi-vllm")
        rec = _record(_with_mode(EnvironmentSettings.model_validate(data), "in-cluster"))
        assert [r.name for r in rec.by_type("kubernetes:helm.sh/v3:Release")] == ["observability-kps"]
        assert "observability-sm-dcgm" not in {r.name for r in rec.by_type("kubernetes:monitoring.coreos.com/v1:ServiceMonitor")}

    def test_gpu_operator_clusters_reuse_the_operators_exporter(self) -> None:
        settings = make_settings(cluster={"gpu_driver": "gpu-operator", "authorized_ip_ranges": ["203.0.113.0/24"], "pools": {
            "gput4": {"vm_size": "Standard_NC4as_T4_v3"}, "cpu": {"vm_size": "Standard_D8ds_v5"}}})
        rec = _record(_with_mode(settings, "in-cluster"))
        assert "observability-dcgm" not in {r.name for r in rec.by_type("kubernetes:helm.sh/v3:Release")}
        sm = _one(rec, "kubernetes:monitoring.coreos.com/v1:ServiceMonitor", "observability-sm-dcgm").inputs
        assert sm["spec"]["selector"] == {"matchLabels": {"app": "nvidia-dcgm-exporter"}}

    def test_local_tier_creates_nothing_in_azure(self) -> None:
        settings = make_settings(tier="local", cluster={},
                                 deployments={"phi": {"target": "vllm", "model": "phi-4-mini"}})
        rec = _record(settings)
        assert not [r for r in rec.registrations if r.type.startswith("azure-native:")]
        values = _release_values(rec, "observability-kps")
        assert "storageSpec" not in values["prometheus"]["prometheusSpec"]


class TestManaged:
    def test_no_in_cluster_prometheus(self, managed_prod: Recording) -> None:
        assert [r.name for r in managed_prod.by_type("kubernetes:helm.sh/v3:Release")] == ["observability-dcgm"]
        assert not managed_prod.by_type("kubernetes:monitoring.coreos.com/v1:PrometheusRule")

    def test_rule_groups_match_the_in_cluster_rules_one_to_one(self, managed_prod: Recording) -> None:
        groups = {f"slmdev-{g.name}": g for g in rule_groups_for(_prod_settings())}
        azure = {r.inputs["ruleGroupName"]: r.inputs
                 for r in managed_prod.by_type("azure-native:alertsmanagement:PrometheusRuleGroup")
                 if not r.name.startswith("observability-default-")}  # Microsoft's (test_default_recording_rules)
        assert set(azure) == set(groups)
        for name, group in groups.items():
            wire = azure[name]
            assert wire["interval"] == "PT1M"
            assert wire["clusterName"] == "slmdev-aks"
            assert len(wire["scopes"]) == 1, "the rule-group API accepts one scope: the workspace"
            assert [r["expression"] for r in wire["rules"]] == [r.expr for r in group.rules]
            for rule, az in zip(group.rules, wire["rules"], strict=True):
                if rule.alert:
                    assert az["alert"] == rule.alert
                    assert az["severity"] == AZURE_SEVERITY[rule.labels["severity"]]
                    assert az.get("for") == (iso8601(rule.for_) if rule.for_ else None)  # wire name of for_
                else:
                    assert az["record"] == rule.record
        assert managed_prod.outputs["prometheus_rule_names"] == list(groups)

    def test_grafana_is_private_in_prod_without_api_keys(self, managed_prod: Recording) -> None:
        grafana = _one(managed_prod, "azure-native:dashboard:Grafana", "observability-grafana").inputs
        assert grafana["properties"]["publicNetworkAccess"] == "Disabled"
        assert grafana["properties"]["apiKey"] == "Disabled"
        assert grafana["identity"]["type"] == "SystemAssigned"
        integrations = grafana["properties"]["grafanaIntegrations"]["azureMonitorWorkspaceIntegrations"]
        assert len(integrations) == 1
        assert managed_prod.outputs["grafana_endpoint"].startswith("https://")

    def test_grafana_identity_gets_monitoring_reader_and_data_reader(self, managed_prod: Recording) -> None:
        grants = {r.name: r.inputs for r in managed_prod.by_type("azure-native:authorization:RoleAssignment")}
        reader = grants["observability-grafana-ra-monitoring-reader"]
        data = grants["observability-amw-ra-grafana-data-reader"]
        assert reader["roleDefinitionId"].endswith(ROLE_DEFINITION_IDS["Monitoring Reader"])
        assert reader["scope"].endswith("/resourceGroups/slmdev-rg")
        assert data["roleDefinitionId"].endswith(ROLE_DEFINITION_IDS["Monitoring Data Reader"])
        assert data["scope"].endswith("azureMonitorWorkspaces/slmdev-amw")
        assert reader["principalId"] == data["principalId"]
        assert reader["principalId"]

    def test_prometheus_data_collection_for_the_cluster(self, managed_prod: Recording) -> None:
        dcr = _one(managed_prod, "azure-native:monitor:DataCollectionRule", "observability-prom-dcr").inputs
        assert dcr["dataSources"]["prometheusForwarder"][0]["streams"] == ["Microsoft-PrometheusMetrics"]
        assert dcr["destinations"]["monitoringAccounts"][0]["accountResourceId"].endswith("slmdev-amw")
        associations = {r.name: r.inputs for r in managed_prod.by_type("azure-native:monitor:DataCollectionRuleAssociation")}
        assert associations["observability-prom-dcra"]["resourceUri"].endswith("managedClusters/aks")
        assert associations["observability-prom-dcea"]["associationName"] == "configurationAccessEndpoint"

    def test_azure_monitor_scrapes_workloads_through_azmonitoring_service_monitors(self, managed_prod: Recording) -> None:
        monitors = {r.name: r.inputs for r in managed_prod.by_type("kubernetes:azmonitoring.coreos.com/v1:ServiceMonitor")}
        assert set(monitors) == {"observability-sm-phi-vllm", "observability-sm-phi-onnx", "observability-sm-dcgm"}
        assert monitors["observability-sm-phi-vllm"]["spec"]["labelLimit"] == 63

    def test_lock_covers_workspace_and_grafana(self, managed_prod: Recording) -> None:
        locks = {r.name for r in managed_prod.by_type("azure-native:authorization:ManagementLockByScope")}
        assert locks == {"observability-amw-lock", "observability-grafana-lock"}

    def test_staging_grafana_is_reachable_publicly(self) -> None:
        rec = _record(make_settings(tier="staging"))
        grafana = _one(rec, "azure-native:dashboard:Grafana", "observability-grafana").inputs
        assert grafana["properties"]["publicNetworkAccess"] == "Enabled"
        assert grafana["properties"]["apiKey"] == "Disabled"

    def test_extra_role_assignments_are_scoped_to_grafana(self) -> None:
        rec = _record(make_settings(tier="staging"), role_assignments={
            "ops": RoleAssignment(role="Grafana Admin", principal_id="ops-group", principal_type="Group")})
        grant = _one(rec, "azure-native:authorization:RoleAssignment", "observability-ra-ops").inputs
        assert grant["scope"].endswith("/slmdev-grafana")


class TestErrors:
    def _args(self, settings: EnvironmentSettings, **overrides: Any) -> MonitoringStackArgs:
        overrides.setdefault("grafana_admin_password", "x")
        return _args(settings, **overrides)

    def test_ollama_must_not_be_scraped(self) -> None:
        settings = make_settings()
        workloads = workloads_for(settings)
        workloads["phi-ollama"] = FakeWorkload(deployment="phi-ollama", engine="ollama", metrics_path="/metrics")
        with pytest.raises(ValueError, match=r"Ollama has no Prometheus endpoint \(ollama#3144"):
            MonitoringStack("m", self._args(settings, workloads=workloads))

    def test_served_model_name_must_be_the_deployment_name(self) -> None:
        settings = make_settings()
        workloads = workloads_for(settings)
        workloads["phi-vllm"] = FakeWorkload(deployment="phi-vllm", engine="vllm", served_model_name="phi-4-mini")
        with pytest.raises(ValueError, match="--served-model-name phi-vllm"):
            MonitoringStack("m", self._args(settings, workloads=workloads))

    def test_in_cluster_grafana_needs_a_password(self) -> None:
        with pytest.raises(ValueError, match="grafana_admin_password: required"):
            MonitoringStack("m", self._args(make_settings(), workloads={}, grafana_admin_password=None))

    def test_managed_mode_needs_the_azure_side(self) -> None:
        with pytest.raises(ValueError, match="azure: required in azure-managed mode"):
            MonitoringStack("m", self._args(make_settings(tier="staging"), workloads={}, azure=None))

    def test_unknown_workload_names_the_models(self) -> None:
        settings = make_settings()
        with pytest.raises(ValueError, match=r"workloads\.ghost: not a model of models; use one of: phi-ollama"):
            MonitoringStack("m", self._args(settings, workloads={"ghost": FakeWorkload(deployment="ghost", engine="vllm")}))

    def test_unknown_engine_is_named(self) -> None:
        args = self._args(make_settings(), workloads={})
        models = {**args.models, "tgi": dataclasses.replace(args.models["phi-vllm"], engine="tgi")}
        with pytest.raises(ValueError, match=r"models\.tgi\.engine: 'tgi' is not one of vllm, ollama, onnx-genai"):
            MonitoringStack("m", dataclasses.replace(args, models=models))

    def test_routes_name_known_receivers_and_their_secrets_are_passed(self) -> None:
        routing = AlertRouting(receivers={"chat": AlertReceiver(kind=ReceiverKind.WEBHOOK, secret="ns:hook")},
                               routes={"critical": ("chat", "pager")})
        with pytest.raises(ValueError, match=r"(?s)alerting\.routes\.critical: receiver 'pager' is not in "
                                             r"alerting\.receivers.*alert_secrets: the receivers read ns:hook"):
            MonitoringStack("m", self._args(make_settings(), workloads={}, alerting=routing))

    def test_errors_are_raised_before_anything_is_registered(self) -> None:
        def program() -> None:
            with pytest.raises(ValueError, match="azure: required"):
                MonitoringStack("m", self._args(make_settings(tier="staging"), workloads={}, azure=None))
        assert record(program).registrations == []


def test_inference_cluster_workloads_carry_what_monitoring_reads() -> None:
    from components.monitoring.spec import MonitoredWorkload
    from components.serving_workloads import ServingWorkload

    wanted = {f.name for f in dataclasses.fields(MonitoredWorkload)}
    assert wanted <= {f.name for f in dataclasses.fields(ServingWorkload)}
