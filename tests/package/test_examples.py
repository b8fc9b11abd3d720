"""The examples outside our stacks: a Python program of its own, and a Pulumi YAML one using the package."""

from __future__ import annotations

import ast
import json
import runpy
from pathlib import Path
from typing import Any

import yaml

from slmctl.recorder import Recording, record
from tests.monitoring.support import _MODEL

ROOT = Path(__file__).resolve().parents[2]
EXISTING_AKS = ROOT / "examples" / "existing-aks"
PROJECT = "existing-aks-monitoring"
KUBECONFIG = "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n"
MODELS = {"phi-4-mini": _MODEL}
DEPLOYMENTS = {"phi-vllm": {"target": "vllm", "model": "phi-4-mini", "max_model_len_tokens": 8192,
                            "slo": {"ttft_p95_seconds": 1.0}},
               "phi-ollama": {"target": "ollama", "model": "phi-4-mini"}}
AZURE = {"resourceGroupName": "team-rg", "location": "swedencentral",
         "subscriptionId": "00000000-0000-0000-0000-000000000000",
         "clusterId": "/subscriptions/0/resourceGroups/team-rg/providers/Microsoft.ContainerService/managedClusters/team",
         "clusterName": "team", "logAnalyticsWorkspaceId": "/subscriptions/0/resourceGroups/team-rg/providers/"
         "Microsoft.OperationalInsights/workspaces/team-law"}


def _plan(**extra: Any) -> Recording:
    config = {f"{PROJECT}:kubeconfig": KUBECONFIG, f"{PROJECT}:models": json.dumps(MODELS),
              f"{PROJECT}:deployments": json.dumps(DEPLOYMENTS), f"{PROJECT}:gatewayHostname": "models.contoso.example",
              f"{PROJECT}:engineApiKey": "sk-engine-stand-in",
              f"{PROJECT}:alertWebhookUrl": "https://hooks.example/T0/secret",
              f"{PROJECT}:grafanaAdminPassword": "correct-horse-battery-staple"}
    config |= {f"{PROJECT}:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in extra.items()}
    secrets = [f"{PROJECT}:kubeconfig", f"{PROJECT}:alertWebhookUrl", f"{PROJECT}:grafanaAdminPassword",
               f"{PROJECT}:engineApiKey"]
    return record(lambda: runpy.run_path(str(EXISTING_AKS / "__main__.py"), run_name="__main__"),
                  project=PROJECT, stack="dev", config=config, secret_keys=secrets)


def test_the_python_example_imports_nothing_of_our_stacks() -> None:
    imported: set[str] = set()
    for path in (ROOT / "examples").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module.split(".")[0])
            elif isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
    assert imported & {"stacks", "slmctl", "policies"} == set(), imported
    assert "components" in imported


