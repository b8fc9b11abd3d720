"""The package's ``Construct`` registers what the Python program registers (issue 16).

The provider is started as the engine starts a plugin (``slm_package.py <engine address>``, its port on
stdout); the test calls ``Construct`` over the provider gRPC protocol with wire inputs, and a loopback
resource monitor (``engine_double``) records every registration the provider process makes. The same
Args are then given to ``MonitoringStack`` in a Python program under slmctl's mocks. Both recordings
answer with the same ``PlatformMocks``, so every child's type, name, parent, inputs, dependencies and
provider must be equal; the only difference allowed is the component's own token (the schema's
``slm:index:MonitoringStack`` in the package, ``slm:monitoring:MonitoringStack`` in our stacks).
"""

from __future__ import annotations

import dataclasses
import enum
import json
from pathlib import Path
from typing import Any

import pulumi
import pytest
from google.protobuf import json_format, struct_pb2
from pulumi.provider.experimental.util import camel_case
from pulumi.runtime.proto import provider_pb2

from components.deploy_runner import DeployRunner, DeployRunnerArgs, GitHubRunnerRegistration
from components.foundation import Foundation
from components.model_registry import ModelRegistry, ModelRegistryArgs
from components.monitoring.spec import (
    AlertReceiver,
    AlertRouting,
    MonitoredModel,
    MonitoredWorkload,
    MonitoringMode,
    ReceiverKind,
    ServingSlo,
)
from components.monitoring_stack import AzureMonitoringTarget, MonitoringStack, MonitoringStackArgs
from slmctl.recorder import Registration, record
from stacks.registry import registry_args
from tests.monitoring.support import stack_settings
from tests.package.engine_double import MonitorServer, Provider

PROJECT, STACK = "consumer", "dev"
PACKAGE_TOKEN, PYTHON_TOKEN = "slm:index:MonitoringStack", "slm:monitoring:MonitoringStack"
SECRET_SIG = "4dabf18193072939515e22adb298388d"
SECRET_VALUE_SIG = "1b47061264138c4ac30d75fd1eb44270"
SECRETS = {"grafana": "correct-horse-battery-staple", "hook": "https://hooks.example/T0/secret",
           "engine": "sk-engine-stand-in"}
SCHEMA = Path(__file__).resolve().parents[2] / "components" / "package" / "schema.json"


def _args(mode: MonitoringMode) -> MonitoringStackArgs:
    """A realistic stack: vLLM on a GPU, Ollama on CPU, a webhook receiver; Azure side when managed."""
    labels = {"app.kubernetes.io/instance": "phi-vllm", "app.kubernetes.io/name": "vllm"}
    azure = AzureMonitoringTarget(
        resource_group_name="team-rg", location="swedencentral", subscription_id="00000000-0000-0000-0000-000000000000",
        name_prefix="team", cluster_id="/subscriptions/0/resourceGroups/team-rg/providers/"
        "Microsoft.ContainerService/managedClusters/team-aks", cluster_name="team-aks",
        log_analytics_workspace_id="/subscriptions/0/resourceGroups/team-rg/providers/"
        "Microsoft.OperationalInsights/workspaces/team-law",
        grafana_public_network_access_enabled=False, grafana_admin_group_ids=("aaaaaaaa-0000-0000-0000-000000000001",),
    ) if mode == MonitoringMode.AZURE_MANAGED else None
    return MonitoringStackArgs(
        models={"phi-vllm": MonitoredModel(engine="vllm", slo=ServingSlo(ttft_p95_seconds=1.5), node_usd_per_hour=0.526),
                "phi-ollama": MonitoredModel(engine="ollama")},
        workloads={"phi-vllm": MonitoredWorkload(namespace="serving", port=8000, pod_labels=labels,
                                                 served_model_name="phi-vllm", metrics_path="/metrics"),
                   "phi-ollama": MonitoredWorkload(namespace="serving", port=11434, served_model_name="phi4-mini",
                                                   pod_labels={"app.kubernetes.io/instance": "phi-ollama"})},
        mode=mode, azure=azure, gpu_telemetry=True, gpu_nodes_labelled=True,
        alerting=AlertRouting(receivers={"chat": AlertReceiver(kind=ReceiverKind.WEBHOOK, secret="hook")},
                              routes={"critical": ("chat",), "warning": ("chat",)}),
        runbook_base_url="https://github.com/contoso/runbooks/blob/main",
        retention_days=15, tags={"owner": "team@contoso.example"},
    )


def _secret(value: str) -> dict[str, Any]:
    return {SECRET_SIG: SECRET_VALUE_SIG, "value": value}


