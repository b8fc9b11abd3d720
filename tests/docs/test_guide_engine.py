"""docs/adding-an-engine.md, followed as written on a copy of the repository: the new engine plans, gates and
passes the registration and schema tests.

The guide's snippets are the fixtures, read from the Markdown. Each ```python block starts with a comment
naming its file and, where it is not plain code for that file, how it goes in:

- ``# <path>``: its definitions go into that module; one with the name of an existing top-level definition
  replaces it (the unions), new ones go in just before the first replaced one, or at the end;
- ``# <path>: add to ENGINES``: its imports join the module's imports, the rest is one more entry of ``ENGINES``;
- ``# <path> (new file)``: the whole block is that new module.

The ```yaml block is pasted into ``stacks/Pulumi.dev.yaml``; ``make schema`` (its Makefile recipe), the ```bash
plan and gate and the guide's pytest command are run; ``make test`` is the full suite the lead runs.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
from guide_support import DOCS, assert_plan_and_gate_pass, paste_into_stack, repo_copy, yaml_snippets

pytestmark = pytest.mark.slow

GUIDE = "adding-an-engine.md"
PYTHON_FENCE = re.compile(r"```python\n(?P<body>.*?)```", re.S)
BASH_FENCE = re.compile(r"```bash\n(?P<body>.*?)```", re.S)
HEADER = re.compile(r"^# (?P<path>\S+\.py)(?P<how>: add to ENGINES| \(new file\))?\n")


def _groups(tree: ast.Module) -> list[tuple[str | None, int, int]]:
    """(name, first line, last line) of each top-level statement, with its attribute docstring."""
    out: list[tuple[str | None, int, int]] = []
    for node in tree.body:
        is_doc = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        if is_doc and out and out[-1][0] is not None:
            name, start, _ = out[-1]
            out[-1] = (name, start, node.end_lineno or node.lineno)
            continue
        name: str | None = None
        if isinstance(node, ast.ClassDef | ast.FunctionDef):
            name = node.name
        elif isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            name = node.target.id
        out.append((name, node.lineno, node.end_lineno or node.lineno))
    return out


def merge_definitions(module: str, block: str) -> str:
    """``module`` with ``block``'s definitions: same names replaced in place, new ones before the first of those."""
    lines, new = module.splitlines(keepends=True), block.splitlines(keepends=True)
    existing = {name: (a, b) for name, a, b in _groups(ast.parse(module)) if name is not None}
    replaced: list[tuple[int, int, list[str]]] = []
    added: list[str] = []
    for name, a, b in _groups(ast.parse(block)):
        chunk = new[a - 1:b]
        if name in existing:
            replaced.append((*existing[name], chunk))
        else:
            added += [*chunk, "\n\n"]
    assert replaced or added, "the block defines nothing"
    for a, b, chunk in sorted(replaced, reverse=True):
        lines[a - 1:b] = chunk
    if not replaced:
        return "".join(lines).rstrip() + "\n\n\n" + "".join(added).rstrip() + "\n"
    first = min(a for a, _, _ in replaced)
    lines[first - 1:first - 1] = added
    return "".join(lines)


def add_imports(module: str, imports: list[ast.ImportFrom]) -> str:
    """Each ``from X import names`` joins the module's own import of X (or is added after its last import)."""
    for imp in imports:
        tree = ast.parse(module)
        lines = module.splitlines(keepends=True)
        names = [a.name for a in imp.names]
        same = [n for n in tree.body if isinstance(n, ast.ImportFrom) and n.module == imp.module]
        if same:
            node = same[0]
            merged = sorted({a.name for a in node.names} | set(names))
            body = "".join(f"    {n},\n" for n in merged)
            lines[node.lineno - 1:node.end_lineno] = [f"from {imp.module} import (\n{body})\n"]
        else:
            last = max(n.end_lineno or n.lineno for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom))
            lines[last:last] = [f"from {imp.module} import {', '.join(names)}\n"]
        module = "".join(lines)
    return module


def add_registration(module: str, block: str) -> str:
    """The block's imports join the module's; the rest becomes the last entry of ``ENGINES``."""
    imports = [n for n in ast.parse(block.split("\n\n", maxsplit=1)[0]).body if isinstance(n, ast.ImportFrom)]
    entry = block.split("\n\n", 1)[1].strip("\n") + "\n"
    module = add_imports(module, imports)
    tree = ast.parse(module)
    (engines,) = [n for n in tree.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)
                  and n.target.id == "ENGINES"]
    lines = module.splitlines(keepends=True)
    closing = (engines.end_lineno or engines.lineno) - 1
    assert lines[closing].strip() == ")}", "ENGINES ends with ')}'"
    lines[closing:closing] = [entry]
    return "".join(lines)


def apply_python_snippet(copy: Path, snippet: str) -> Path:
    header = HEADER.match(snippet)
    assert header is not None, f"a python snippet must start with '# <path>': {snippet[:80]!r}"
    path, how, body = copy / header["path"], header["how"], snippet[header.end():]
    if how == " (new file)":
        assert not path.exists()
        path.write_text(body)
    elif how == ": add to ENGINES":
        path.write_text(add_registration(path.read_text(), body))
    else:
        path.write_text(merge_definitions(path.read_text(), body))
    return path


def run(copy: Path, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, shell=True, cwd=copy, capture_output=True, text=True, timeout=900,  # noqa: S602
                          check=False, executable="/bin/bash")


def test_adding_an_engine_as_written(tmp_path: Path) -> None:
    copy = repo_copy(tmp_path)
    (copy / ".venv").symlink_to(Path(sys.executable).parents[1])
    guide = (DOCS / GUIDE).read_text()
    snippets = [m["body"] for m in PYTHON_FENCE.finditer(guide)]
    touched = [apply_python_snippet(copy, s) for s in snippets]
    assert len(touched) == 4
    for path in touched:
        compile(path.read_text(), str(path), "exec")
    assert "In `stacks/Pulumi.dev.yaml`" in guide
    for snippet in yaml_snippets(GUIDE):
        paste_into_stack(copy, "dev", snippet)

    (commands,) = [m["body"] for m in BASH_FENCE.finditer(guide)]
    plan, gate = [line for line in commands.splitlines() if line.strip() and line.strip() != "make test"]
    assert "`make schema`" in guide
    (recipe,) = re.findall(r"^schema:.*\n\t(?P<recipe>.*)$", (copy / "Makefile").read_text(), re.M)
    assert run(copy, recipe.replace("$(PY)", ".venv/bin/python")).returncode == 0
    assert '"sglang"' in (copy / "stacks" / "stack.schema.json").read_text()
    assert plan.endswith("plan dev")
    assert gate.endswith("gate dev")
    assert_plan_and_gate_pass(copy, "dev")
    plan_json = (copy / "build" / "dev" / "plan.json").read_text()
    assert "phi-4-mini-sglang" in plan_json
    assert "sglang.launch_server" in plan_json
    assert 'sglang:num_queue_reqs{model_name=\\"phi-4-mini-sglang\\"}' in plan_json  # KEDA scales on its queue
    assert "sglang:time_to_first_token_seconds_bucket" in plan_json  # its TTFT SLO alert, from the registration
    (tests,) = re.findall(r"`(\.venv/bin/python -m pytest [^`]*)`", guide)
    result = run(copy, f"{tests} -n 0 -p no:cacheprovider -vv")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "test_container_for_dispatches_to_the_registered_adapter[sglang] PASSED" in result.stdout
