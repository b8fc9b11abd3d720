"""Prometheus and Grafana for model serving: in-cluster or Azure managed, with one set of rules.

``MonitoringStack`` takes the models a cluster serves (engine, SLO), where their pods are, the mode and
the receivers, and wires metrics, alerts, dashboards and logs for them. It knows no stack file or
tier: ``stacks/monitoring.py`` maps ours onto these Args, and ``examples/`` shows another program. The alert and recording rules come
from ``components.monitoring.rules`` and are deployed unchanged in both modes (as ``PrometheusRule``
custom resources, or as Azure ``PrometheusRuleGroup``s), and proven by ``promtool test rules`` on
the files ``components.monitoring.render`` writes.
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, cast

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
from components.monitoring.default_recording_rules import default_groups
from components.monitoring.rules import (
    AZURE_SEVERITY_NAME,
    RuleGroup,
    build_rule_groups,
    to_azure_rule_group,
    to_prometheus_rule_spec,
)
from components.monitoring.spec import (
    ENGINES,
    AlertRouting,
    GpuDriver,
    MonitoredModel,
    MonitoredWorkload,
    MonitoringMode,
)

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


@dataclass(frozen=True, kw_only=True)
class AzureMonitoringTarget:
    """The Azure side of the stack: where its Azure resources go and what they connect to.

    Given, the stack creates a Container Insights data collection rule for the cluster (into
    ``log_analytics_workspace_id``) and, in azure-managed mode, the managed Prometheus pipeline and
    Managed Grafana. Audit diagnostic settings of the cluster are its owner's, not this stack's.
    """

    resource_group_name: pulumi.Input[str]
    location: str
    subscription_id: pulumi.Input[str]
    """Role-assignment ids and the resource group scope of Grafana's *Monitoring Reader* use it."""
    name_prefix: str
    """Prefix of the Azure resource names (``<prefix>-amw``, ``<prefix>-grafana``, ``<prefix>-ci-dcr``)."""
    cluster_id: pulumi.Input[str]
    """The AKS cluster monitored (data collection rule associations)."""
    cluster_name: pulumi.Input[str]
    """The AKS cluster name Azure rule groups filter on (``cluster`` label)."""
    log_analytics_workspace_id: pulumi.Input[str]
    """The shared workspace Container Insights sends to."""
    azure_monitor_workspace_id: pulumi.Input[str] | None = None
    """Default: none — in azure-managed mode the component creates the Azure Monitor workspace.
    Pass a shared one when something built before this component (the cluster's KEDA triggers)
    must query it; the owner of a shared workspace also owns its lock."""
    grafana_public_network_access_enabled: bool = True
    """Default: Managed Grafana is reachable from the internet (Entra sign-in). Turn it off with a
    ``private_endpoint_subnet_id``, the only way in then."""
    grafana_zone_redundancy_enabled: bool = False
    """Default: Managed Grafana in one zone."""
    grafana_admin_group_ids: Sequence[str] = ()
    """Default: none. Entra groups granted *Grafana Admin* (Managed Grafana has no local users)."""
    grafana_viewer_group_ids: Sequence[str] = ()
    """Default: none. Entra groups granted *Grafana Viewer*."""
    private_endpoint_subnet_id: pulumi.Input[str] | None = None
    """Default: none. Given, Managed Grafana gets a private endpoint there (group ``grafana``)."""
    private_dns_zone_ids: Mapping[str, pulumi.Input[str]] = field(default_factory=dict[str, pulumi.Input[str]])
    """Default: none. Zone ids by zone name; ``privatelink.grafana.azure.com`` resolves the Grafana endpoint."""


