"""Every deployment target is registered everywhere an engine must be (docs/adding-an-engine.md, in order).

Adding an engine touches several modules; this test names the one that was forgotten instead of a
KeyError at plan time.
"""

from __future__ import annotations

import typing

import pytest

from components import domain
from components.engines import spec
from components.monitoring import metrics
from stacks import settings


def _members(union: object) -> list[type]:
    args = typing.get_args(union)
    if args and typing.get_origin(union) is typing.Annotated:
        return _members(args[0])
    return list(args)


def _target(model: type) -> str:
    (literal,) = typing.get_args(model.model_fields["target"].annotation)  # type: ignore[attr-defined]
    return str(literal)


DEPLOYMENTS = _members(domain.Deployment)
AKS = [m for m in DEPLOYMENTS if issubclass(m, domain.AksServing)]


@pytest.mark.parametrize("model", DEPLOYMENTS, ids=_target)
def test_each_target_names_the_artifact_it_serves(model: type) -> None:
    artifact = domain.DEPLOYMENT_ARTIFACT.get(_target(model))
    assert artifact in domain.ModelArtifacts.model_fields, "add it to components/domain/deployments.py DEPLOYMENT_ARTIFACT"


@pytest.mark.parametrize("model", AKS, ids=_target)
def test_each_cluster_engine_is_registered_everywhere(model: type) -> None:
    target = _target(model)
    assert model in _members(domain.AksDeployment), "add it to components/domain/deployments.py AksDeployment"
    assert target in typing.get_args(spec.Engine), "add it to components/engines/spec.py Engine"
    assert target in typing.get_args(metrics.Engine), "add it to components/monitoring/metrics.py Engine"
    assert target in metrics.ENGINE_METRICS, "add it to components/monitoring/metrics.py ENGINE_METRICS"
    assert target in metrics.KNOWN_METRICS, "add it to components/monitoring/metrics.py KNOWN_METRICS"


def test_a_target_without_an_artifact_kind_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from stack_support import stack_settings

    monkeypatch.setattr(settings, "DEPLOYMENT_ARTIFACT", {"foundry": "foundry"})
    with pytest.raises(ValueError, match=r"'vllm' has no artifact kind in components/domain/deployments.py DEPLOYMENT_ARTIFACT"):
        settings.EnvironmentSettings.model_validate(stack_settings("dev"))
