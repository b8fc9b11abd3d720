"""The domain layer sits below components and stacks: importing it loads no Pulumi, no stack code, no component.

A team that uses ``components.domain`` types in its own program (or the policy pack's facts through it) must not
pull in our stack-file shape or a Pulumi runtime; a stray import would make every component depend on
``stacks/`` again (issue 16).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _modules_loaded_by(statement: str) -> list[str]:
    """Modules whose code ran (``components/__init__`` registers not-yet-loaded azure-native service
    packages as ``ServicePackage`` placeholders, ``components._lean_sdk``; those ran nothing)."""
    code = (f"import json, sys\n{statement}\nprint(json.dumps(sorted(m for m, mod in sys.modules.items() "
            "if type(mod).__name__ != 'ServicePackage')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_importing_the_domain_loads_no_pulumi_stack_or_component() -> None:
    loaded = _modules_loaded_by("import components.domain")
    forbidden = [m for m in loaded if m == "pulumi" or m.startswith(("pulumi.", "pulumi_", "stacks", "slmctl"))
                 or (m.startswith("components.") and not m.startswith(("components.domain", "components._lean_sdk")))]
    assert forbidden == [], f"components.domain must stay below components and stacks; it loaded {forbidden}"


def test_no_component_imports_a_domain_type_from_stacks() -> None:
    """Components take domain types from ``components.domain``; only ``EnvironmentSettings`` (being narrowed
    away, issue 16) may still come from ``stacks.settings``."""
    # In a fresh interpreter: CPython 3.11's AST builder raises "recursion depth mismatch" when a finalizer
    # (an earlier test's garbage, collected mid-parse) runs Python code inside it.
    script = (
        "import ast, json, pathlib, sys\n"
        "root = pathlib.Path(sys.argv[1])\n"
        "out = []\n"
        "for path in sorted((root / 'components').rglob('*.py')):\n"
        "    for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'))):\n"
        "        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith('stacks'):\n"
        "            out += [f'{path.relative_to(root)}: {a.name}' for a in node.names]\n"
        "print(json.dumps(out))\n")
    found = subprocess.run([sys.executable, "-c", script, str(ROOT)], capture_output=True, text=True, check=True)
    offenders = [o for o in json.loads(found.stdout) if o.rsplit(": ", 1)[1] not in
                 {"EnvironmentSettings", "DeployRunnerSettings", "MonitoringSettings"}]
    assert offenders == [], f"import these from components.domain: {offenders}"
