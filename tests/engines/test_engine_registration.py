"""An engine is one registration (``components.domain.engines.ENGINES``) and every table follows from it.

The safety net of docs/adding-an-engine.md: the only places a new engine must be named besides its
registration are its deployment class and pydantic's static ``Deployment`` / ``AksDeployment`` unions
(``components/domain/deployments.py``); each assertion names the place that was forgotten, instead of a
``KeyError`` at plan time. Everything else (artifact kinds, metrics tables, the fleet ``engine`` enum of
the stack schema, the cluster adapter dispatch, ports) is derived, and checked here to be derived.
"""

from __future__ import annotations

import argparse
import typing

import pytest

from components import domain
from components.domain.engines import CLUSTER_ENGINES, EDGE_ENGINES, ENGINES, EngineRegistration
from components.engines import container_for
from components.monitoring import metrics
from stacks import settings
from tests.inference.builders import MODELS


def _members(union: object) -> list[type]:
    args = typing.get_args(union)
    if args and typing.get_origin(union) is typing.Annotated:
        return _members(args[0])
    return list(args)


def _target(model: type) -> str:
    (literal,) = typing.get_args(model.model_fields["target"].annotation)  # type: ignore[attr-defined]
    return str(literal)


DEPLOYMENTS = _members(domain.Deployment)
WITH_DEPLOYMENT = [e for e in ENGINES.values() if e.deployment is not None]


def _name(engine: EngineRegistration) -> str:
    return engine.name


@pytest.mark.parametrize("model", DEPLOYMENTS, ids=_target)
def test_each_deployment_kind_is_registered_under_its_target(model: type) -> None:
    engine = ENGINES.get(_target(model))
    assert engine is not None, f"register {_target(model)!r} in components/domain/engines.py ENGINES"
    assert engine.deployment is model, f"set deployment={model.__name__} on its registration"


@pytest.mark.parametrize("engine", WITH_DEPLOYMENT, ids=_name)
def test_each_registered_deployment_is_in_the_unions(engine: EngineRegistration) -> None:
    assert engine.deployment is not None
    cls = engine.deployment.__name__
    assert engine.deployment in DEPLOYMENTS, f"add {cls} to the Deployment union in components/domain/deployments.py"
    assert _target(engine.deployment) == engine.name, f"{cls}.target must be Literal[{engine.name!r}]"
    on_cluster = "cluster" in engine.runs_on
    assert (engine.deployment in _members(domain.AksDeployment)) is on_cluster, (
        f"{cls} belongs in the AksDeployment union of components/domain/deployments.py exactly when the "
        "engine runs on a cluster (ports['cluster'])")
    assert issubclass(engine.deployment, domain.AksServing) is on_cluster, (
        f"a cluster engine's deployment subclasses AksServing (model, pool, replicas, slo, image); {cls}")


@pytest.mark.parametrize("engine", list(ENGINES.values()), ids=_name)
def test_each_registration_is_complete(engine: EngineRegistration) -> None:
    assert engine.artifact in domain.ModelArtifacts.model_fields, "artifact must be a ModelArtifacts field"
    assert engine.runs_on, "give it a port for 'cluster' and/or 'edge', or managed=True"
    assert not (engine.managed and engine.ports), "a managed deployment runs no container of ours: no ports"
    if "cluster" in engine.runs_on:
        assert engine.deployment is not None, "a cluster engine needs its deployment kind (deployment=...)"
        hint = "a cluster engine needs metrics=EngineMetrics(engine=<name>, ...) (all None without /metrics)"
        assert engine.metrics is not None, hint
        assert engine.metrics.engine == engine.name, hint
        assert callable(engine.resolve_adapter()), "adapter must name 'module:function' of its cluster adapter"
    if engine.args_parser is not None:
        build = engine.resolve_args_parser()
        assert build is not None
        assert isinstance(build(), argparse.ArgumentParser), "args_parser must name a function returning a parser"


