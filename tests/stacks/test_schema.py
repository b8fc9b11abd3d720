"""The committed JSON Schema is current and every shipped stack file validates against it."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml
from stack_support import REPO_ROOT, STACK_NAMES

from slmctl.schema import stack_file_schema

SCHEMA_PATH = REPO_ROOT / "stacks" / "stack.schema.json"


def test_committed_schema_is_up_to_date() -> None:
    committed = json.loads(SCHEMA_PATH.read_text())
    assert committed == stack_file_schema(), "run `make schema` and commit stacks/stack.schema.json"


@pytest.mark.parametrize("name", STACK_NAMES)
def test_stack_file_references_and_satisfies_the_schema(name: str) -> None:
    path = REPO_ROOT / "stacks" / f"Pulumi.{name}.yaml"
    assert path.read_text().startswith("# yaml-language-server: $schema=./stack.schema.json")
    jsonschema.validate(yaml.safe_load(path.read_text()), json.loads(SCHEMA_PATH.read_text()))


def test_schema_rejects_an_unknown_key_like_the_loader_does() -> None:
    doc = yaml.safe_load((REPO_ROOT / "stacks" / "Pulumi.dev.yaml").read_text())
    doc["config"]["slm-platform:settings"]["colour"] = "blue"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, json.loads(SCHEMA_PATH.read_text()))