@dataclass(frozen=True, kw_only=True)
class MonitoringStackArgs(StandardInterfaces):
    """Inputs of ``MonitoringStack``.

    The standard interfaces apply to the primary Azure resource, Managed Grafana (``lock`` also to
    the Azure Monitor workspace). In-cluster mode has no Azure resource: ``lock`` is ignored there,
    and ``role_assignments`` / ``diagnostic_settings`` are rejected rather than silently dropped.
    """

    models: Mapping[str, MonitoredModel]
    """The served model deployments, by the ``model_name`` they serve as: one rule group each."""
    workloads: Mapping[str, MonitoredWorkload] = field(default_factory=dict[str, MonitoredWorkload])
    """Default: none scraped. Where each model's pods are, by the same keys as ``models``: one
    ServiceMonitor per workload with a ``metrics_path``."""
    mode: MonitoringMode = MonitoringMode.IN_CLUSTER
    """Default: kube-prometheus-stack in the cluster. ``azure-managed`` needs ``azure``."""
    azure: AzureMonitoringTarget | None = None
    """Default: none — nothing is created in Azure (a laptop or any non-AKS cluster)."""
    gpu_telemetry: bool = False
    """Default: no GPU rules, dashboard or DCGM exporter. Turn on when the cluster runs GPUs."""
    gpu_driver: GpuDriver = GpuDriver.AKS_MANAGED
    """Default: AKS manages the drivers and this stack installs the DCGM exporter."""
    gpu_nodes_labelled: bool = False
    """Default: the DCGM exporter runs on every node. True on AKS, where GPU pools carry the
    ``accelerator=nvidia`` label (``InferenceCluster``) and the exporter selects them."""
    alerting: AlertRouting = field(default_factory=AlertRouting)
    """Default: no receivers and no routes."""
    alert_secrets: Mapping[str, pulumi.Input[str]] = field(default_factory=dict[str, pulumi.Input[str]])
    """The receivers' secret values by the keys ``alerting`` names: webhook URLs, routing keys, the
    SMTP password. Pass secret Outputs; they only reach a Secret (in-cluster) or the action groups'
    webhook URIs (Azure)."""
    runbook_base_url: str | None = None
    """Default: repository-relative ``docs/runbooks/<alert>.md`` links, which policy
    ``slm-ops-alert-routing`` reports from staging up; pass an absolute ``https://`` base."""
    kube_provider: k8s.Provider | None = None
    """Default: the Kubernetes provider the component inherits (``opts.providers``), else the ambient
    kubeconfig. Kubernetes objects are created in in-cluster mode, for scraping, and for the DCGM exporter."""
    namespace: str = "monitoring"
    """Default: ``monitoring`` — where kube-prometheus-stack, the DCGM exporter, rules and
    dashboards live."""
    scrape_interval_seconds: int = 30
    """Default: every 30 s."""
    retention_days: int = 30
    """Default: 30 days of in-cluster Prometheus data."""
    prometheus_storage_class: str | None = None
    """Default: none — in-cluster Prometheus keeps its data in an emptyDir (lost with the pod).
    ``managed-csi`` on AKS."""
    prometheus_storage_gib: int | None = None
    """Default: none; the size of the volume claimed with ``prometheus_storage_class``."""
    grafana_enabled: bool = True
    """Default: Grafana and the dashboards are deployed (in-cluster)."""
    grafana_admin_password: pulumi.Input[str] | None = None
    """Default: none. Required in in-cluster mode with Grafana enabled; stored only in a Secret."""


