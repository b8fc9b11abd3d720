"""The package schema is what Pulumi's analyzer infers from the components' Args, and it is committed."""

from __future__ import annotations

import dataclasses
import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest
from pulumi.provider.experimental.analyzer import Analyzer
from pulumi.provider.experimental.util import camel_case

from components.package import PACKAGE_NAME, _is_callable, exported_components
from components.package.gen_schema import SCHEMA_PATH

ROOT = Path(__file__).resolve().parents[2]


def test_committed_schema_is_the_inferred_one() -> None:
    """``gen_schema --check`` in a fresh interpreter, as CI or a developer runs it.

    Not in this process: the analyzer reads property descriptions with ``inspect.getsource``, and after
    other tests had run here a class's output descriptions were sometimes missing (2 of ~10 runs of
    tests/package with tests/edge and tests/monitoring; never in a fresh process, with any hash seed)."""
    done = subprocess.run([sys.executable, "-m", "components.package.gen_schema", "--check"], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("component", exported_components(), ids=lambda c: c.__name__)
def test_schema_inputs_are_the_args_fields_and_defaults_are_optional(component: type) -> None:
    """Every Args field is an input (Python-only callables aside); exactly those without a default are required."""
    resource = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))["resources"][f"{PACKAGE_NAME}:index:{component.__name__}"]
    args = inspect.get_annotations(component.__init__, eval_str=True)["args"]
    hints = {k: v for cls in reversed(args.__mro__) for k, v in inspect.get_annotations(cls, eval_str=True).items()}
    fields = [f for f in dataclasses.fields(args) if not _is_callable(hints[f.name])]
    assert set(resource["inputProperties"]) == {camel_case(f.name) for f in fields}
    required = {camel_case(f.name) for f in fields
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    assert set(resource.get("requiredInputs", [])) == required


def test_the_stock_analyzer_cannot_read_our_args() -> None:
    """Why the package has its own analyzer: ``from __future__`` modules and ``Literal`` fields
    (``components/_standard.py``) break Pulumi's own, which the schema test would otherwise use."""
    for component in exported_components():
        with pytest.raises((TypeError, AttributeError), match=r"issubclass|__mro__"):
            Analyzer(PACKAGE_NAME).analyze([component])
