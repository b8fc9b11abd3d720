"""The ``slmctl`` command line (typer + rich): plan, gate, render, schema, models sync.

Exit codes: 0 ok; 1 the policy gate found a mandatory violation; 2 invalid stack file or usage;
3 internal error. Every failure passes through one boundary (``slmctl.errors.SlmTyper``).
"""

from __future__ import annotations

import gc
import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from slmctl import __version__
from slmctl.errors import EXIT_USAGE, SlmTyper, UsageError, classify
from slmctl.loader import LoadedStack, load_stack_file, resolve_stack_path, shipped_stacks

app = SlmTyper(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
               context_settings={"help_option_names": ["-h", "--help"]},
               help="Offline toolchain for slm-platform: plan, gate, render, diff, schema.")
NO_TERMINAL_WIDTH: Final = 10_000
"""Without a terminal nothing wraps: a type and its name stay on one line for grep and CI logs."""


def _console(*, stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, highlight=False, width=None if stream.isatty() else NO_TERMINAL_WIDTH)


out = _console()
err = _console(stderr=True)

StackArg = Annotated[str | None, typer.Argument(
    help=f"Stack name: one of {', '.join(shipped_stacks())} (stacks/Pulumi.<name>.yaml).", show_default=False)]
StackFileOpt = Annotated[Path | None, typer.Option(
    "--stack-file", help="Any stack file (Pulumi.<stack>.yaml) instead of a name.")]
OutOpt = Annotated[Path | None, typer.Option(
    "--out", help="Folder to write into. Default: build/<stack> (build/<stack>-<hash> for a file outside stacks/).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print only the summary lines (errors still go to stderr).")]
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
    """Offline toolchain for slm-platform: plan, gate, render, diff, schema."""
    del version


def _load(stack: str | None, stack_file: Path | None) -> LoadedStack:
    name, path = resolve_stack_path(stack, stack_file)
    return load_stack_file(path, stack=name)


def progress(message: str, *, quiet: bool = False, console: Console | None = None) -> AbstractContextManager[Any]:
    """A spinner on stderr while ``message`` runs, only on a terminal (never in logs, pipes or --quiet)."""
    console = console or err
    if quiet or not console.is_terminal:
        return nullcontext()
    return console.status(Text(message), spinner="dots")


def _record(loaded: LoadedStack, *, quiet: bool = False, first_preview: bool = False,
            after_targeted: bool = False, step: str | None = None) -> Any:
    """Record the stack; a component that refuses its input is bad input (exit 2), named by file."""
    from slmctl.plan import make_plan

    try:
        with progress(f"Planning {loaded.stack} (the program under the Pulumi mock monitor)…", quiet=quiet):
            return make_plan(loaded, first_preview=first_preview, after_targeted=after_targeted, step=step)
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
    root = Tree(Text.assemble((plan.loaded.stack, "bold"), f" ({plan.loaded.settings.tier}) — "
                              f"{len(regs)} registrations (components, providers and resources)"))

    def add(node: Tree, parent: str | None) -> None:
        for r in sorted(by_parent.get(parent, []), key=lambda x: (x.custom, x.type, x.name)):
            label = Text.assemble((r.type, "cyan"), " ", r.name, (" (protected)", "yellow") if r.protect else "")
            add(node.add(label), r.urn)

    add(root, None)
    return root


def _shown(path: Path) -> str:
    return str(path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path)


def _cost_line(document: dict[str, Any]) -> Text:
    """The budget policy's estimate, as plan.json carries it: total, each priced item, what it cannot price."""
    lines = document.get("estimated_monthly_cost") or []
    parts = ", ".join(f"{line['item']} ${line['usd']:,.2f}" for line in lines if line["usd"] > 0)
    unpriced = "; ".join(f"{line['item']} ({line['unpriced']})" for line in lines if "unpriced" in line)
    return Text.assemble("Estimated monthly cost (upper bound at list prices, as the budget policy prices it): ",
                         (f"${document['estimated_monthly_usd']:,.2f}", "bold"), f" ({parts})" if parts else "",
                         (f"; cannot price: {unpriced}", "yellow") if unpriced else "")


def _summary_text(result: Any) -> Text:
    summary = result.summary()
    by_component = ", ".join(f"{name} +{n}" for name, n in summary.by_component.items())
    return Text.assemble(("Plan: ", "bold"), (summary.line(), "green"), f"; by component: {by_component}")


