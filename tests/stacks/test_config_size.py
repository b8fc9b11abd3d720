"""A stack config the Pulumi engine cannot start the program with is bad input, found before planning.

The Python language host and the policy-pack host both pass the whole config in one environment variable,
``PULUMI_CONFIG``; Linux refuses exec with E2BIG above 131,072 bytes for one ``NAME=value`` string. An offline
plan that accepted such a stack would PASS something ``pulumi preview`` cannot even run.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from benchmarks import generated_stacks
from components.engines.vllm import PINNED_IMAGE
from slmctl.errors import classify
from slmctl.loader import ENV_STRING_MAX, StackFileError, config_variable_bytes, load_stack_file

KEY = generated_stacks.KEY


def _with_images(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with each vLLM deployment naming the prod default image explicitly (the same plan)."""
    doc = copy.deepcopy(doc)
    for dep in doc["config"][KEY]["deployments"].values():
        if dep.get("target") == "vllm":
            dep["image"] = PINNED_IMAGE
    return doc


def test_a_config_too_large_for_the_engine_is_one_input_error(tmp_path: Path) -> None:
    path = generated_stacks.write(_with_images(generated_stacks.vllm_settings(490)), tmp_path)
    with pytest.raises(StackFileError) as err:
        load_stack_file(path)
    code, lines = classify(err.value)
    assert (code, len(lines)) == (2, 1)
    assert "bytes as PULUMI_CONFIG, above the 131,072 bytes Linux passes in one environment variable" in lines[0]
    assert lines[0].startswith(str(path))
    assert "split the stack" in lines[0]


def test_the_same_deployments_without_the_default_image_fit(tmp_path: Path) -> None:
    """The 10,000-resource benchmark stack: 490 deployments leave the default image out and are accepted."""
    loaded = load_stack_file(generated_stacks.write(generated_stacks.vllm_settings(490), tmp_path))
    assert len(loaded.settings.deployments) == 491
    assert config_variable_bytes(loaded.config) < ENV_STRING_MAX
    assert all(d.image is None for d in loaded.settings.deployments.values() if d.target == "vllm")


def test_a_secret_counts_at_its_encrypted_size_not_the_placeholder(tmp_path: Path) -> None:
    """Offline a secret is a short placeholder; under the engine it is its plaintext, which its ciphertext
    in the file bounds. A stack that fits only with placeholders is refused."""
    doc = generated_stacks.vllm_settings(1)
    loaded = load_stack_file(generated_stacks.write(doc, tmp_path / "small"))
    room = ENV_STRING_MAX - config_variable_bytes(loaded.config)
    doc["config"]["slm-platform:deployRunnerAppKey"] = {"secure": "v1:" + "A" * (room + 100)}
    path = generated_stacks.write(doc, tmp_path / "big")
    with pytest.raises(StackFileError, match="bytes as PULUMI_CONFIG"):
        load_stack_file(path)
    doc["config"]["slm-platform:deployRunnerAppKey"] = {"secure": "v1:" + "A" * (room - 200)}
    load_stack_file(generated_stacks.write(doc, tmp_path / "fits"))
