"""The ``slmctl`` command line (typer + rich): plan, gate, render, schema.

Exit codes: 0 ok; 1 the policy gate found a mandatory violation; 2 invalid stack file or usage;
3 internal error. Every failure passes through one boundary (``slmctl.errors.SlmTyper``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from slmctl import __version__
from slmctl.errors import EXIT_USAGE, SlmTyper, UsageError, classify
from slmctl.loader import LoadedStack, load_stack_file, resolve_stack_path

app = SlmTyper(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
               context_settings={"help_option_names": ["-h", "--help"]},
               help="Offline toolchain for slm-platform: plan, gate, render, schema.")
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

StackArg = Annotated[str | None, typer.Argument(help="Stack name: local, dev, staging or prod.")]
StackFileOpt = Annotated[Path | None, typer.Option("--stack-file", help="Any stack file instead of a name.")]
GateFormat = Literal["text", "json", "sarif", "junit", "markdown"]


def _version(value: bool) -> None:
    if value:
        out.print(f"slmctl {__version__}", markup=False)
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_version,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Offline toolchain for slm-platform: plan, gate, render, schema."""
    del version


def _load(stack: str | None, stack_file: Path | None) -> LoadedStack:
    name, path = resolve_stack_path(stack, stack_file)
    return load_stack_file(path, stack=name)


def _record(loaded: LoadedStack) -> Any:
    """Record the stack; a component that refuses its input is bad input (exit 2), named by file."""
    from slmctl.plan import make_plan

    try:
        return make_plan(loaded)
    except Exception as exc:  # the program's own errors surface here, wrapped by the SDK
        code, lines = classify(exc)
        if code != EXIT_USAGE:
            raise
        raise UsageError([f"{loaded.path.name}: {line}" for line in lines]) from None


def _tree(plan: Any) -> Tree:
    regs = plan.recording.registrations
    by_parent: dict[str | None, list[Any]] = {}
    urns = {r.urn for r in regs}
    for r in regs:
        parent = r.parent if r.parent in urns else None
        by_parent.setdefault(parent, []).append(r)
    root = Tree(Text.assemble((plan.loaded.stack, "bold"), f" ({plan.loaded.settings.tier}) — {len(regs)} resources"))

    def add(node: Tree, parent: str | None) -> None:
        for r in sorted(by_parent.get(parent, []), key=lambda x: (x.custom, x.type, x.name)):
            label = Text.assemble((r.type, "cyan"), " ", r.name, (" (protected)", "yellow") if r.protect else "")
            add(node.add(label), r.urn)

    add(root, None)
    return root


@app.command()
def plan(
    stack: StackArg = None,
    stack_file: StackFileOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print plan.json instead of the tree.")] = False,
    gate: Annotated[bool, typer.Option("--gate/--no-gate", help="End with the policy gate summary.")] = True,
) -> None:
    """Show what `pulumi up` would create, computed offline; writes build/<stack>/plan.json."""
    loaded = _load(stack, stack_file)
    result = _record(loaded)
    path = result.write()
    if as_json:
        sys.stdout.write(result.to_json())
        return
    out.print(_tree(result))
    table = Table("type", "count", title="Resources by type")
    for typ, count in sorted(result.counts().items()):
        table.add_row(typ, str(count))
    out.print(table)
    out.print(f"Estimated monthly node cost (every pool at max, list prices): "
              f"[bold]${result.document()['estimated_monthly_usd']:,.2f}[/bold]")
    for key in loaded.placeholder_secrets:
        out.print(Text.assemble(("note", "yellow"), f" secret {key} is not set in {loaded.path.name}; the plan "
                                f"used a placeholder. Before `pulumi up`: pulumi config set --secret {key} <value>"))
    out.print(f"Wrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}", markup=False)
    if gate:
        code = _run_gate(loaded, result.recording, "text", None, summary_only=True)
        if code:
            raise typer.Exit(code)


def _run_gate(loaded: LoadedStack, recording: Any, fmt: GateFormat, output: Path | None, *,
              summary_only: bool = False) -> int:
    from slmctl import gate as gate_mod

    try:
        result = gate_mod.run_gate(recording, stack_file=loaded.path)  # levels from the stack name, never its file
    except gate_mod.GateConfigError as exc:  # the policy config is input (exit 2); other failures are internal (3)
        raise UsageError([line.strip() for line in str(exc).splitlines() if line.strip()]) from None
    text = gate_mod.format_result(result, fmt)
    if output is not None:
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            msg = (f"--output {output}: cannot write it ({exc.strerror or exc}); "
                   "choose a file in a folder you can write to")
            raise UsageError(msg) from None
        err.print(f"Wrote {output}", markup=False)
    elif summary_only:
        lines = text.rstrip().splitlines()
        for line in [*lines[:2], *(line for line in lines if line.startswith("[MANDATORY]")), lines[-1]]:
            out.print(line, soft_wrap=True, markup=False)
        out.print(f"Details: python -m slmctl gate {loaded.stack} (or --format sarif|junit|markdown|json)",
                  markup=False)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return int(result.exit_code)


@app.command("gate")
def gate_cmd(
    stack: StackArg = None,
    stack_file: StackFileOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="text, json, sarif, junit or markdown.")] = "text",
    output: Annotated[Path | None, typer.Option("--output", help="Write the report to FILE.")] = None,
) -> None:
    """Run the CrossGuard pack over the analyzer protocol, as `pulumi preview --policy-pack` would."""
    formats = ("text", "json", "sarif", "junit", "markdown")
    if fmt not in formats:
        msg = f"--format {fmt!r} is not one of: {', '.join(formats)}"
        raise UsageError(msg)
    loaded = _load(stack, stack_file)
    code = _run_gate(loaded, _record(loaded).recording, fmt, output)  # type: ignore[arg-type]
    raise typer.Exit(code)


@app.command()
def render(stack: StackArg = None, stack_file: StackFileOpt = None) -> None:
    """Write every Kubernetes object, rule file, dashboard and edge manifest to build/<stack>/."""
    loaded = _load(stack, stack_file)
    from slmctl.plan import BUILD_DIR

    result = _record(loaded)
    result.write()
    base = BUILD_DIR / loaded.stack
    written: list[Path] = []
    from slmctl.render_k8s import render_kubernetes

    written += render_kubernetes(result.recording, base / "k8s")
    from components.monitoring.render import render_monitoring

    written += render_monitoring(loaded.settings, base / "monitoring")
    if loaded.settings.edge.fleets:
        from components.edge.render import render_edge

        login_server = result.recording.outputs.get("registry_login_server")
        written += render_edge(loaded.settings, base / "edge", **(
            {"registry_login_server": login_server} if isinstance(login_server, str) else {}))
    out.print(f"Wrote {len(written)} files under {base}", markup=False)


@app.command()
def schema(
    stack_file_schema: Annotated[bool, typer.Option("--stack-file", help="Schema of a whole stack file.")] = False,
) -> None:
    """Print the JSON Schema of the settings (or of a stack file, for editors)."""
    from slmctl.schema import settings_schema
    from slmctl.schema import stack_file_schema as file_schema

    doc = file_schema() if stack_file_schema else settings_schema()
    sys.stdout.write(json.dumps(doc, indent=2, sort_keys=True) + "\n")


def main() -> None:
    """Entry point for ``python -m slmctl`` and the installed ``slmctl`` command."""
    app(prog_name="slmctl")
