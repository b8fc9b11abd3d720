"""Impossible or unsafe inputs fail before any resource is declared, with the fix in the message."""

from __future__ import annotations

import dataclasses
from typing import Any

import pydantic
import pytest

from components.inference_cluster import InferenceCluster
from slmctl.recorder import record
from stacks.settings import EnvironmentSettings
from tests.inference.builders import deploy, identities, make_cluster_args, make_settings, settings_dict


def construct(settings: EnvironmentSettings, **overrides: Any) -> None:
    """Build the components inside a recorded program (Outputs need the mock runtime)."""
    record(lambda: deploy(settings, **overrides))


class TestComponentErrors:
    def test_public_api_server_without_authorized_ranges_is_rejected(self) -> None:
        with pytest.raises(pydantic.ValidationError,
                           match=r"list your office/CI CIDRs or set cluster\.private_api_server"):
            make_settings("dev", cluster={"authorized_ip_ranges": []})

    def test_the_component_refuses_a_public_api_server_open_to_all(self) -> None:
        # Another program's args (the stack file's validation never gets that far).
        args = dataclasses.replace(make_cluster_args(make_settings("dev")), private_api_server=False,
                                   authorized_ip_ranges=[])
        with pytest.raises(ValueError, match=r"authorized_ip_ranges: empty on a public API server would open it"):
            record(lambda: InferenceCluster("serving", args))

    def test_workload_without_identity_is_rejected(self) -> None:
        settings = make_settings("dev")
        client_ids = {k: v.client_id for k, v in identities(settings).items() if k != "phi4"}
        with pytest.raises(ValueError, match=r"no identity for deployment\(s\) phi4"):
            construct(settings, workload_identity_client_ids=client_ids)

    def test_dev_gpu_pool_must_scale_to_zero(self) -> None:
        settings = make_settings("dev", cluster={"pools": {"gpu": {"min_count": 1}}})
        with pytest.raises(ValueError, match=r"cluster\.pools\.gpu\.min_count: 1 keeps GPU nodes running in dev"):
            construct(settings)

    def test_prod_needs_the_ollama_gate_image_by_digest(self) -> None:
        doc = settings_dict("prod")
        del doc["deployments"]["phi4-ollama"]["auth_proxy_image"]  # the default is nginx's tag, not a digest
        with pytest.raises(ValueError, match=r"deployments\.phi4-ollama\.auth_proxy_image: nginx:1\.28\.0-alpine is "
                                             r"not pinned by digest"):
            construct(EnvironmentSettings.model_validate(doc))
        doc["deployments"]["phi4-ollama"]["auth_proxy_image"] = "nginx:1.28.0-alpine"  # a tag, refused at load
        with pytest.raises(pydantic.ValidationError, match=r"deployments\.phi4-ollama\.auth_proxy_image: "
                                                           r"'nginx:1\.28\.0-alpine' is not pinned by digest"):
            EnvironmentSettings.model_validate(doc)

    def test_prod_rejects_a_tag_only_default_image(self) -> None:
        doc = settings_dict("prod")
        del doc["deployments"]["phi4-ollama"]["image"]
        settings = EnvironmentSettings.model_validate(doc)
        with pytest.raises(ValueError, match=r"ollama/ollama:0\.12\.6 is not pinned by digest"):
            construct(settings)

    def test_local_without_an_api_key_names_the_workloads_that_need_it(self) -> None:
        settings = make_settings("local")
        with pytest.raises(ValueError, match="engine_api_key: required for phi4, phi4-ollama, phi4-onnx without key_vault"):
            construct(settings, engine_api_key=None)

    def test_onnx_without_an_image_names_the_fix(self) -> None:
        settings = make_settings("local")
        with pytest.raises(ValueError, match="pass onnx_server_image"):
            construct(settings, onnx_server_image=None)


class TestMemoryFitErrors:
    """The settings refuse deployments that cannot start, saying what to lower or which SKU fits."""

    def test_context_too_large_for_the_gpu_names_the_limit_and_fitting_skus(self) -> None:
        with pytest.raises(pydantic.ValidationError) as info:
            make_settings("dev", deployments={"phi4": {"max_model_len_tokens": 131072}})
        message = str(info.value)
        assert "does not fit one T4 (16 GiB) of pool 'gpu' at max_model_len_tokens=131072" in message
        assert "lower it to at most" in message
        assert "a GPU that fits: Standard_NC24ads_A100_v4" in message

    def test_too_many_sequences_names_the_maximum(self) -> None:
        with pytest.raises(pydantic.ValidationError, match=r"max_num_seqs: 64 sequences .* so use at most \d+"):
            make_settings("dev", deployments={"phi4": {"max_num_seqs": 64}})

    def test_cpu_pool_too_small_for_ollama_says_lower_context_or_larger_vm(self) -> None:
        with pytest.raises(pydantic.ValidationError, match="lower context_tokens or choose a larger vm_size"):
            make_settings("dev", cluster={"pools": {"cpu": {"vm_size": "Standard_D2ds_v5"}}},
                          deployments={"phi4-ollama": {"context_tokens": 131072}})

    def test_vllm_on_a_cpu_pool_is_rejected_as_d3(self) -> None:
        with pytest.raises(pydantic.ValidationError, match="CUDA-only \\(seed defect D3\\)"):
            make_settings("dev", deployments={"phi4": {"pool": "cpu"}})