def _wire(value: Any) -> Any:
    """What a consumer's SDK sends for ``value``: camelCase keys, enum values, lists, no nulls."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {camel_case(f.name): _wire(getattr(value, f.name)) for f in dataclasses.fields(value)
                if getattr(value, f.name) is not None}
    if hasattr(type(value), "model_fields"):  # a pydantic domain type (NodePool)
        return {camel_case(n): _wire(getattr(value, n)) for n in type(value).model_fields
                if getattr(value, n) is not None}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {k: _wire(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_wire(v) for v in value]
    return value


def _construct(args: Any, token: str = PACKAGE_TOKEN, secrets: dict[str, Any] | None = None,
               ) -> tuple[list[Registration], dict[str, Any], str]:
    inputs = _wire(args) | (secrets if secrets is not None else {
        "grafanaAdminPassword": _secret(SECRETS["grafana"]), "alertSecrets": {"hook": _secret(SECRETS["hook"])}})
    with MonitorServer(project=PROJECT, stack=STACK) as engine, Provider(engine.address) as provider:
        provider.stub.Configure(provider_pb2.ConfigureRequest(acceptSecrets=True, acceptResources=True))
        response = provider.stub.Construct(provider_pb2.ConstructRequest(
            project=PROJECT, stack=STACK, organization="organization", monitorEndpoint=engine.address,
            type=token, name="observability", parent=engine.stack_urn,
            inputs=json_format.ParseDict(inputs, struct_pb2.Struct()), dryRun=False, parallel=4))
        assert engine.monitor_service.errors == []
        return engine.registrations, json_format.MessageToDict(response.state), response.urn


def _python(args: MonitoringStackArgs) -> list[Registration]:
    def program() -> None:
        MonitoringStack("observability", dataclasses.replace(
            args, grafana_admin_password=pulumi.Output.secret(SECRETS["grafana"]),
            alert_secrets={"hook": pulumi.Output.secret(SECRETS["hook"])}))
    return record(program, project=PROJECT, stack=STACK).registrations


def _comparable(regs: list[Registration], token: str) -> dict[str, dict[str, Any]]:
    def norm(text: str) -> str:
        return text.replace(token, "COMPONENT")
    out: dict[str, dict[str, Any]] = {}
    for r in regs:
        fields = dataclasses.asdict(r)
        out[norm(r.urn)] = json.loads(norm(json.dumps({k: v for k, v in fields.items() if k != "urn"}, sort_keys=True)))
    return out


@pytest.mark.parametrize("mode", [MonitoringMode.IN_CLUSTER, MonitoringMode.AZURE_MANAGED], ids=str)
def test_construct_registers_what_the_python_program_registers(mode: MonitoringMode) -> None:
    args = _args(mode)
    constructed, state, urn = _construct(args)
    program = _python(args)
    package, python = _comparable(constructed, PACKAGE_TOKEN), _comparable(program, PYTHON_TOKEN)
    assert len(python) > 10, "the Python program registered the stack's children"
    assert sorted(package) == sorted(python), "the same resources (by URN, component token aside)"
    for key in python:
        assert package[key] == python[key], key
    assert urn == f"urn:pulumi:{STACK}::{PROJECT}::pulumi:pulumi:Stack${PACKAGE_TOKEN}::observability"
    assert state["prometheusRuleNames"] == (["slm-serving-phi-ollama", "slm-serving-phi-vllm", "slm-gpu"]
                                           if mode == MonitoringMode.IN_CLUSTER else
                                           ["team-slm-serving-phi-ollama", "team-slm-serving-phi-vllm", "team-slm-gpu"])
    # The secrets reached the resources only as secrets.
    assert SECRETS["grafana"] not in json.dumps([r.inputs for r in constructed if "Secret" not in r.type])


def _registry_args() -> ModelRegistryArgs:
    """The dev stack's registry (Foundry deployments, weight containers), images off: building one runs Docker."""
    return registry_args(
        stack_settings("dev"), resource_group_name="team-rg", location="swedencentral",
        subscription_id="00000000-0000-0000-0000-000000000000", tenant_id="11111111-1111-1111-1111-111111111111",
        log_analytics_workspace_id="/subscriptions/0/resourceGroups/team-rg/providers/"
        "Microsoft.OperationalInsights/workspaces/team-law",
        engine_api_key="placeholder", grafana_admin_password="placeholder",
        onnx_server_image_enabled=False, model_fill_image_enabled=False,
        kubelet_principal_id="22222222-2222-2222-2222-222222222222")


def _same_registrations(component: type, args: Any, wire_secrets: dict[str, Any],
                        python_secrets: dict[str, Any]) -> dict[str, Any]:
    """Construct ``component`` through the package and in a Python program; assert equal children."""
    package_token = f"slm:index:{component.__name__}"
    constructed, state, _ = _construct(args, package_token, wire_secrets)

    def program() -> None:
        component("observability", dataclasses.replace(
            args, **{k: pulumi.Output.secret(v) for k, v in python_secrets.items()}))
    python = _comparable(record(program, project=PROJECT, stack=STACK).registrations, component._type_token)
    package = _comparable(constructed, package_token)
    assert len(python) > 3, "the Python program registered the component's children"
    assert sorted(package) == sorted(python)
    for key in python:
        assert package[key] == python[key], key
    return state


