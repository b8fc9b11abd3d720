"""Prometheus and Grafana for model serving: in-cluster or Azure managed, with one set of rules.

``MonitoringStack`` takes the environment settings and the serving workloads the ``InferenceCluster``
runs, and wires metrics, alerts, dashboards and logs for them. The alert and recording rules come
from ``components.monitoring.rules`` and are deployed unchanged in both modes (as ``PrometheusRule``
custom resources, or as Azure ``PrometheusRuleGroup``s), and proven by ``promtool test rules`` on
the files ``components.monitoring.render`` writes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, cast

import pulumi
import pulumi_kubernetes as k8s
import yaml
from pulumi_azure_native import alertsmanagement, dashboard, monitor

from components._standard import (
    PrivateEndpointConfig,
    RoleAssignment,
    StandardInterfaces,
    apply_diagnostic_settings,
    apply_lock,
    apply_private_endpoint,
    apply_role_assignments,
)
from components.monitoring import alerting
from components.monitoring import helm_values as hv
from components.monitoring.dashboards import build_dashboards
from components.monitoring.rules import (
    AZURE_SEVERITY_NAME,
    RuleGroup,
    build_rule_groups,
    has_gpu,
    to_azure_rule_group,
    to_prometheus_rule_spec,
)
from stacks.settings import EnvironmentSettings

PROMETHEUS_API: Final = "monitoring.coreos.com/v1"
AZURE_PROMETHEUS_API: Final = "azmonitoring.coreos.com/v1"
"""Azure Managed Prometheus (ama-metrics) reads only this group; same schema as the OSS CRDs."""
AZURE_LABEL_LIMITS: Final = {"labelLimit": 63, "labelNameLengthLimit": 511, "labelValueLengthLimit": 1023}
"""Limits Microsoft's PodMonitor/ServiceMonitor templates set so ama-metrics does not drop targets."""
PROMETHEUS_STREAM: Final = "Microsoft-PrometheusMetrics"
GRAFANA_PRIVATE_DNS_ZONE: Final = "privatelink.grafana.azure.com"
CONTAINER_INSIGHTS_STREAM: Final = "Microsoft-ContainerInsights-Group-Default"
POD_ONLY_LABELS: Final = frozenset({"azure.workload.identity/use"})
"""Labels the workload identity webhook reads on pods; Services do not carry them."""
PART_OF: Final = {"app.kubernetes.io/part-of": "slm-platform", "app.kubernetes.io/managed-by": "pulumi"}


