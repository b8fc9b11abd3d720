"""Gated Hugging Face models download with a token that comes from a Secret, never an env literal (D10)."""

from __future__ import annotations

from stack_support import stack_settings

from components.domain import VllmDeployment
from components.engines.vllm import HF_TOKEN_SECRET_KEY, vllm_container
from policies.rules.catalog import VM_SKUS
from stacks.settings import EnvironmentSettings


def _container(model_id: str):  # type: ignore[no-untyped-def]
    settings = EnvironmentSettings.model_validate(stack_settings("prod"))
    dep = settings.deployments[model_id]
    assert isinstance(dep, VllmDeployment)
    return vllm_container(model_id, dep, settings.models[dep.model], VM_SKUS["Standard_NC24ads_A100_v4"],
                          api_key_secret="engine-api-key")


def test_gated_model_reads_hf_token_from_the_serving_secret() -> None:
    spec = _container("gemma-3-4b")
    hf = [s for s in spec.secret_env if s.name == "HF_TOKEN"]
    assert [(s.secret_name, s.key) for s in hf] == [("engine-api-key", HF_TOKEN_SECRET_KEY)]
    assert "HF_TOKEN" not in spec.env  # never a literal


def test_open_model_gets_no_token() -> None:
    assert [s.name for s in _container("phi-4-mini").secret_env] == ["VLLM_API_KEY"]
