"""The gate's SARIF validates against the official SARIF 2.1.0 JSON Schema (what code scanning ingests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jsonschema
import pytest
from stack_support import REPO_ROOT

# Microsoft's own copy of the OASIS schema, shipped in the npm package @microsoft/jest-sarif
# (package.json; `npm ci` from scripts/install-tools.sh installs it).
SCHEMA = REPO_ROOT / "node_modules" / "@microsoft" / "jest-sarif" / "lib" / "schemas" / "sarif-2.1.0-rtm.5.json"


@pytest.fixture(scope="module")
def schema() -> dict[str, object]:
    if not SCHEMA.is_file():
        message = f"{SCHEMA.relative_to(REPO_ROOT)} is missing: run `npm ci` (make tools does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return json.loads(SCHEMA.read_text())


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_gate_sarif_is_valid_sarif_2_1_0(schema: dict[str, object], stack: str) -> None:
    result = subprocess.run([sys.executable, "-m", "slmctl", "gate", stack, "--format", "sarif"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    log = json.loads(result.stdout)
    jsonschema.validators.validator_for(schema)(schema).validate(log)  # the file says draft-04
    assert log["runs"][0]["results"], "the shipped stacks have advisories, so results must not be empty"


def test_the_schema_check_can_fail(schema: dict[str, object]) -> None:
    broken = {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x"}}, "results": [{"level": "severe"}]}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validators.validator_for(schema)(schema).validate(broken)