def configuration_errors(args: MonitoringStackArgs) -> list[str]:
    """Everything wrong with ``args``, as messages naming the field and the fix (empty when valid)."""
    errors: list[str] = []
    if args.mode == MonitoringMode.AZURE_MANAGED:
        if args.azure is None:
            errors.append("azure: required in azure-managed mode (mode); give the resource group, "
                          "cluster and workspace ids, or use mode 'in-cluster'")
    else:
        if args.grafana_enabled and args.grafana_admin_password is None:
            errors.append("grafana_admin_password: required when Grafana runs in-cluster; pass a secret "
                          "(pulumi config set --secret slm-platform:grafanaAdminPassword ...)")
        if args.role_assignments or args.diagnostic_settings:
            errors.append("role_assignments/diagnostic_settings: in-cluster mode has no Azure resource to "
                          "apply them to; remove them or use mode 'azure-managed'")
    errors += args.alerting.errors()
    # From another language a map holding secrets arrives as one secret Output: its keys are
    # checked when it resolves (MonitoringStack._alert_secret).
    known = not isinstance(args.alert_secrets, pulumi.Output)
    missing = [k for k in args.alerting.secret_keys() if known and k not in args.alert_secrets]
    if missing:
        errors.append(f"alert_secrets: the receivers read {', '.join(missing)}; pass each as a secret "
                      "(pulumi config set --secret <key> <value>)")
    for key, m in sorted(args.models.items()):
        if m.engine not in ENGINES:
            errors.append(f"models.{key}.engine: {m.engine!r} is not one of {', '.join(ENGINES)}")
    for key, w in sorted(args.workloads.items()):
        path = f"workloads.{key}"
        if key not in args.models:
            errors.append(f"{path}: not a model of models; use one of: {', '.join(sorted(args.models))}")
            continue
        if args.models[key].engine == "ollama" and w.metrics_path is not None:
            errors.append(f"{path}.metrics_path: Ollama has no Prometheus endpoint (ollama#3144, seed "
                          "defect D4); set it to None")
        if w.metrics_path is not None and w.served_model_name != key:
            errors.append(f"{path}.served_model_name: {w.served_model_name!r}; the alert rules select "
                          f'model_name="{key}", so serve it with --served-model-name {key}')
    return errors


def grafana_people(azure: AzureMonitoringTarget) -> dict[str, RoleAssignment]:
    """Grafana Admin / Viewer for the given Entra groups: Managed Grafana has no local users."""
    out = {f"admins-{i}": RoleAssignment(role="Grafana Admin", principal_id=g, principal_type="Group",
                                         description="Managed Grafana admins (settings)")
           for i, g in enumerate(azure.grafana_admin_group_ids)}
    out |= {f"viewers-{i}": RoleAssignment(role="Grafana Viewer", principal_id=str(g), principal_type="Group",
                                           description="Managed Grafana viewers (settings)")
            for i, g in enumerate(azure.grafana_viewer_group_ids)}
    return out