def test_the_tables_are_derived_from_the_registrations() -> None:
    cluster = [e.name for e in CLUSTER_ENGINES]
    assert list(metrics.ENGINE_METRICS) == cluster
    assert {k: v for k, v in metrics.KNOWN_METRICS.items() if k in ENGINES} == {e.name: e.series for e in
                                                                                  CLUSTER_ENGINES}
    assert {e.name: e.artifact for e in WITH_DEPLOYMENT} == domain.DEPLOYMENT_ARTIFACT
    assert {n: ENGINES[n].artifact for n in EDGE_ENGINES} == domain.EDGE_ENGINE_ARTIFACT
    fleet_engine = settings.EnvironmentSettings.model_json_schema()["$defs"]["Fleet"]["properties"]["engine"]
    assert fleet_engine["anyOf"][0]["enum"] == list(EDGE_ENGINES), "the stack schema's fleet engines"


@pytest.mark.parametrize("engine", CLUSTER_ENGINES, ids=_name)
def test_container_for_dispatches_to_the_registered_adapter(engine: EngineRegistration) -> None:
    assert engine.deployment is not None
    dep = engine.deployment.model_validate({"target": engine.name, "model": "phi-4-mini"})
    model = domain.ModelSpec.model_validate(MODELS["phi-4-mini"])
    spec = container_for("probe", dep, model, domain.VM_SKUS["Standard_NC4as_T4_v3"],  # type: ignore[arg-type]
                         api_key_secret="probe-key", onnx_server_image="registry.example/onnx@sha256:" + "b" * 64)
    # The engine listens on its registered port; one that checks no key gets a gate holding the pod's port.
    assert (spec.engine, spec.engine_port) == (engine.name, engine.ports["cluster"])
    assert spec.supports_api_key is engine.enforces_api_key
    assert spec.gated
    assert (spec.auth_proxy is None) is engine.enforces_api_key


def test_a_managed_target_is_not_a_workload() -> None:
    foundry = domain.FoundryDeployment.model_validate({"target": "foundry", "model": "phi-4-mini"})
    model = domain.ModelSpec.model_validate(MODELS["phi-4-mini"])
    with pytest.raises(TypeError, match="'foundry' is not a cluster workload"):
        container_for("managed", foundry, model, None, api_key_secret="k")  # type: ignore[arg-type]


def test_an_unregistered_target_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from stack_support import stack_settings

    monkeypatch.setattr(settings, "DEPLOYMENT_ARTIFACT", {"foundry": "foundry"})
    with pytest.raises(ValueError, match=r"'vllm' is not registered in components/domain/engines.py ENGINES"):
        settings.EnvironmentSettings.model_validate(stack_settings("dev"))


def test_a_gpu_only_registration_is_refused_on_a_cpu_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CPU-pool refusal follows ``gpu_only``, not the engine's name: Ollama registered as CUDA-only is
    refused on dev's CPU pool with its own title and the CPU engines that remain."""
    import dataclasses

    from stack_support import stack_settings

    raw = stack_settings("dev")
    raw["cluster"]["pools"]["cpu"] = {"vm_size": "Standard_E16ds_v5", "max_count": 1}
    raw["models"]["phi-4-mini"]["artifacts"]["gguf"] = {"ollama_tag": "phi4-mini:3.8b-q4_K_M"}
    raw["deployments"]["phi-ollama"] = {"target": "ollama", "model": "phi-4-mini", "pool": "cpu"}
    settings.EnvironmentSettings.model_validate(raw)  # a CPU engine on a CPU pool is fine
    monkeypatch.setitem(ENGINES, "ollama", dataclasses.replace(ENGINES["ollama"], gpu_only=True))  # type: ignore[arg-type]
    monkeypatch.setattr(settings, "CPU_CLUSTER_ENGINES", ("onnx-genai",))
    with pytest.raises(ValueError, match=r"deployments\.phi-ollama\.pool: 'cpu' is a CPU pool \(Standard_E16ds_v5\) "
                                         r"and the Ollama image is CUDA-only \(seed defect D3\); use a GPU pool, "
                                         r"or target 'onnx-genai' for CPU serving"):
        settings.EnvironmentSettings.model_validate(raw)
