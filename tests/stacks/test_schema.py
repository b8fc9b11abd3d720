"""The committed JSON Schema is current and every shipped stack file validates against it."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from stack_support import REPO_ROOT, STACK_NAMES, stack_settings, write_stack

from slmctl.loader import StackFileError, load_stack_file
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


def _pool(doc: dict, **changes: object) -> None:  # type: ignore[type-arg]
    doc["cluster"]["pools"]["gput4"].update(changes)


AGREEMENT_FIXTURES = {
    # name: (change to the dev settings, accepted?)
    "shipped": (lambda s: None, True),
    "max_count as a number": (lambda s: _pool(s, max_count=2), True),
    "max_count as a string": (lambda s: _pool(s, max_count="1"), False),
    "max_count as a float": (lambda s: _pool(s, max_count=1.5), False),
    "spot as a string": (lambda s: _pool(s, spot="true"), False),
    "zones quoted": (lambda s: _pool(s, zones=["1", "2"]), True),
    "zones unquoted": (lambda s: _pool(s, zones=[1, 2]), False),
    "a deployment key with capitals": (lambda s: s["deployments"].__setitem__(
        "Phi_Managed", s["deployments"]["phi-4-mini-managed"]), False),
    "a pool key with capitals": (lambda s: s["cluster"]["pools"].__setitem__(
        "GPU", s["cluster"]["pools"]["gput4"]), False),
    "a model key with capitals": (lambda s: s["models"].__setitem__("Phi", s["models"]["phi-4-mini"]), False),
    "an unknown key": (lambda s: s.__setitem__("colour", "blue"), False),
    "an unknown pool key": (lambda s: _pool(s, vm_sise="x"), False),
    "a bad enum": (lambda s: s["cluster"].__setitem__("sku_tier", "standard"), False),
    "capacity as a string": (lambda s: s["deployments"]["phi-4-mini-managed"].__setitem__("capacity", "1"), False),
}


@pytest.mark.parametrize("name", sorted(AGREEMENT_FIXTURES))
def test_schema_and_settings_agree(name: str, tmp_path: Path) -> None:
    """The editor's schema and the loader accept and refuse the same stack files."""
    change, accepted = AGREEMENT_FIXTURES[name]
    settings = stack_settings("dev")
    change(settings)
    path = write_stack(tmp_path, settings, "dev")
    try:
        load_stack_file(path)
        loader_accepts = True
    except StackFileError:
        loader_accepts = False
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))
    schema_accepts = validator.is_valid(yaml.safe_load(path.read_text()))
    assert (loader_accepts, schema_accepts) == (accepted, accepted)