class MonitoringStack(pulumi.ComponentResource):
    """Metrics, alerts, dashboards and logs for model serving.

    Creates, in **in-cluster** mode (``mode``): a ``monitoring`` Namespace, the
    Grafana admin Secret, kube-prometheus-stack (pinned ``helm.v3.Release``, typed values), the DCGM
    exporter with ``gpu_telemetry`` when AKS manages the drivers, one ``ServiceMonitor`` per serving
    workload with a metrics endpoint (never Ollama, D4), one ``PrometheusRule`` per rule group, and
    one dashboard ConfigMap per dashboard for the Grafana sidecar.

    In **azure-managed** mode: an Azure Monitor workspace, a data collection endpoint and rule
    (Prometheus forwarder) associated with the cluster, Managed Grafana (system identity, API keys
    off, public access off in prod) with *Monitoring Reader* on the resource group and *Monitoring
    Data Reader* on the workspace, one ``PrometheusRuleGroup`` per rule group (the same rules), the
    DCGM exporter and ``azmonitoring.coreos.com/v1`` ServiceMonitors that ama-metrics scrapes.

    With ``azure``, both modes: a Container Insights data collection rule for the cluster into the
    shared Log Analytics workspace. Audit diagnostic settings of the cluster, the Foundry account and
    the Key Vault belong to the components that own those resources (``InferenceCluster``,
    ``ModelRegistry``): Azure rejects a second setting sending the same category of one resource to
    the same workspace (policy ``slm-conflict-diagnostic-sinks``).
    """

    _type_token: ClassVar[str] = "slm:monitoring:MonitoringStack"  # noqa: S105 (a type token)
    """Our stacks' token; the component package constructs it as ``slm:index:MonitoringStack``."""
    # Annotated attributes are the package's outputs (Pulumi's analyzer reads them); the Python-only
    # handles (escape hatches, the rule groups) are properties.
    grafana_endpoint: pulumi.Output[str] | None
    """Grafana's URL: the in-cluster Service, or Managed Grafana's endpoint."""
    azure_monitor_workspace_id: pulumi.Output[str] | None
    """The Azure Monitor workspace the metrics go to (azure-managed mode)."""
    prometheus_rule_names: list[str]
    """Names of the PrometheusRule objects (in-cluster) or Azure rule groups (managed)."""

    def __init__(self, name: str, args: MonitoringStackArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        errors = configuration_errors(args)  # before anything is registered
        if errors:
            msg = f"MonitoringStack {name!r}:\n" + "\n".join(errors)
            raise ValueError(msg)
        super().__init__(self._type_token, name, None, opts)
        self._name = name
        self._args = args
        self._tags = dict(args.tags)
        self._rule_groups = build_rule_groups(args.models, gpu_telemetry=args.gpu_telemetry,
                                              runbook_base_url=args.runbook_base_url)
        self.grafana_endpoint = None
        self.azure_monitor_workspace_id = None
        self.prometheus_rule_names = []
        self._grafana: dashboard.Grafana | None = None
        self._release: k8s.helm.v3.Release | None = None
        self._namespace: k8s.core.v1.Namespace | None = None

        if args.mode == MonitoringMode.IN_CLUSTER:
            self._in_cluster()
        else:
            assert args.azure is not None  # noqa: S101 (configuration_errors checked it)
            self._azure_managed(args.azure)
        if args.azure is not None:
            self._logs(args.azure)

        self.register_outputs({
            "grafana_endpoint": self.grafana_endpoint,
            "azure_monitor_workspace_id": self.azure_monitor_workspace_id,
            "prometheus_rule_names": self.prometheus_rule_names,
        })

    @property
    def rule_groups(self) -> tuple[RuleGroup, ...]:
        """The rule groups deployed (the same ones ``render_monitoring`` writes for promtool)."""
        return self._rule_groups

    @property
    def grafana(self) -> dashboard.Grafana | None:
        """Escape hatch: Managed Grafana (azure-managed mode)."""
        return self._grafana

    @property
    def release(self) -> k8s.helm.v3.Release | None:
        """Escape hatch: the kube-prometheus-stack release (in-cluster mode)."""
        return self._release

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
        args = self._args
        if not args.gpu_telemetry:
            return
        interval = f"{args.scrape_interval_seconds}s"
        extra = AZURE_LABEL_LIMITS if api_version == AZURE_PROMETHEUS_API else {}
        if args.gpu_driver == GpuDriver.GPU_OPERATOR:
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
                values=hv.DcgmExporterValues(aks_gpu_nodes_only=args.gpu_nodes_labelled).to_helm(),
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
        interval = f"{self._args.scrape_interval_seconds}s"
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
        args, name = self._args, self._name
        ns = self._ensure_namespace()
        secret_name = "grafana-admin"  # noqa: S105 (the Secret's name, not its value)
        deps: list[pulumi.Resource] = [ns]
        if args.grafana_enabled:
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
            scrape_interval_seconds=args.scrape_interval_seconds,
            retention_days=args.retention_days,
            grafana_enabled=args.grafana_enabled,
            storage_gib=args.prometheus_storage_gib,
            storage_class=args.prometheus_storage_class,
        )
        release = self._release = k8s.helm.v3.Release(
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
        self._dcgm_exporter(PROMETHEUS_API, release)
        self._workload_monitors(PROMETHEUS_API, release)
        for group in self._rule_groups:
            k8s.apiextensions.CustomResource(
                f"{name}-rules-{group.name}",
                api_version=PROMETHEUS_API,
                kind="PrometheusRule",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=group.name, namespace=args.namespace, labels=PART_OF),
                spec=to_prometheus_rule_spec(group),
                opts=self._k8s(release),
            )
            self.prometheus_rule_names.append(group.name)
        if args.grafana_enabled:
            for uid, board in build_dashboards(gpu=args.gpu_telemetry).items():
                k8s.core.v1.ConfigMap(
                    f"{name}-dashboard-{uid}",
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        name=f"dashboard-{uid}", namespace=args.namespace,
                        labels={**PART_OF, hv.DASHBOARD_LABEL: hv.DASHBOARD_LABEL_VALUE}),
                    data={f"{uid}.json": json.dumps(board, sort_keys=True)},
                    opts=self._k8s(ns),
                )
            self.grafana_endpoint = release.name.apply(
                lambda release: f"http://{release}-grafana.{args.namespace}.svc.cluster.local")

    def _alert_secret(self, key: str) -> pulumi.Output[str]:
        """One receiver secret from ``alert_secrets`` (a mapping of Inputs, or one Output of a map)."""
        def pick(secrets: Mapping[str, str]) -> str:
            if key not in secrets:
                msg = f"alert_secrets: the receivers read {key}; pass it as a secret"
                raise ValueError(msg)
            return secrets[key]
        secrets = cast("pulumi.Output[Mapping[str, str]]", pulumi.Output.from_input(self._args.alert_secrets))
        return secrets.apply(pick)

    def _alertmanager_secret(self, ns: pulumi.Resource) -> k8s.core.v1.Secret | None:
        """The Alertmanager configuration (receivers, severity routes) as a Secret; None: no routes."""
        args, mon = self._args, self._args.alerting
        if not mon.routes:
            return None
        keys = mon.secret_keys()
        text = pulumi.Output.all(*[self._alert_secret(k) for k in keys]).apply(
            lambda values: yaml.safe_dump(alerting.alertmanager_config(mon, dict(zip(keys, values, strict=True)),
                                                                       mode=args.mode),
                                          sort_keys=False))
        return k8s.core.v1.Secret(
            f"{self._name}-alertmanager",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=alerting.CONFIG_SECRET_NAME, namespace=args.namespace, labels=PART_OF,
                annotations={alerting.ROUTES_ANNOTATION: json.dumps(alerting.route_summary(mon),
                                                                    sort_keys=True)}),
            type="Opaque", string_data={alerting.CONFIG_SECRET_KEY: pulumi.Output.secret(text)},
            opts=self._k8s(ns))

    def _action_groups(self, azure: AzureMonitoringTarget) -> dict[str, pulumi.Output[str]]:
        """One Azure Monitor action group per routed severity; returns their ids by severity."""
        mon, name = self._args.alerting, self._name
        ids: dict[str, pulumi.Output[str]] = {}
        for plan in alerting.action_group_plan(mon):
            group = monitor.ActionGroup(
                f"{name}-ag-{plan.severity}",
                action_group_name=f"{azure.name_prefix}-alerts-{plan.severity}",
                resource_group_name=azure.resource_group_name, location="global", enabled=True, tags=self._tags,
                group_short_name=f"slm{plan.severity}"[:12],
                email_receivers=[monitor.MicrosoftCommonEmailReceiverArgs(name=n, email_address=to,
                                                                           use_common_alert_schema=True)
                                 for n, to in plan.emails],
                webhook_receivers=[monitor.WebhookReceiverArgs(
                    name=n, use_common_alert_schema=True,
                    service_uri=pulumi.Output.secret(self._alert_secret(key).apply(
                        lambda v, t=template: t.format(key=v))))
                    for n, key, template in plan.webhooks],
                opts=pulumi.ResourceOptions(parent=self))
            ids[plan.severity] = group.id
        return ids

    # ------------------------------------------------------------------ azure managed

    def _azure_managed(self, azure: AzureMonitoringTarget) -> None:
        args, name = self._args, self._name
        prefix, rg, location = azure.name_prefix, azure.resource_group_name, azure.location
        child = pulumi.ResourceOptions(parent=self)
        workspace: monitor.AzureMonitorWorkspace | None = None
        if azure.azure_monitor_workspace_id is None:
            workspace = monitor.AzureMonitorWorkspace(
                f"{name}-amw", azure_monitor_workspace_name=f"{prefix}-amw", resource_group_name=rg,
                location=location, tags=self._tags, opts=child)
        workspace_id: pulumi.Output[str] = (
            workspace.id if workspace is not None
            else pulumi.Output.from_input(cast("pulumi.Input[str]", azure.azure_monitor_workspace_id)))
        self.azure_monitor_workspace_id = workspace_id
        endpoint = monitor.DataCollectionEndpoint(
            f"{name}-prom-dce", data_collection_endpoint_name=f"{prefix}-prom-dce", kind="Linux",
            resource_group_name=rg, location=location, tags=self._tags,
            network_acls=monitor.DataCollectionEndpointNetworkAclsArgs(public_network_access="Enabled"),
            opts=child)
        rule = monitor.DataCollectionRule(
            f"{name}-prom-dcr", data_collection_rule_name=f"{prefix}-prom-dcr", kind="Linux",
            resource_group_name=rg, location=location, tags=self._tags,
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
            f"{name}-prom-dcra", association_name=f"{prefix}-prom-dcra", resource_uri=azure.cluster_id,
            data_collection_rule_id=rule.id,
            description="Managed Prometheus metrics of the AKS cluster.", opts=child)
        monitor.DataCollectionRuleAssociation(
            # The name is fixed by Azure for the endpoint association of a cluster.
            f"{name}-prom-dcea", association_name="configurationAccessEndpoint",
            resource_uri=azure.cluster_id, data_collection_endpoint_id=endpoint.id, opts=child)

        grafana = self._grafana = dashboard.Grafana(
            f"{name}-grafana", workspace_name=f"{prefix}-grafana", resource_group_name=rg,
            location=location, tags=self._tags,
            sku=dashboard.ResourceSkuArgs(name="Standard"),
            identity=dashboard.ManagedServiceIdentityArgs(type="SystemAssigned"),
            properties=dashboard.ManagedGrafanaPropertiesArgs(
                api_key="Disabled",
                deterministic_outbound_ip="Disabled",
                public_network_access="Enabled" if azure.grafana_public_network_access_enabled else "Disabled",
                zone_redundancy="Enabled" if azure.grafana_zone_redundancy_enabled else "Disabled",
                grafana_major_version="11",
                grafana_integrations=dashboard.GrafanaIntegrationsArgs(azure_monitor_workspace_integrations=[
                    dashboard.AzureMonitorWorkspaceIntegrationArgs(
                        azure_monitor_workspace_resource_id=workspace_id)]),
            ),
            opts=child)
        self.grafana_endpoint = grafana.properties.apply(lambda p: p.endpoint or "")
        if azure.private_endpoint_subnet_id is not None:
            zone = azure.private_dns_zone_ids.get(GRAFANA_PRIVATE_DNS_ZONE)
            apply_private_endpoint(
                self, f"{name}-grafana", resource_id=grafana.id, group_id="grafana",
                config=PrivateEndpointConfig(subnet_id=azure.private_endpoint_subnet_id,
                                             private_dns_zone_ids=[zone] if zone is not None else []),
                resource_group_name=rg, location=location, tags=self._tags)
        grafana_principal = grafana.identity.apply(lambda i: i.principal_id if i else "")
        rg_scope = pulumi.Output.concat("/subscriptions/", azure.subscription_id, "/resourceGroups/", rg)
        grants = [
            *apply_role_assignments(self, f"{name}-grafana", scope_id=rg_scope,
                                    subscription_id=azure.subscription_id, assignments={
                                        "monitoring-reader": RoleAssignment(role="Monitoring Reader",
                                                                            principal_id=grafana_principal)}),
            *apply_role_assignments(self, f"{name}-amw", scope_id=workspace_id,
                                    subscription_id=azure.subscription_id, assignments={
                                        "grafana-data-reader": RoleAssignment(role="Monitoring Data Reader",
                                                                              principal_id=grafana_principal)}),
            *apply_role_assignments(self, name, scope_id=grafana.id, subscription_id=azure.subscription_id,
                                    assignments={**grafana_people(azure), **args.role_assignments}),
        ]
        apply_diagnostic_settings(self, f"{name}-grafana", resource_id=grafana.id,
                                  settings=args.diagnostic_settings)

        action_groups = self._action_groups(azure)
        for group in self._rule_groups:
            azure_group = to_azure_rule_group(group, name_prefix=prefix)
            rules = [alertsmanagement.PrometheusRuleArgs(
                **r, actions=[alertsmanagement.PrometheusRuleGroupActionArgs(
                    action_group_id=action_groups[AZURE_SEVERITY_NAME[r["severity"]]])]
                if r.get("alert") and AZURE_SEVERITY_NAME[r["severity"]] in action_groups else None)
                for r in azure_group.rules]
            alertsmanagement.PrometheusRuleGroup(
                f"{name}-rules-{group.name}",
                rule_group_name=azure_group.rule_group_name,
                resource_group_name=rg, location=location, tags=self._tags,
                cluster_name=azure.cluster_name, description=azure_group.description, enabled=True,
                interval=azure_group.interval,
                # The API takes exactly one scope, the workspace holding the series; `cluster_name`
                # ties the group to its cluster (PrometheusRuleGroup, API 2023-03-01).
                scopes=[workspace_id],
                rules=rules,
                opts=child)
            self.prometheus_rule_names.append(azure_group.rule_group_name)
        self._default_recording_rules(azure, workspace_id, child)

        # ama-metrics reads these from the cluster (the inherited or the given Kubernetes provider).
        self._dcgm_exporter(AZURE_PROMETHEUS_API)
        self._workload_monitors(AZURE_PROMETHEUS_API)
        if workspace is not None:
            apply_lock(self, f"{name}-amw", scope_id=workspace.id, lock=args.lock, depends_on=[rule, *grants])
        apply_lock(self, f"{name}-grafana", scope_id=grafana.id, lock=args.lock, depends_on=grants)

    def _default_recording_rules(self, azure: AzureMonitoringTarget, workspace_id: pulumi.Output[str],
                                 opts: pulumi.ResourceOptions) -> None:
        """Microsoft's default Node, Kubernetes and UX recording-rule groups (the metrics profile enabled through
        ARM creates none, and the built-in dashboards read their series); scoped as Microsoft's template does:
        the workspace and the cluster (``components/monitoring/data/azure-default-recording-rules.json``)."""
        cluster = pulumi.Output.from_input(azure.cluster_name)
        for group in default_groups():
            alertsmanagement.PrometheusRuleGroup(
                f"{self._name}-default-{group.name_prefix.split('RecordingRules')[0].lower()}-rules",
                rule_group_name=cluster.apply(group.name), resource_group_name=azure.resource_group_name,
                location=azure.location, tags=self._tags,
                cluster_name=azure.cluster_name, description=group.description, enabled=True,
                interval=group.interval, scopes=[workspace_id, azure.cluster_id],
                rules=[alertsmanagement.PrometheusRuleArgs(record=r.record, expression=r.expression,
                                                           labels=r.labels, enabled=True) for r in group.rules],
                opts=opts)

    # ------------------------------------------------------------------ logs

    def _logs(self, azure: AzureMonitoringTarget) -> None:
        """Container Insights collection into the shared workspace (audit settings are the owners')."""
        name, prefix = self._name, azure.name_prefix
        workspace_id = azure.log_analytics_workspace_id
        child = pulumi.ResourceOptions(parent=self)
        ci_rule = monitor.DataCollectionRule(
            f"{name}-ci-dcr", data_collection_rule_name=f"{prefix}-ci-dcr", kind="Linux",
            resource_group_name=azure.resource_group_name, location=azure.location, tags=self._tags,
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
            resource_uri=azure.cluster_id, data_collection_rule_id=ci_rule.id,
            description="Container Insights for the AKS cluster.", opts=child)