def _stale_plan_removed(out_dir: Path) -> None:
    """A failed plan must not leave the previous, valid-looking plan.json behind."""
    from slmctl.plan_reuse import remove_recording

    remove_recording(out_dir)
    stale = out_dir / "plan.json"
    if stale.is_file():
        stale.unlink()
        err.print(Text(f"note removed {_shown(stale)}: it no longer matches the stack file"))


@app.command()
def plan(
    stack: StackArg = None,
    *,
    stack_file: StackFileOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print plan.json instead of the tree.")] = False,
    gate: Annotated[bool, typer.Option("--gate/--no-gate", help="End with the policy gate summary.")] = True,
    against: Annotated[Path | None, typer.Option(
        "--against", help="Also show what changes against an earlier plan.json (see `slmctl diff`).")] = None,
    out_dir: OutOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Show what `pulumi up` would create, computed offline; writes build/<stack>/plan.json."""
    from slmctl.plan import default_out_dir

    name, path = resolve_stack_path(stack, stack_file)
    target = out_dir or default_out_dir(name, path)
    before = _read_against(against) if against is not None else None
    try:
        loaded = load_stack_file(path, stack=name)
    except Exception:
        _stale_plan_removed(target)
        raise
    pack = _early_pack(loaded) if gate and not as_json else None
    with _stopped_on_error(pack):
        try:
            result = _record(loaded, quiet=quiet or as_json)
        except Exception:
            _stale_plan_removed(target)
            raise
        _show_plan(loaded, result, target, before, as_json=as_json, quiet=quiet)
    if gate and not as_json:
        code = _run_gate(loaded, result.recording, "text", None, summary_only=True, quiet=quiet, pack=pack)
        if code:
            raise typer.Exit(code)


def _show_plan(loaded: LoadedStack, result: Any, target: Path, before: dict[str, Any] | None, *, as_json: bool,
               quiet: bool) -> None:
    """Write plan.json (and the recording `gate` reuses), then print the tree, costs, summary and diff."""
    written = result.write(target)
    from slmctl.plan_reuse import write_recording

    write_recording(loaded, result.recording, written)  # what `gate` analyzes without planning again
    if as_json:
        sys.stdout.write(result.to_json())
        return
    if not quiet:
        out.print(_tree(result))
        table = Table("type", "count", title="Registrations by type")
        for typ, count in sorted(result.counts().items()):
            table.add_row(typ, str(count))
        out.print(table)
        out.print(_cost_line(result.document()))
        for key in loaded.placeholder_secrets:
            out.print(Text.assemble(("note", "yellow"), f" secret {key} is not set in {loaded.path.name}; the plan "
                                    f"used a placeholder. Before `pulumi up`: pulumi config set --secret {key} <value>"))
    out.print(_summary_text(result))
    if before is not None:
        from slmctl.diff import diff_documents, format_diff

        out.print(Text(format_diff(diff_documents(before, result.document()), "text").rstrip()))
    if not quiet:
        out.print(Text(f"Wrote {_shown(written)}"))


def _read_against(path: Path) -> dict[str, Any]:
    from slmctl.diff import read_plan

    return read_plan(path, option="--against")


def _details_hint(loaded: LoadedStack) -> str:
    from slmctl.loader import STACKS_DIR

    shipped = (STACKS_DIR / f"Pulumi.{loaded.stack}.yaml").resolve() == loaded.path.resolve()
    target = loaded.stack if shipped else f"--stack-file {_shown(loaded.path)}"
    return f"Details: python -m slmctl gate {target} (or --format sarif|junit|markdown|json)"


def _early_pack(loaded: LoadedStack) -> Any:
    """The policy pack, started now so it imports on the other core while this process plans (None: later)."""
    from slmctl.gate import start_pack

    return start_pack(loaded)


@contextmanager
def _stopped_on_error(pack: Any) -> Iterator[None]:
    """Stop an early-started pack when what comes before the gate fails: it never exits on its own."""
    try:
        yield
    except BaseException:
        if pack is not None:
            pack.close()
        raise


def _run_gate(loaded: LoadedStack, recording: Any, fmt: GateFormat, output: Path | None, *,
              summary_only: bool = False, quiet: bool = False, targets: Sequence[str] = (), pack: Any = None) -> int:
    from slmctl import gate as gate_mod

    with progress(f"Running the policy gate on {loaded.stack} (the CrossGuard pack over gRPC)…", quiet=quiet):
        try:
            # levels from the stack name, never its file
            result = gate_mod.run_gate(recording, loaded=loaded, targets=targets, pack=pack)
        except gate_mod.GateInputError as exc:  # the policy config, a too large stack: input (exit 2); others: 3
            raise UsageError([line.strip() for line in str(exc).splitlines() if line.strip()]) from None
    text = gate_mod.format_result(result, fmt)
    if output is not None:
        from slmctl.plan import write_atomic

        try:
            write_atomic(output, text)
        except OSError as exc:
            msg = (f"--output {output}: cannot write it ({exc.strerror or exc}); "
                   "choose a file in a folder you can write to")
            raise UsageError(msg) from None
        if not quiet:
            err.print(Text(f"Wrote {output}"))
    elif summary_only or quiet:
        lines = text.rstrip().splitlines()
        shown = [lines[-1]] if quiet else [*lines[:2], *(x for x in lines if x.startswith("[MANDATORY]")), lines[-1]]
        for line in shown:
            out.print(Text(line))
        if not quiet:
            out.print(Text(_details_hint(loaded)))
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return int(result.exit_code)


@app.command("gate")
def gate_cmd(  # noqa: PLR0917 (typer options are keyword parameters to the user)
    stack: StackArg = None,
    stack_file: StackFileOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="text, json, sarif, junit or markdown.")] = "text",
    output: Annotated[Path | None, typer.Option("--output", help="Write the report to FILE.")] = None,
    quiet: QuietOpt = False,
    first_preview: Annotated[bool, typer.Option(
        "--first-preview", help="Gate as the stack's first `pulumi preview` (no state yet): every output of a "
        "resource being created is unknown, as the engine sends it.")] = False,
    after_targeted: Annotated[bool, typer.Option(
        "--after-targeted", help="With --first-preview: the full update's preview in the documented order, after "
        "the targeted ups of `slmctl bootstrap-targets` and `slmctl models targets` (what they create is known).")] = False,
    step: Annotated[str | None, typer.Option(
        "--step", help="With --first-preview: the preview of one step of the first deploy, in order: bootstrap "
        "(the runner's targeted up), registry (the `models targets` up), full (= --after-targeted). A targeted "
        "preview still analyzes every resource of the program.")] = None,
) -> None:
    """Run the CrossGuard pack over the analyzer protocol, as `pulumi preview --policy-pack` would."""
    formats = ("text", "json", "sarif", "junit", "markdown")
    if fmt not in formats:
        from slmctl.messages import did_you_mean

        msg = f"--format {fmt!r} is not one of: {', '.join(formats)}{did_you_mean(fmt, formats)}"
        raise UsageError(msg)
    if after_targeted and not first_preview:
        msg = "--after-targeted: only with --first-preview (an offline plan already knows every output)"
        raise UsageError(msg)
    from slmctl.plan import STEPS

    if step is not None and (not first_preview or step not in STEPS or (after_targeted and step != "full")):
        msg = (f"--step {step!r}: one of {', '.join(STEPS)}, only with --first-preview (and --after-targeted "
               "means --step full)")
        raise UsageError(msg)
    from slmctl.plan import default_out_dir
    from slmctl.plan_reuse import reusable_recording

    loaded = _load(stack, stack_file)
    out_dir = default_out_dir(loaded.stack, loaded.path)
    scoped = first_preview and step is not None and step != "full"  # its scope is known after recording
    pack = None if scoped else _early_pack(loaded)
    with _stopped_on_error(pack):
        recording = None if first_preview else reusable_recording(loaded, out_dir)
        if recording is None:
            recording = _record(loaded, quiet=quiet, first_preview=first_preview, after_targeted=after_targeted,
                                step=step).recording
        elif not quiet:
            err.print(Text(f"note analyzing the registrations recorded with {_shown(out_dir / 'plan.json')} "
                           "(same stack file, code and SDKs; nothing re-planned)"))
        from slmctl.plan import step_targets

        targets = step_targets(loaded, recording, step) if scoped and step else []
    code = _run_gate(loaded, recording, fmt, output, quiet=quiet, targets=targets, pack=pack)  # type: ignore[arg-type]
    raise typer.Exit(code)


RENDERED: Final = ("k8s", "monitoring", "edge")
"""The folders ``render`` owns under the output folder: what is there and was not written now is stale."""


@app.command()
def render(stack: StackArg = None, stack_file: StackFileOpt = None, out_dir: OutOpt = None,
           quiet: QuietOpt = False) -> None:
    """Write every Kubernetes object, rule file, dashboard and edge manifest to build/<stack>/.

    Files a previous render left in k8s/, monitoring/ or edge/ that this one did not write (a removed
    model's manifests, say) are deleted, and named.
    """
    from slmctl.plan import default_out_dir

    loaded = _load(stack, stack_file)
    result = _record(loaded, quiet=quiet)
    base = out_dir or default_out_dir(loaded.stack, loaded.path)
    result.write(base)
    written: list[Path] = []
    from slmctl.render_k8s import render_kubernetes

    written += render_kubernetes(result.recording, base / "k8s")
    from components.monitoring.render import render_monitoring
    from stacks.monitoring import monitoring_args

    written += render_monitoring(monitoring_args(loaded.settings), base / "monitoring")
    if loaded.settings.edge.fleets:
        from stacks.edge import render_stack_edge

        login_server = result.recording.outputs.get("registry_login_server")
        written += render_stack_edge(loaded.settings, base / "edge", **(
            {"registry_login_server": login_server} if isinstance(login_server, str) else {}))
    removed = _remove_stale(base, written)
    out.print(Text(f"Wrote {len(written)} files under {_shown(base)}"
                   + (f"; removed {len(removed)} stale: {', '.join(removed)}" if removed else "")))


def _remove_stale(base: Path, written: list[Path]) -> list[str]:
    keep = {p.resolve() for p in written}
    removed: list[str] = []
    for folder in RENDERED:
        root = base / folder
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*"), reverse=True):
            if path.is_file() and path.resolve() not in keep:
                path.unlink()
                removed.append(path.relative_to(base).as_posix())
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()
        if not any(root.iterdir()):
            root.rmdir()
    return sorted(removed)


@app.command()
def diff(
    before: Annotated[Path, typer.Argument(help="The earlier plan.json (e.g. from the base branch).",
                                           show_default=False)],
    after: Annotated[Path, typer.Argument(help="The later plan.json (e.g. build/<stack>/plan.json).",
                                          show_default=False)],
    fmt: Annotated[str, typer.Option("--format", help="text, markdown (PR comment) or json.")] = "text",
    output: Annotated[Path | None, typer.Option("--output", help="Write the diff to FILE.")] = None,
) -> None:
    """What B adds, changes and removes against A: resource by resource, property by property."""
    from slmctl.diff import diff_documents, format_diff, read_plan

    formats = ("text", "markdown", "json")
    if fmt not in formats:
        from slmctl.messages import did_you_mean

        msg = f"--format {fmt!r} is not one of: {', '.join(formats)}{did_you_mean(fmt, formats)}"
        raise UsageError(msg)
    text = format_diff(diff_documents(read_plan(before), read_plan(after)), fmt)  # type: ignore[arg-type]
    if output is None:
        sys.stdout.write(text)
        return
    from slmctl.plan import write_atomic

    try:
        write_atomic(output, text)
    except OSError as exc:
        msg = f"--output {output}: cannot write it ({exc.strerror or exc}); choose a file in a folder you can write to"
        raise UsageError(msg) from None
    err.print(Text(f"Wrote {output}"))


@app.command("bootstrap-targets")
def bootstrap_targets_cmd(stack: StackArg = None, stack_file: StackFileOpt = None) -> None:
    """Print the URNs `pulumi up --target` creates first: the in-VNet deploy runner and what it depends on."""
    from slmctl.bootstrap import BootstrapError, bootstrap_targets

    loaded = _load(stack, stack_file)
    try:
        urns = bootstrap_targets(_record(loaded).recording)
    except BootstrapError as exc:
        raise UsageError([f"{loaded.path.name}: {exc}"]) from None
    sys.stdout.write("".join(f"{urn}\n" for urn in urns))


@app.command()
def schema(
    stack_file_schema: Annotated[bool, typer.Option("--stack-file", help="Schema of a whole stack file.")] = False,
) -> None:
    """Print the JSON Schema of the settings (or of a stack file, for editors)."""
    from slmctl.schema import settings_schema
    from slmctl.schema import stack_file_schema as file_schema

    doc = file_schema() if stack_file_schema else settings_schema()
    sys.stdout.write(json.dumps(doc, indent=2, sort_keys=True) + "\n")


def _models_app() -> typer.Typer:
    from slmctl.models import app as models

    return models


app.add_typer(_models_app(), name="models", help="The model registry: mirror pinned weights (models sync).")


def main() -> None:
    """Entry point for ``python -m slmctl`` and the installed ``slmctl`` command."""
    from slmctl.recorder import keep_recordings_frozen

    keep_recordings_frozen()  # one command, one process: what it recorded stays until exit
    try:
        app(prog_name="slmctl")
    finally:
        # The interpreter's last collection would traverse the whole heap (~0.6 s after a prod plan)
        # to free memory the OS takes back at exit anyway; frozen objects are not traversed.
        gc.freeze()