def test_existing_aks_example_plans_on_the_given_cluster() -> None:
    rec = _plan()
    (serving,) = rec.by_type("slm:compute:ServingWorkloads")
    (monitoring,) = rec.by_type("slm:monitoring:MonitoringStack")
    (cluster,) = [r for r in rec.registrations if r.type == "pulumi:providers:kubernetes" and r.name == "existing-aks"]
    kube = [r for r in rec.registrations if r.type.startswith("kubernetes:")]
    assert {r.name for r in rec.by_type("kubernetes:apps/v1:Deployment")} == {"serving-phi-vllm-deploy", "serving-phi-ollama-deploy"}
    # Every Kubernetes object goes to the cluster of the given kubeconfig, under one of the two components.
    assert {r.provider.rsplit("::", 1)[0] for r in kube} == {cluster.urn}
    components = {r.urn for r in rec.registrations if not r.custom}
    assert {serving.urn, monitoring.urn} <= components
    assert all(r.parent in components for r in kube)
    # The ServiceMonitor scrapes the Service ServingWorkloads created for the vLLM model: same namespace,
    # labels it selects, the port it serves metrics on. Ollama (no /metrics) is not scraped.
    monitors = {r.name: r.inputs for r in rec.by_type("kubernetes:monitoring.coreos.com/v1:ServiceMonitor")}
    assert set(monitors) == {"monitoring-sm-phi-vllm", "monitoring-sm-dcgm"}
    monitor = monitors["monitoring-sm-phi-vllm"]["spec"]
    (service,) = [r.inputs for r in rec.by_type("kubernetes:core/v1:Service")
                  if r.inputs["metadata"]["name"] == "phi-vllm"]
    assert monitor["namespaceSelector"] == {"matchNames": [service["metadata"]["namespace"]]}
    assert monitor["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    (deployment,) = [r.inputs for r in rec.by_type("kubernetes:apps/v1:Deployment") if r.name == "serving-phi-vllm-deploy"]
    ports = {p["containerPort"]: p.get("name") for c in deployment["spec"]["template"]["spec"]["containers"]
             for p in c.get("ports", [])}
    assert monitor["endpoints"][0]["targetPort"] in ports, "the monitor scrapes a port the vLLM container serves"
    assert not [r for r in rec.registrations if r.type.startswith("azure-native:")], "no Azure side without azure"
    rules = {r.name: r.inputs for r in rec.by_type("kubernetes:monitoring.coreos.com/v1:PrometheusRule")}
    ttft = next(x for g in rules["monitoring-rules-slm-serving-phi-vllm"]["spec"]["groups"] for x in g["rules"]
                if x.get("alert") == "SlmTtftP95AboveSlo")
    assert ttft["expr"].endswith("> 1"), "the example's own SLO"
    assert rec.outputs["grafana_endpoint"] == "http://kps-grafana.monitoring.svc.cluster.local"


def test_existing_aks_example_managed_mode_uses_the_given_azure_ids() -> None:
    rec = _plan(mode="azure-managed", azure=AZURE)
    assert "monitoring-kps" not in {r.name for r in rec.by_type("kubernetes:helm.sh/v3:Release")}
    associations = rec.by_type("azure-native:monitor:DataCollectionRuleAssociation")
    assert len(associations) == 3, "Prometheus rule + endpoint, Container Insights"
    assert {a.inputs["resourceUri"] for a in associations} == {AZURE["clusterId"]}
    (grafana,) = rec.by_type("azure-native:dashboard:Grafana")
    assert grafana.inputs["resourceGroupName"] == "team-rg"
    assert grafana.inputs["workspaceName"] == "team-grafana"


YAML_EXAMPLE = ROOT / "examples" / "yaml" / "Pulumi.yaml"
SCHEMA = json.loads((ROOT / "components" / "package" / "schema.json").read_text(encoding="utf-8"))


def _check_object(value: Any, spec: dict[str, Any], path: str, problems: list[str]) -> None:
    """``value`` against a schema object type: every key a property, every required one present."""
    props = spec.get("inputProperties", spec.get("properties", {}))
    required = spec.get("requiredInputs", spec.get("required", []))
    problems += [f"{path}: missing required {k}" for k in required if k not in value]
    for key, item in value.items():
        if key not in props:
            problems.append(f"{path}.{key}: not a property of the schema")
            continue
        _check_value(item, props[key], f"{path}.{key}", problems)


def _check_value(value: Any, prop: dict[str, Any], path: str, problems: list[str]) -> None:
    if isinstance(value, str) and value.startswith("${"):
        return  # an interpolation: its type is the referenced output's
    if "$ref" in prop and prop["$ref"].startswith("#/types/"):
        typ = SCHEMA["types"][prop["$ref"].removeprefix("#/types/")]
        if "enum" in typ:
            if value not in {e["value"] for e in typ["enum"]}:
                problems.append(f"{path}: {value!r} is not one of the enum's values")
        elif isinstance(value, dict):
            _check_object(value, typ, path, problems)
        else:
            problems.append(f"{path}: expected an object")
    elif prop.get("type") == "object" and "additionalProperties" in prop and isinstance(value, dict):
        for key, item in value.items():
            _check_value(item, prop["additionalProperties"], f"{path}.{key}", problems)
    elif prop.get("type") == "array" and isinstance(value, list):
        for i, item in enumerate(value):
            _check_value(item, prop["items"], f"{path}[{i}]", problems)
    elif prop.get("type") in {"integer", "number"} and not isinstance(value, int | float):
        problems.append(f"{path}: expected a number")


def test_yaml_example_uses_only_types_and_properties_of_the_schema() -> None:
    program = yaml.safe_load(YAML_EXAMPLE.read_text(encoding="utf-8"))
    assert "slm" in program.get("packages", {}), "the program declares the package it uses"
    problems: list[str] = []
    used = [(n, r) for n, r in program["resources"].items() if r["type"].startswith("slm:")]
    assert used, "the example uses the package"
    for name, resource in used:
        spec = SCHEMA["resources"].get(resource["type"])
        if spec is None:
            problems.append(f"resources.{name}.type: {resource['type']} is not in the schema")
            continue
        _check_object(resource.get("properties", {}), spec, f"resources.{name}.properties", problems)
    for key, expr in program.get("outputs", {}).items():
        target, _, prop = expr.strip("${}").partition(".")
        resource = program["resources"].get(target, {})
        outputs = SCHEMA["resources"].get(resource.get("type", ""), {}).get("properties", {})
        if resource.get("type", "").startswith("slm:") and prop not in outputs:
            problems.append(f"outputs.{key}: {prop} is not an output of {resource['type']}")
    assert problems == []


def test_the_yaml_check_catches_a_wrong_property() -> None:
    """The check above can fail: a misspelt property and a wrong enum value are reported."""
    problems: list[str] = []
    _check_object({"models": {}, "mod": "in-cluster"}, SCHEMA["resources"]["slm:index:MonitoringStack"], "p", problems)
    _check_object({"models": {}, "mode": "cloud"}, SCHEMA["resources"]["slm:index:MonitoringStack"], "q", problems)
    assert problems == ["p.mod: not a property of the schema", "q.mode: 'cloud' is not one of the enum's values"]



def test_yaml_example_interpolations_name_outputs_of_the_schema() -> None:
    """``${serving.workloads["phi-vllm"].port}``: the resource exists, the output and its field are in the schema."""
    import re

    program = yaml.safe_load(YAML_EXAMPLE.read_text(encoding="utf-8"))
    text = YAML_EXAMPLE.read_text(encoding="utf-8")
    found = re.findall(r'\$\{(\w+)\.(\w+)\["[^"]+"\]\.(\w+)\}', text)
    assert found, "the monitoring is wired to the serving workloads' outputs"
    for resource, output, field in found:
        spec = SCHEMA["resources"][program["resources"][resource]["type"]]["properties"][output]
        item = SCHEMA["types"][spec["additionalProperties"]["$ref"].removeprefix("#/types/")]
        assert field in item["properties"], f"{resource}.{output}[...].{field}"


def test_yaml_example_deployments_pass_constructs_validation() -> None:
    """The YAML's ``deployments`` (one object type for every kind) become the real kinds in Construct."""
    from components.domain import OllamaDeployment, VllmDeployment
    from components.package import SlmComponentProvider, exported_components

    program = yaml.safe_load(YAML_EXAMPLE.read_text(encoding="utf-8"))
    props = {k: v for k, v in program["resources"]["serving"]["properties"].items()
             if not (isinstance(v, str) and v.startswith("${"))}
    provider = SlmComponentProvider(exported_components())
    args = provider.map_inputs(props, provider._component_defs["ServingWorkloads"])
    assert isinstance(args.deployments["phi-vllm"], VllmDeployment)
    assert args.deployments["phi-vllm"].max_model_len_tokens == 8192
    assert isinstance(args.deployments["phi-ollama"], OllamaDeployment)
    assert args.deployments["phi-ollama"].num_parallel == 4
