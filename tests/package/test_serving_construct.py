"""``ServingWorkloads`` through the package: its union of deployment kinds as one object type (issue 16).

A Pulumi schema has no tagged unions, so the package types ``deployments`` as one ``AksDeployment`` object
(``target`` an enum of the kinds, every kind's fields optional properties); ``Construct`` rebuilds the
real pydantic kind from it. Proven over the provider gRPC protocol, as ``test_construct`` does for the
other components: the same children as the Python program, and a wrong combination refused before any
registration, with the field, the value and the fix.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from google.protobuf import json_format, struct_pb2
from pulumi.runtime.proto import provider_pb2

from components.domain import ModelSpec, OllamaDeployment, OnnxGenAIDeployment, Replicas, VllmDeployment
from components.serving_workloads import (
    ClusterAddons,
    KeyVaultSecrets,
    ServingWorkloads,
    ServingWorkloadsArgs,
)
from stacks.serving import workloads_args
from tests.monitoring.support import _MODEL, stack_settings
from tests.package.engine_double import MonitorServer, Provider
from tests.package.test_construct import PROJECT, SCHEMA, SECRETS, STACK, _same_registrations, _secret, _wire

TOKEN = "slm:index:ServingWorkloads"


def _every_kind() -> ServingWorkloadsArgs:
    """One deployment of each kind on a laptop cluster, each with fields only its kind has."""
    return ServingWorkloadsArgs(
        deployments={
            "phi-vllm": VllmDeployment(target="vllm", model="phi-4-mini", max_model_len_tokens=8192,
                                       max_num_seqs=16, replicas=Replicas(min=0, max=1)),
            "phi-ollama": OllamaDeployment(target="ollama", model="phi-4-mini", num_parallel=4,
                                           context_tokens=4096),
            "phi-onnx": OnnxGenAIDeployment(target="onnx-genai", model="phi-4-mini", context_tokens=2048)},
        models={"phi-4-mini": ModelSpec.model_validate(_MODEL)}, gateway_hostname="models.contoso.example", kube_context="kind-team",
        addons=ClusterAddons.INSTALL, onnx_server_image="ghcr.io/contoso/onnx-server:1.0.0",
        engine_api_key="placeholder")


def _staging() -> ServingWorkloadsArgs:
    """The staging stack's workloads: a GPU pool, secrets from a Key Vault, workload identities."""
    settings = stack_settings("staging")
    return workloads_args(
        settings, kube_context="team-aks",
        workload_identity_client_ids={k: f"client-{k}" for k in settings.aks_deployments()},
        key_vault=KeyVaultSecrets(vault_name="team-kv", tenant_id="11111111-1111-1111-1111-111111111111",
                                  engine_api_key_secret_name="engine-api-key"),
        model_fill_image="teamacr.azurecr.io/model-fill:1.0.0",
        prometheus_identity_client_id="keda-client")


def test_schema_types_deployments_as_one_object_of_the_kinds() -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    deployments = schema["resources"][TOKEN]["inputProperties"]["deployments"]
    assert deployments["additionalProperties"]["$ref"] == "#/types/slm:index:AksDeployment"
    kind = schema["types"]["slm:index:AksDeployment"]
    assert [e["value"] for e in schema["types"]["slm:index:AksDeploymentTarget"]["enum"]] == [
        "vllm", "ollama", "onnx-genai"]
    assert kind["properties"]["target"]["$ref"] == "#/types/slm:index:AksDeploymentTarget"
    assert sorted(kind["required"]) == ["model", "target"], "required by every kind; the rest depends on it"
    fields = {n for m in (VllmDeployment, OllamaDeployment, OnnxGenAIDeployment) for n in m.model_fields}
    assert len(kind["properties"]) == len(fields), "every kind's every field, once"
    assert "Applies to vllm only." in kind["properties"]["maxNumSeqs"]["description"]
    assert "Applies to ollama, onnx-genai only. Default: 8192 (ollama), 4096 (onnx-genai)." in (
        kind["properties"]["contextTokens"]["description"])
    assert "Applies to every kind." in kind["properties"]["pool"]["description"]


@pytest.mark.parametrize("case", [_every_kind, _staging], ids=lambda c: c.__name__.strip("_"))
def test_serving_construct_registers_what_the_python_program_registers(case: Any) -> None:
    args = case()
    wire = {} if args.engine_api_key is None else {"engineApiKey": _secret(SECRETS["engine"])}
    python = {} if args.engine_api_key is None else {"engine_api_key": SECRETS["engine"]}
    state = _same_registrations(ServingWorkloads, args, wire, python)
    assert set(state["workloads"]) == set(args.deployments)
    for name, dep in args.deployments.items():
        assert state["workloads"][name]["engine"] == dep.target


def _refused(deployments: dict[str, Any]) -> tuple[str, list[Any]]:
    """Construct with these wire ``deployments``: the error text, and what the provider registered."""
    inputs = _wire(_every_kind()) | {"deployments": deployments, "engineApiKey": _secret(SECRETS["engine"])}
    with MonitorServer(project=PROJECT, stack=STACK) as engine, Provider(engine.address) as provider:
        provider.stub.Configure(provider_pb2.ConfigureRequest(acceptSecrets=True, acceptResources=True))
        with pytest.raises(Exception) as refused:  # noqa: PT011 (grpc's error; the text is what is checked)
            provider.stub.Construct(provider_pb2.ConstructRequest(
                project=PROJECT, stack=STACK, organization="organization", monitorEndpoint=engine.address,
                type=TOKEN, name="serving", parent=engine.stack_urn,
                inputs=json_format.ParseDict(inputs, struct_pb2.Struct()), dryRun=False, parallel=4))
        return str(refused.value), list(engine.registrations)


@pytest.mark.parametrize(("deployment", "expected"), [
    ({"target": "vllm", "model": "phi-4-mini", "numParallel": 4},
     "deployments.phi.numParallel=4: applies to ollama only, not vllm; remove it, or set target to ollama"),
    ({"target": "foundry", "model": "phi-4-mini"},
     "deployments.phi.target: Invalid value foundry of type <class 'str'> for enum 'AksDeploymentTarget'; "
     "use one of vllm, ollama, onnx-genai"),
    ({"target": "vllm", "model": "phi-4-mini", "gpuMemoryUtilization": 0.99},
     "deployments.phi.gpuMemoryUtilization=0.99: Input should be less than or equal to 0.95"),
    ({"target": "ollama", "model": "phi-4-mini", "replicas": {"min": 3, "max": 1}},
     "deployments.phi.replicas={'min': 3, 'max': 1}: Value error, min=3 is greater than max=1; raise max or lower min")], ids=["field-of-another-kind", "unknown-kind", "out-of-bounds", "min-over-max"])
def test_a_wrong_kind_field_combination_is_refused_before_any_registration(deployment: dict[str, Any],
                                                                          expected: str) -> None:
    message, registered = _refused({"phi": deployment})
    assert expected in message
    assert registered == [], "nothing registered: not the component, not a child"