class ServingWorkloadLike(Protocol):
    """What the monitoring stack needs to know about one serving workload.

    ``components.inference_cluster.ServingWorkload`` satisfies it; any object with these attributes
    does (so this module does not import the cluster component).
    """

    @property
    def deployment(self) -> str: ...
    @property
    def engine(self) -> str: ...
    @property
    def namespace(self) -> str: ...
    @property
    def service_name(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def metrics_path(self) -> str | None: ...
    @property
    def served_model_name(self) -> str: ...
    @property
    def pod_labels(self) -> Mapping[str, str]: ...
    @property
    def gpu(self) -> bool: ...


@dataclass(frozen=True, kw_only=True)
class MonitoringStackArgs(StandardInterfaces):
    """Inputs of ``MonitoringStack``.

    The standard interfaces apply to the primary Azure resource, Managed Grafana (``lock`` also to
    the Azure Monitor workspace). In-cluster mode has no Azure resource: ``lock`` is ignored there,
    and ``role_assignments`` / ``diagnostic_settings`` are rejected rather than silently dropped.
    """

    settings: EnvironmentSettings
    location: str
    resource_group_name: pulumi.Input[str] | None = None
    """Default: none — only valid on the ``local`` tier, where nothing is created in Azure."""
    subscription_id: pulumi.Input[str] | None = None
    """Default: none. Required in azure-managed mode (role assignments for Grafana's identity)."""
    log_analytics_workspace_id: pulumi.Input[str] | None = None
    """Default: none — only valid on ``local``. The shared workspace (created by the platform with
    the tier's retention) that diagnostic settings and Container Insights send to."""
    cluster_id: pulumi.Input[str] | None = None
    """Default: none — no cluster-side diagnostics or data collection (``local``)."""
    cluster_name: pulumi.Input[str] | None = None
    """Default: none. The AKS cluster name Azure rule groups filter on (``cluster`` label)."""
    kube_provider: k8s.Provider | None = None
    """Default: none. Required whenever Kubernetes objects are created (in-cluster mode, scraping
    of workloads, or the DCGM exporter)."""
    workloads: Mapping[str, ServingWorkloadLike] = field(default_factory=dict[str, ServingWorkloadLike])
    """Serving workloads by deployment name (from ``InferenceCluster``). Default: none scraped."""
    grafana_admin_password: pulumi.Input[str] | None = None
    """Default: none. Required in in-cluster mode with Grafana enabled; stored only in a Secret."""
    namespace: str = "monitoring"
    """Default: ``monitoring`` — where kube-prometheus-stack, the DCGM exporter, rules and
    dashboards live."""
    private_endpoint_subnet_id: pulumi.Input[str] | None = None
    """Default: none. Given, Managed Grafana gets a private endpoint there (group ``grafana``) — the
    only way to reach it when its public network access is disabled (prod)."""
    private_dns_zone_ids: Mapping[str, pulumi.Input[str]] = field(default_factory=dict[str, pulumi.Input[str]])
    """Zone ids by zone name; ``privatelink.grafana.azure.com`` resolves the Grafana endpoint."""
    alert_secrets: Mapping[str, pulumi.Input[str]] = field(default_factory=dict[str, pulumi.Input[str]])
    """The receivers' secret config values by ``namespace:key`` (``MonitoringSettings.secret_keys``):
    webhook URLs, routing keys, the SMTP password. Pass secret Outputs; they only reach a Secret
    (in-cluster) or the action groups' webhook URIs (Azure)."""
    azure_monitor_workspace_id: pulumi.Input[str] | None = None
    """Default: none — in azure-managed mode the component creates the Azure Monitor workspace.
    Pass a shared one when something built before this component (the cluster's KEDA triggers)
    must query it; the owner of a shared workspace also owns its lock."""


def configuration_errors(args: MonitoringStackArgs) -> list[str]:
    """Everything wrong with ``args``, as messages naming the field and the fix (empty when valid)."""
    settings = args.settings
    mode = settings.monitoring.mode
    errors: list[str] = []
    aks = settings.aks_deployments()
    if mode == "azure-managed":
        if not settings.uses_azure:
            errors.append("monitoring.mode: 'azure-managed' needs Azure; the local tier uses 'in-cluster'")
        for attr in ("resource_group_name", "subscription_id", "cluster_id", "cluster_name"):
            if getattr(args, attr) is None:
                errors.append(f"{attr}: required in azure-managed mode (monitoring.mode)")
    else:
        if args.kube_provider is None:
            errors.append("kube_provider: required in in-cluster mode (kube-prometheus-stack is a Helm release)")
        if settings.monitoring.grafana_enabled and args.grafana_admin_password is None:
            errors.append("grafana_admin_password: required when Grafana runs in-cluster; pass a secret "
                          "(pulumi config set --secret slm-platform:grafanaAdminPassword ...)")
        if args.role_assignments or args.diagnostic_settings:
            errors.append("role_assignments/diagnostic_settings: in-cluster mode has no Azure resource to "
                          "apply them to; remove them or use monitoring.mode 'azure-managed'")
    if settings.uses_azure and mode != "azure-managed" and args.resource_group_name is None:
        errors.append("resource_group_name: required on Azure tiers (the Container Insights data "
                      "collection rule lives there)")
    if settings.uses_azure and args.log_analytics_workspace_id is None:
        errors.append("log_analytics_workspace_id: required on Azure tiers (audit logs and Container "
                      "Insights go there); pass the platform's shared workspace id")
    missing = [k for k in settings.monitoring.secret_keys() if k not in args.alert_secrets]
    if missing:
        errors.append(f"alert_secrets: the receivers read {', '.join(missing)}; pass each as a secret "
                      "(pulumi config set --secret <key> <value>)")
    if args.workloads and args.kube_provider is None:
        errors.append("kube_provider: required to create scrape configurations for the workloads")
    for key, w in sorted(args.workloads.items()):
        path = f"workloads.{key}"
        if key not in aks:
            errors.append(f"{path}: not an AKS deployment of the settings; use one of: {', '.join(sorted(aks))}")
            continue
        if w.engine != aks[key].target:
            errors.append(f"{path}.engine: {w.engine!r} but deployments.{key}.target is {aks[key].target!r}")
        if w.engine == "ollama" and w.metrics_path is not None:
            errors.append(f"{path}.metrics_path: Ollama has no Prometheus endpoint (ollama#3144, seed "
                          "defect D4); set it to None")
        if w.metrics_path is not None and w.served_model_name != key:
            errors.append(f"{path}.served_model_name: {w.served_model_name!r}; the alert rules select "
                          f'model_name="{key}", so serve it with --served-model-name {key}')
    return errors


def grafana_people(settings: EnvironmentSettings) -> dict[str, RoleAssignment]:
    """Grafana Admin / Viewer for the settings' Entra groups: Managed Grafana has no local users."""
    out = {f"admins-{i}": RoleAssignment(role="Grafana Admin", principal_id=g, principal_type="Group",
                                         description="Managed Grafana admins (settings)")
           for i, g in enumerate(settings.grafana_admin_groups())}
    out |= {f"viewers-{i}": RoleAssignment(role="Grafana Viewer", principal_id=str(g), principal_type="Group",
                                           description="Managed Grafana viewers (settings)")
            for i, g in enumerate(settings.monitoring.grafana_viewer_group_object_ids)}
    return out


class MonitoringStack(pulumi.ComponentResource):
    """Metrics, alerts, dashboards and logs for model serving.

    Creates, in **in-cluster** mode (``settings.monitoring.mode``): a ``monitoring`` Namespace, the
    Grafana admin Secret, kube-prometheus-stack (pinned ``helm.v3.Release``, typed values), the DCGM
    exporter when the stack has GPUs and AKS manages the drivers, one ``ServiceMonitor`` per serving
    workload with a metrics endpoint (never Ollama, D4), one ``PrometheusRule`` per rule group, and
    one dashboard ConfigMap per dashboard for the Grafana sidecar.

    In **azure-managed** mode: an Azure Monitor workspace, a data collection endpoint and rule
    (Prometheus forwarder) associated with the cluster, Managed Grafana (system identity, API keys
    off, public access off in prod) with *Monitoring Reader* on the resource group and *Monitoring
    Data Reader* on the workspace, one ``PrometheusRuleGroup`` per rule group (the same rules), the
    DCGM exporter and ``azmonitoring.coreos.com/v1`` ServiceMonitors that ama-metrics scrapes.

    On Azure tiers, both modes: a Container Insights data collection rule for the cluster into the
    shared Log Analytics workspace. Audit diagnostic settings of the cluster, the Foundry account and
    the Key Vault belong to the components that own those resources (``InferenceCluster``,
    ``ModelRegistry``): Azure rejects a second setting sending the same category of one resource to
    the same workspace (policy ``slm-conflict-diagnostic-sinks``).
    """

    rule_groups: tuple[RuleGroup, ...]
    """The rule groups deployed (the same ones ``render_monitoring`` writes for promtool)."""
    grafana_endpoint: pulumi.Output[str] | None
    azure_monitor_workspace_id: pulumi.Output[str] | None
    prometheus_rule_names: list[str]
    """Names of the PrometheusRule objects (in-cluster) or Azure rule groups (managed)."""
    grafana: dashboard.Grafana | None
    """Escape hatch: Managed Grafana (azure-managed mode)."""
    release: k8s.helm.v3.Release | None
    """Escape hatch: the kube-prometheus-stack release (in-cluster mode)."""

    def __init__(self, name: str, args: MonitoringStackArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        errors = configuration_errors(args)  # before anything is registered
        if errors:
            msg = f"MonitoringStack {name!r}:\n" + "\n".join(errors)
            raise ValueError(msg)
        super().__init__("slm:monitoring:MonitoringStack", name, None, opts)
        self._name = name
        self._args = args
        settings = args.settings
        self._tags = {**settings.azure_tags(), **args.tags}
        self.rule_groups = build_rule_groups(settings)
        self.grafana_endpoint = None
        self.azure_monitor_workspace_id = None
        self.prometheus_rule_names = []
        self.grafana = None
        self.release = None
        self._namespace: k8s.core.v1.Namespace | None = None

        if settings.monitoring.mode == "in-cluster":
            self._in_cluster()
        else:
            self._azure_managed()
        if settings.uses_azure:
            self._logs()

        self.register_outputs({
            "grafana_endpoint": self.grafana_endpoint,
            "azure_monitor_workspace_id": self.azure_monitor_workspace_id,
            "prometheus_rule_names": self.prometheus_rule_names,
        })

    # ------------------------------------------------------------------ kubernetes helpers

    def _k8s(self, *depends_on: pulumi.Resource) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, provider=self._args.kube_provider,
                                      depends_on=list(depends_on))

    def _ensure_namespace(self) -> k8s.core.v1.Namespace:
        if self._namespace is None:
            self._namespace = k8s.core.v1.Namespace(
                f"{self._name}-ns",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=self._args.namespace, labels={
                    **PART_OF,
                    # node-exporter and the DCGM exporter need host access (hostNetwork/hostPath,
                    # GPU devices): the namespace is privileged, so nothing else is deployed here.
                    "pod-security.kubernetes.io/enforce": "privileged",
                    "pod-security.kubernetes.io/warn": "baseline",
                    "pod-security.kubernetes.io/audit": "baseline",
                }),
                opts=self._k8s(),
            )
        return self._namespace

    def _dcgm_exporter(self, api_version: str, *depends_on: pulumi.Resource) -> None:
        """GPU telemetry: our DCGM exporter release with AKS-managed drivers, else the GPU Operator's."""
        settings = self._args.settings
        if not has_gpu(settings):
            return
        interval = f"{settings.monitoring.scrape_interval_seconds}s"
        extra = AZURE_LABEL_LIMITS if api_version == AZURE_PROMETHEUS_API else {}
        if settings.cluster.gpu_driver == "gpu-operator":
            # The GPU Operator runs its own dcgm-exporter (Service label app=nvidia-dcgm-exporter,
            # port gpu-metrics) in its namespace; a second exporter would fight it for the GPUs.
            selector: dict[str, Any] = {"matchLabels": {"app": "nvidia-dcgm-exporter"}}
            endpoint = {"port": "gpu-metrics", "path": "/metrics", "interval": interval}
            namespaces: dict[str, Any] = {"any": True}
            monitor_namespace = "kube-system"  # exists in every cluster, whatever the mode
            deps: list[pulumi.Resource] = list(depends_on)
        else:
            ns = self._ensure_namespace()
            release = k8s.helm.v3.Release(
                f"{self._name}-dcgm",
                name=hv.DCGM_EXPORTER_RELEASE,
                chart=hv.DCGM_EXPORTER_CHART,
                version=hv.DCGM_EXPORTER_VERSION,
                repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=hv.DCGM_EXPORTER_REPO),
                namespace=self._args.namespace,
                values=hv.DcgmExporterValues(aks_gpu_nodes_only=settings.uses_azure).to_helm(),
                opts=self._k8s(ns, *depends_on),
            )
            selector = {"matchLabels": dict(hv.DCGM_EXPORTER_SERVICE_LABELS)}
            endpoint = {"port": hv.DCGM_EXPORTER_PORT_NAME, "path": "/metrics", "interval": interval}
            namespaces = {"matchNames": [self._args.namespace]}
            monitor_namespace = self._args.namespace
            deps = [release, *depends_on]
        k8s.apiextensions.CustomResource(
            f"{self._name}-sm-dcgm",
            api_version=api_version,
            kind="ServiceMonitor",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="slm-dcgm-exporter", namespace=monitor_namespace,
                                                labels=PART_OF),
            spec={"selector": selector, "namespaceSelector": namespaces, "endpoints": [endpoint], **extra},
            opts=self._k8s(*deps),
        )

    def _workload_monitors(self, api_version: str, *depends_on: pulumi.Resource) -> None:
        """One ServiceMonitor per workload with a metrics path (Ollama has none: never scraped, D4)."""
        interval = f"{self._args.settings.monitoring.scrape_interval_seconds}s"
        extra = AZURE_LABEL_LIMITS if api_version == AZURE_PROMETHEUS_API else {}
        for key, w in sorted(self._args.workloads.items()):
            if w.metrics_path is None:
                continue
            k8s.apiextensions.CustomResource(
                f"{self._name}-sm-{key}",
                api_version=api_version,
                kind="ServiceMonitor",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=f"slm-{key}", namespace=w.namespace,
                                                    labels={**PART_OF, "slm.io/deployment": key}),
                spec={
                    # The workload's Service carries its pods' labels except the pod-only ones.
                    "selector": {"matchLabels": {k: v for k, v in sorted(w.pod_labels.items())
                                                 if k not in POD_ONLY_LABELS}},
                    "namespaceSelector": {"matchNames": [w.namespace]},
                    "endpoints": [{"targetPort": w.port, "path": w.metrics_path, "interval": interval,
                                   "scheme": "http"}],
                    **extra,
                },
                opts=self._k8s(*depends_on),
            )

    # ------------------------------------------------------------------ in-cluster

    def _in_cluster(self) -> None:
        args, settings, name = self._args, self._args.settings, self._name
        ns = self._ensure_namespace()
        secret_name = "grafana-admin"  # noqa: S105 (the Secret's name, not its value)
        deps: list[pulumi.Resource] = [ns]
        if settings.monitoring.grafana_enabled:
            assert args.grafana_admin_password is not None  # noqa: S101 (configuration_errors)
            secret = k8s.core.v1.Secret(
                f"{name}-grafana-admin",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=secret_name, namespace=args.namespace, labels=PART_OF),
                type="Opaque",
                string_data={hv.GRAFANA_ADMIN_USER_KEY: "admin",
                             hv.GRAFANA_ADMIN_PASSWORD_KEY: pulumi.Output.secret(args.grafana_admin_password)},
                opts=self._k8s(ns),
            )
            deps.append(secret)
        am_secret = self._alertmanager_secret(ns)
        if am_secret is not None:
            deps.append(am_secret)
        values = hv.KubePrometheusStackValues(
            grafana_admin_secret=secret_name,
            alertmanager_config_secret=alerting.CONFIG_SECRET_NAME if am_secret is not None else None,
            scrape_interval_seconds=settings.monitoring.scrape_interval_seconds,
            retention_days=settings.monitoring.retention_days,
            grafana_enabled=settings.monitoring.grafana_enabled,
            storage_gib=50 if settings.uses_azure else None,
            storage_class="managed-csi" if settings.uses_azure else None,
        )
        self.release = k8s.helm.v3.Release(
            f"{name}-kps",
            name=hv.KUBE_PROMETHEUS_STACK_RELEASE,
            chart=hv.KUBE_PROMETHEUS_STACK_CHART,
            version=hv.KUBE_PROMETHEUS_STACK_VERSION,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=hv.KUBE_PROMETHEUS_STACK_REPO),
            namespace=args.namespace,
            values=values.to_helm(),
            opts=self._k8s(*deps),
        )
        # The CRDs (ServiceMonitor, PrometheusRule) arrive with the release.
        self._dcgm_exporter(PROMETHEUS_API, self.release)
        self._workload_monitors(PROMETHEUS_API, self.release)
        for group in self.rule_groups:
            k8s.apiextensions.CustomResource(
                f"{name}-rules-{group.name}",
                api_version=PROMETHEUS_API,
                kind="PrometheusRule",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=group.name, namespace=args.namespace, labels=PART_OF),
                spec=to_prometheus_rule_spec(group),
                opts=self._k8s(self.release),
            )
            self.prometheus_rule_names.append(group.name)
        if settings.monitoring.grafana_enabled:
            for uid, board in build_dashboards(gpu=has_gpu(settings)).items():
                k8s.core.v1.ConfigMap(
                    f"{name}-dashboard-{uid}",
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        name=f"dashboard-{uid}", namespace=args.namespace,
                        labels={**PART_OF, hv.DASHBOARD_LABEL: hv.DASHBOARD_LABEL_VALUE}),
                    data={f"{uid}.json": json.dumps(board, sort_keys=True)},
                    opts=self._k8s(ns),
                )
            self.grafana_endpoint = self.release.name.apply(
                lambda release: f"http://{release}-grafana.{args.namespace}.svc.cluster.local")

    def _alertmanager_secret(self, ns: pulumi.Resource) -> k8s.core.v1.Secret | None:
        """The Alertmanager configuration (receivers, severity routes) as a Secret; None: no routes."""
        args, mon = self._args, self._args.settings.monitoring
        if not mon.routes:
            return None
        keys = mon.secret_keys()
        text = pulumi.Output.all(*[args.alert_secrets[k] for k in keys]).apply(
            lambda values: yaml.safe_dump(alerting.alertmanager_config(mon, dict(zip(keys, values, strict=True))),
                                          sort_keys=False))
        return k8s.core.v1.Secret(
            f"{self._name}-alertmanager",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=alerting.CONFIG_SECRET_NAME, namespace=args.namespace, labels=PART_OF,
                annotations={alerting.ROUTES_ANNOTATION: json.dumps(alerting.route_summary(mon),
                                                                    sort_keys=True)}),
            type="Opaque", string_data={alerting.CONFIG_SECRET_KEY: pulumi.Output.secret(text)},
            opts=self._k8s(ns))

    def _action_groups(self, rg: pulumi.Input[str]) -> dict[str, pulumi.Output[str]]:
        """One Azure Monitor action group per routed severity; returns their ids by severity."""
        args, mon, name = self._args, self._args.settings.monitoring, self._name
        ids: dict[str, pulumi.Output[str]] = {}
        for plan in alerting.action_group_plan(mon):
            group = monitor.ActionGroup(
                f"{name}-ag-{plan.severity}",
                action_group_name=f"{self._args.settings.name_prefix}-alerts-{plan.severity}",
                resource_group_name=rg, location="global", enabled=True, tags=self._tags,
                group_short_name=f"slm{plan.severity}"[:12],
                email_receivers=[monitor.MicrosoftCommonEmailReceiverArgs(name=n, email_address=to,
                                                                           use_common_alert_schema=True)
                                 for n, to in plan.emails],
                webhook_receivers=[monitor.WebhookReceiverArgs(
                    name=n, use_common_alert_schema=True,
                    service_uri=pulumi.Output.secret(pulumi.Output.from_input(args.alert_secrets[key]).apply(
                        lambda v, t=template: t.format(key=v))))
                    for n, key, template in plan.webhooks],
                opts=pulumi.ResourceOptions(parent=self))
            ids[plan.severity] = group.id
        return ids

    # ------------------------------------------------------------------ azure managed

    def _azure_managed(self) -> None:
        args, settings, name = self._args, self._args.settings, self._name
        prefix = settings.name_prefix
        child = pulumi.ResourceOptions(parent=self)
        rg = args.resource_group_name
        assert rg is not None  # noqa: S101 (configuration_errors checked it)
        assert args.subscription_id is not None  # noqa: S101
        assert args.cluster_id is not None  # noqa: S101
        workspace: monitor.AzureMonitorWorkspace | None = None
        if args.azure_monitor_workspace_id is None:
            workspace = monitor.AzureMonitorWorkspace(
                f"{name}-amw", azure_monitor_workspace_name=f"{prefix}-amw", resource_group_name=rg,
                location=args.location, tags=self._tags, opts=child)
        workspace_id: pulumi.Output[str] = (
            workspace.id if workspace is not None
            else pulumi.Output.from_input(cast("pulumi.Input[str]", args.azure_monitor_workspace_id)))
        self.azure_monitor_workspace_id = workspace_id
        endpoint = monitor.DataCollectionEndpoint(
            f"{name}-prom-dce", data_collection_endpoint_name=f"{prefix}-prom-dce", kind="Linux",
            resource_group_name=rg, location=args.location, tags=self._tags,
            network_acls=monitor.DataCollectionEndpointNetworkAclsArgs(public_network_access="Enabled"),
            opts=child)
        rule = monitor.DataCollectionRule(
            f"{name}-prom-dcr", data_collection_rule_name=f"{prefix}-prom-dcr", kind="Linux",
            resource_group_name=rg, location=args.location, tags=self._tags,
            data_collection_endpoint_id=endpoint.id,
            description="Managed Prometheus: forward the cluster's metrics to the Azure Monitor workspace.",
            data_sources=monitor.DataCollectionRuleDataSourcesArgs(prometheus_forwarder=[
                monitor.PrometheusForwarderDataSourceArgs(name="PrometheusDataSource",
                                                          streams=[PROMETHEUS_STREAM])]),
            destinations=monitor.DataCollectionRuleDestinationsArgs(monitoring_accounts=[
                monitor.MonitoringAccountDestinationArgs(account_resource_id=workspace_id,
                                                         name="MonitoringAccount1")]),
            data_flows=[monitor.DataFlowArgs(streams=[PROMETHEUS_STREAM], destinations=["MonitoringAccount1"])],
            opts=child)
        monitor.DataCollectionRuleAssociation(
            f"{name}-prom-dcra", association_name=f"{prefix}-prom-dcra", resource_uri=args.cluster_id,
            data_collection_rule_id=rule.id,
            description="Managed Prometheus metrics of the AKS cluster.", opts=child)
        monitor.DataCollectionRuleAssociation(
            # The name is fixed by Azure for the endpoint association of a cluster.
            f"{name}-prom-dcea", association_name="configurationAccessEndpoint",
            resource_uri=args.cluster_id, data_collection_endpoint_id=endpoint.id, opts=child)

        prod = settings.tier == "prod"
        self.grafana = dashboard.Grafana(
            f"{name}-grafana", workspace_name=f"{prefix}-grafana", resource_group_name=rg,
            location=args.location, tags=self._tags,
            sku=dashboard.ResourceSkuArgs(name="Standard"),
            identity=dashboard.ManagedServiceIdentityArgs(type="SystemAssigned"),
            properties=dashboard.ManagedGrafanaPropertiesArgs(
                api_key="Disabled",
                deterministic_outbound_ip="Disabled",
                public_network_access="Disabled" if prod else "Enabled",
                zone_redundancy="Enabled" if prod else "Disabled",
                grafana_major_version="11",
                grafana_integrations=dashboard.GrafanaIntegrationsArgs(azure_monitor_workspace_integrations=[
                    dashboard.AzureMonitorWorkspaceIntegrationArgs(
                        azure_monitor_workspace_resource_id=workspace_id)]),
            ),
            opts=child)
        self.grafana_endpoint = self.grafana.properties.apply(lambda p: p.endpoint or "")
        if args.private_endpoint_subnet_id is not None:
            zone = args.private_dns_zone_ids.get(GRAFANA_PRIVATE_DNS_ZONE)
            apply_private_endpoint(
                self, f"{name}-grafana", resource_id=self.grafana.id, group_id="grafana",
                config=PrivateEndpointConfig(subnet_id=args.private_endpoint_subnet_id,
                                             private_dns_zone_ids=[zone] if zone is not None else []),
                resource_group_name=rg, location=args.location, tags=self._tags)
        grafana_principal = self.grafana.identity.apply(lambda i: i.principal_id if i else "")
        rg_scope = pulumi.Output.concat("/subscriptions/", args.subscription_id, "/resourceGroups/", rg)
        grants = [
            *apply_role_assignments(self, f"{name}-grafana", scope_id=rg_scope,
                                    subscription_id=args.subscription_id, assignments={
                                        "monitoring-reader": RoleAssignment(role="Monitoring Reader",
                                                                            principal_id=grafana_principal)}),
            *apply_role_assignments(self, f"{name}-amw", scope_id=workspace_id,
                                    subscription_id=args.subscription_id, assignments={
                                        "grafana-data-reader": RoleAssignment(role="Monitoring Data Reader",
                                                                              principal_id=grafana_principal)}),
            *apply_role_assignments(self, name, scope_id=self.grafana.id, subscription_id=args.subscription_id,
                                    assignments={**grafana_people(settings), **args.role_assignments}),
        ]
        apply_diagnostic_settings(self, f"{name}-grafana", resource_id=self.grafana.id,
                                  settings=args.diagnostic_settings)

        action_groups = self._action_groups(rg)
        for group in self.rule_groups:
            azure = to_azure_rule_group(group, name_prefix=prefix)
            rules = [alertsmanagement.PrometheusRuleArgs(
                **r, actions=[alertsmanagement.PrometheusRuleGroupActionArgs(
                    action_group_id=action_groups[AZURE_SEVERITY_NAME[r["severity"]]])]
                if r.get("alert") and AZURE_SEVERITY_NAME[r["severity"]] in action_groups else None)
                for r in azure.rules]
            alertsmanagement.PrometheusRuleGroup(
                f"{name}-rules-{group.name}",
                rule_group_name=azure.rule_group_name,
                resource_group_name=rg, location=args.location, tags=self._tags,
                cluster_name=args.cluster_name, description=azure.description, enabled=True,
                interval=azure.interval,
                # The API takes exactly one scope, the workspace holding the series; `cluster_name`
                # ties the group to its cluster (PrometheusRuleGroup, API 2023-03-01).
                scopes=[workspace_id],
                rules=rules,
                opts=child)
            self.prometheus_rule_names.append(azure.rule_group_name)

        if args.kube_provider is not None:
            self._dcgm_exporter(AZURE_PROMETHEUS_API)
            self._workload_monitors(AZURE_PROMETHEUS_API)
        if workspace is not None:
            apply_lock(self, f"{name}-amw", scope_id=workspace.id, lock=args.lock, depends_on=[rule, *grants])
        apply_lock(self, f"{name}-grafana", scope_id=self.grafana.id, lock=args.lock, depends_on=grants)

    # ------------------------------------------------------------------ logs

    def _logs(self) -> None:
        """Container Insights collection into the shared workspace (audit settings are the owners')."""
        args, name, prefix = self._args, self._name, self._args.settings.name_prefix
        workspace_id = args.log_analytics_workspace_id
        assert workspace_id is not None  # noqa: S101 (configuration_errors)
        child = pulumi.ResourceOptions(parent=self)
        if args.cluster_id is not None:
            assert args.resource_group_name is not None  # noqa: S101
            ci_rule = monitor.DataCollectionRule(
                f"{name}-ci-dcr", data_collection_rule_name=f"{prefix}-ci-dcr", kind="Linux",
                resource_group_name=args.resource_group_name, location=args.location, tags=self._tags,
                description="Container Insights (ContainerLogV2, inventory, perf) into the shared workspace.",
                data_sources=monitor.DataCollectionRuleDataSourcesArgs(extensions=[
                    monitor.ExtensionDataSourceArgs(
                        name="ContainerInsightsExtension", extension_name="ContainerInsights",
                        streams=[CONTAINER_INSIGHTS_STREAM],
                        extension_settings={"dataCollectionSettings": {
                            "interval": "1m", "namespaceFilteringMode": "Off", "enableContainerLogV2": True}},
                    )]),
                destinations=monitor.DataCollectionRuleDestinationsArgs(log_analytics=[
                    monitor.LogAnalyticsDestinationArgs(workspace_resource_id=workspace_id,
                                                        name="ciworkspace")]),
                data_flows=[monitor.DataFlowArgs(streams=[CONTAINER_INSIGHTS_STREAM],
                                                 destinations=["ciworkspace"])],
                opts=child)
            monitor.DataCollectionRuleAssociation(
                f"{name}-ci-dcra", association_name="ContainerInsightsExtension",
                resource_uri=args.cluster_id, data_collection_rule_id=ci_rule.id,
                description="Container Insights for the AKS cluster.", opts=child)