def test_model_registry_construct_registers_what_the_python_program_registers() -> None:
    state = _same_registrations(
        ModelRegistry, _registry_args(),
        {"engineApiKey": _secret(SECRETS["engine"]), "grafanaAdminPassword": _secret(SECRETS["grafana"])},
        {"engine_api_key": SECRETS["engine"], "grafana_admin_password": SECRETS["grafana"]})
    assert state["registryLoginServer"].endswith(".azurecr.io")


def test_foundation_construct_registers_what_the_python_program_registers() -> None:
    from stacks.platform import _foundation_args

    settings = stack_settings("staging")
    args = _foundation_args(settings, "00000000-0000-0000-0000-000000000000", private=True, tags=settings.azure_tags())
    state = _same_registrations(Foundation, args, {}, {})
    assert state["kubeletIdentity"]["clientId"], "a dataclass output maps to the schema's object"
    assert set(state["workloadIdentities"]) == set(settings.aks_deployments())


def test_deploy_runner_construct_registers_what_the_python_program_registers() -> None:
    args = DeployRunnerArgs(
        name_prefix="team", location="swedencentral", resource_group_name="team-rg",
        virtual_network_name="team-vnet", subnet_cidr="10.40.3.0/27",
        registration=GitHubRunnerRegistration(repository="contoso/slm", app_id=123456, installation_id=654321,
                                              label="slm-deploy-team"),
        app_key="placeholder", admin_ssh_public_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG9vZ2xlZm9vYmFy team")
    state = _same_registrations(DeployRunner, args, {"appKey": _secret("-----BEGIN KEY-----")},
                                {"app_key": "-----BEGIN KEY-----"})
    assert state["label"] == "slm-deploy-team"


def test_inference_cluster_construct_registers_what_the_python_program_registers() -> None:
    from components.inference_cluster import InferenceCluster, KubeletIdentity, WorkloadIdentity
    from stacks.serving import cluster_args

    settings = stack_settings("staging")
    ids = "/subscriptions/0/resourceGroups/team-rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities"
    args = cluster_args(
        settings, resource_group_name="team-rg", subscription_id="00000000-0000-0000-0000-000000000000",
        tenant_id="11111111-1111-1111-1111-111111111111",
        aks_subnet_id="/subscriptions/0/resourceGroups/team-rg/providers/Microsoft.Network/virtualNetworks/v/subnets/aks",
        control_plane_identity_id=f"{ids}/control-plane",
        kubelet_identity=KubeletIdentity(resource_id=f"{ids}/kubelet", client_id="c", object_id="o"),
        workload_identities={k: WorkloadIdentity(name=f"id-{k}", resource_group_name="team-rg",
                                                 resource_id=f"{ids}/id-{k}", client_id=f"c-{k}", principal_id=f"p-{k}")
                             for k in sorted(settings.aks_deployments())},
        log_analytics_workspace_id="/subscriptions/0/resourceGroups/team-rg/providers/"
        "Microsoft.OperationalInsights/workspaces/team-law")
    state = _same_registrations(InferenceCluster, args, {}, {})
    assert state["clusterName"]


def test_edge_device_construct_registers_what_the_python_program_registers() -> None:
    """A Kubernetes-delivered fleet (k3s at a shop): its own cluster provider, namespace, DaemonSet."""
    from components.edge_device import EdgeDevice, EdgeDeviceArgs
    from tests.edge.fleets import make_settings as edge_settings

    s = edge_settings()
    fleet = s.edge.fleets["shop"]
    args = EdgeDeviceArgs(fleet_name="shop", fleet=fleet, device_class_name=fleet.device_class,
                          device_class=s.edge.device_classes[fleet.device_class], model_id=fleet.model,
                          model=s.models[fleet.model], kubeconfig="placeholder", engine_api_key="placeholder",
                          digest_pinning_required=False)
    kubeconfig = "apiVersion: v1\nkind: Config\nusers: [{name: edge, user: {token: kube-secret-token}}]\n"
    state = _same_registrations(EdgeDevice, args, {"kubeconfig": _secret(kubeconfig),
                                                   "engineApiKey": _secret(SECRETS["engine"])},
                                {"kubeconfig": kubeconfig, "engine_api_key": SECRETS["engine"]})
    assert state["delivery"] == "kubernetes"


def test_construct_reports_a_bad_input_by_field() -> None:
    """A consumer's mistake comes back as the component's own message, not a traceback of ours."""
    args = dataclasses.replace(_args(MonitoringMode.AZURE_MANAGED), azure=None)
    with pytest.raises(Exception, match=r"azure: required in azure-managed mode"):
        _construct(args)


def test_the_served_schema_is_the_committed_one() -> None:
    with MonitorServer(project=PROJECT, stack=STACK) as engine, Provider(engine.address) as provider:
        served = json.loads(provider.stub.GetSchema(provider_pb2.GetSchemaRequest(version=0)).schema)
    assert served == json.loads(SCHEMA.read_text(encoding="utf-8"))
