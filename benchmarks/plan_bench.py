"""Plan and gate against a fair floor, whole process, for the shipped stacks and generated ones.

Run: ``PYTHONPATH=. .venv/bin/python -m benchmarks.plan_bench [--rounds N] [--quick] [--scale]``.

For each stack file it first dumps the plan's exact tree (``--dump``, in a child process), then runs,
interleaved, N rounds (default 1) of five whole processes on copies of the stack file in a temp dir:
``slmctl plan --no-gate --quiet`` (which also writes the recording ``gate`` may reuse), ``slmctl gate``
on that planned copy (it analyzes plan's recording: *gate after plan*), ``slmctl gate`` on a copy never
planned (*gate cold*: it plans again, as CI's first step does), the fair floor (``fair_floor.py``: the
same tree, same mocks, nothing else) and the floor that also imports the provider SDK modules the plan
loaded. The stacks are the four shipped ones, prod with 1, 10, 30, 60 and 120 vLLM deployments, and prod
with 1, 30, 100 and 300 IoT Edge fleets (``benchmarks/generated_stacks.py``); ``--quick`` keeps the
shipped ones. It prints medians of wall and CPU seconds (user + system of the process and its children:
the gate's pack included) and peak RSS, the ratios, the fitted growth (least squares per resource, per
deployment and per fleet, with R² and the slope of the upper half against the lower half: 1.0 is
linear), and ``--scale`` adds the ~2,400- and ~6,100-resource runs (plan, gate cold, the AnalyzeStack
message size), then issue 14's targets with this run's figures. Absolute times on a shared machine are
noisy; the ratios, measured in one interleaved run, are the claim. It prints; it never asserts time.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import generated_stacks

ROOT = Path(__file__).resolve().parent.parent
STACKS = ("local", "dev", "staging", "prod")
VLLM = (1, 10, 30, 60, 120)
FLEETS = (1, 30, 100, 300)
SCALE_DEPLOYMENTS = (120, 300, 490)
"""About 2,400, 6,100 and 10,000 resources (~20 per deployment). The generated deployments leave out prod's
default image, so 490 of them fit the 128 KiB Linux passes in one environment variable (``PULUMI_CONFIG``:
``slmctl.loader.ENV_STRING_MAX``)."""
PROVIDER_PREFIXES = ("pulumi_azure_native", "pulumi_kubernetes", "pulumi_docker", "pulumi_random", "pulumi_tls")
KINDS = ("plan", "gate after plan", "gate cold", "floor", "floor+imports")
Sample = tuple[float, float, float]


def dump(stack_file: Path, out: Path) -> None:
    """Write the tree of the plan of ``stack_file`` (with the alias specs the SDK sent), the provider modules
    loaded and the size of the AnalyzeStack message the gate would send."""
    from slmctl import gate, recorder
    from slmctl.loader import load_stack_file
    from slmctl.plan import make_plan

    aliases: dict[str, list[tuple[str, str]]] = {}
    original = recorder.RecordingMonitor.RegisterResource

    def capture(self: Any, request: Any) -> Any:
        response = original(self, request)
        aliases[response.urn] = [(a.spec.name, a.spec.type) for a in request.aliases if a.HasField("spec")]
        return response

    recorder.RecordingMonitor.RegisterResource = capture  # type: ignore[method-assign]
    try:
        plan = make_plan(load_stack_file(stack_file))
    finally:
        recorder.RecordingMonitor.RegisterResource = original  # type: ignore[method-assign]
    regs = plan.recording.registrations
    requests = gate.Requests(regs)
    stack_urns = {r.urn for r in regs if r.type == "pulumi:pulumi:Stack"}
    tree = {"stack": plan.loaded.stack,
            "modules": sorted(m for m in sys.modules if m.startswith(PROVIDER_PREFIXES)),
            "analyzed": sum(1 for r in regs if r.custom and not r.read and not r.type.startswith("pulumi:providers:")),
            "stack_message_bytes": sum(requests.stack_resource(r).ByteSize() for r in regs),
            "resources": [{"urn": r.urn, "type": r.type, "name": r.name, "custom": r.custom,
                           "parent": None if r.parent in stack_urns or not r.parent or "pulumi:pulumi:Stack" in r.parent
                           else r.parent, "inputs": r.inputs, "protect": r.protect, "aliases": aliases.get(r.urn, [])}
                          for r in regs if not r.read]}
    out.write_text(json.dumps(tree), encoding="utf-8")


def run(argv: list[str]) -> Sample:
    """Wall s, CPU s (process + children) and peak RSS MiB of one whole process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):
        msg = f"{' '.join(argv)} exited {proc.returncode}"
        raise SystemExit(msg)
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def _copies(label: str, source: Path, tmp: Path) -> tuple[Path, Path]:
    """Two copies of ``source`` (same name, two folders): one to plan then gate, one to gate cold."""
    paths = []
    for kind in ("planned", "cold"):
        folder = tmp / label / kind
        folder.mkdir(parents=True, exist_ok=True)
        paths.append(Path(shutil.copy(source, folder / source.name)))
    return paths[0], paths[1]


def _build_dirs(*stack_files: Path) -> list[Path]:
    from slmctl.loader import stack_name_of
    from slmctl.plan import default_out_dir

    return [default_out_dir(stack_name_of(p), p) for p in stack_files]


def measure(cases: list[tuple[str, str, int, Path]], rounds: int, tmp: Path) -> list[dict[str, Any]]:
    """``(label, dimension, n, stack file)`` cases, each dumped, then every case's processes once per round."""
    from slmctl.plan_reuse import RECORDING_NAME

    py = sys.executable
    prepared: list[dict[str, Any]] = []
    for label, dim, n, source in cases:
        tree = tmp / f"{label}.json"
        subprocess.run([py, "-m", "benchmarks.plan_bench", "--dump", str(source), str(tree)], cwd=ROOT, check=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
        doc = json.loads(tree.read_text(encoding="utf-8"))
        planned, cold = _copies(label, source, tmp)
        commands = {
            "plan": [py, "-m", "slmctl", "plan", "--stack-file", str(planned), "--no-gate", "--quiet"],
            "gate after plan": [py, "-m", "slmctl", "gate", "--stack-file", str(planned), "--quiet", "--format",
                                "json", "--output", str(tmp / f"{label}-gate.json")],
            "gate cold": [py, "-m", "slmctl", "gate", "--stack-file", str(cold), "--quiet", "--format", "json",
                          "--output", str(tmp / f"{label}-gate-cold.json")],
            "floor": [py, str(ROOT / "benchmarks" / "fair_floor.py"), str(tree)],
            "floor+imports": [py, str(ROOT / "benchmarks" / "fair_floor.py"), str(tree), "--imports"],
        }
        prepared.append({"label": label, "dim": dim, "n": n, "resources": len(doc["resources"]),
                         "analyzed": doc["analyzed"], "bytes": doc["stack_message_bytes"], "commands": commands,
                         "samples": {k: [] for k in commands}, "build": _build_dirs(planned, cold)})
    try:
        for _ in range(rounds):
            for case in prepared:
                for key, argv in case["commands"].items():
                    if key == "gate cold":  # never a recording for the cold copy's gate to reuse
                        (case["build"][1] / RECORDING_NAME).unlink(missing_ok=True)
                    case["samples"][key].append(run(argv))
    finally:
        for case in prepared:
            for folder in case["build"]:
                shutil.rmtree(folder, ignore_errors=True)
    for case in prepared:
        case.update({k: tuple(statistics.median(s[i] for s in v) for i in range(3)) for k, v in case["samples"].items()})
    return prepared


def _fit(xs: list[float], ys: list[float]) -> str:
    """``a s + b ms per x (R² r, upper/lower half slope q)``."""
    slope, intercept = statistics.linear_regression(xs, ys)
    r2 = statistics.correlation(xs, ys) ** 2 if len(set(xs)) > 1 else 1.0
    half = len(xs) // 2
    low = statistics.linear_regression(xs[:half + 1], ys[:half + 1])[0] if half >= 1 else slope
    high = statistics.linear_regression(xs[half:], ys[half:])[0] if len(xs) - half >= 2 else slope
    ratio = f"{high / low:.2f}" if low > 0 else "n/a"
    return f"{intercept:.2f} s + {slope * 1000:.1f} ms (R² {r2:.3f}, upper/lower-half slope {ratio})"


def table(rows: list[dict[str, Any]]) -> None:
    """The markdown table the README quotes."""
    print("| stack | resources | plan wall / CPU s | gate after plan wall / CPU s | gate cold wall / CPU s "
          "| floor wall / CPU s | floor+imports wall / CPU s | plan / floor (CPU) | plan / floor+imports (CPU) "
          "| gate cold − plan (CPU s) | (gate cold − plan) / analyzed, ms | peak MiB plan / gate cold / floor |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        p, ga, g, f, fi = (r[k] for k in KINDS)
        per = (g[1] - p[1]) / r["analyzed"] * 1000 if r["analyzed"] else 0.0
        print(f"| {r['label']} | {r['resources']} | {p[0]:.2f} / {p[1]:.2f} | {ga[0]:.2f} / {ga[1]:.2f} "
              f"| {g[0]:.2f} / {g[1]:.2f} | {f[0]:.2f} / {f[1]:.2f} | {fi[0]:.2f} / {fi[1]:.2f} "
              f"| {p[1] / f[1]:.2f} | {p[1] / fi[1]:.2f} | {g[1] - p[1]:.2f} | {per:.2f} "
              f"| {p[2]:.0f} / {g[2]:.0f} / {f[2]:.0f} |")


def growth(rows: list[dict[str, Any]]) -> None:
    """Fitted CPU growth per resource (all rows), per vLLM deployment and per edge fleet; the gate's cost per
    analyzed resource (the slope of gate cold − plan: both processes, pack start and AnalyzeStack included)."""
    slope, intercept = statistics.linear_regression([float(r["analyzed"]) for r in rows],
                                                    [r["gate cold"][1] - r["plan"][1] for r in rows])
    print(f"gate cold − plan CPU per analyzed resource: {intercept:.2f} s + {slope * 1000:.2f} ms")
    for dim, unit in (("all", "resource"), ("vllm", "deployment"), ("fleets", "fleet")):
        sub = rows if dim == "all" else [r for r in rows if r["dim"] == dim]
        if len(sub) < 2:
            continue
        xs = [float(r["resources"] if dim == "all" else r["n"]) for r in sub]
        if dim != "all":
            slope, _ = statistics.linear_regression(xs, [float(r["resources"]) for r in sub])
            print(f"resources per {unit}: {slope:.1f}")
        for key in (*KINDS, "memory"):
            ys = [r["gate cold"][2] / 1000 if key == "memory" else r[key][1] for r in sub]
            fitted = _fit(xs, ys)
            if key == "memory":  # MiB, printed in the same shape
                fitted = fitted.replace(" s + ", " GiB + ").replace(" ms ", " MiB ")
            print(f"fitted {'peak RSS of gate cold' if key == 'memory' else key + ' CPU'} per {unit}: {fitted}")


def scale(tmp: Path) -> list[dict[str, Any]]:
    """Plan and gate at ~2,400, ~6,100 and ~10,000 resources, with the AnalyzeStack message size."""
    cases = [(f"vllm-{n}", "vllm", n, generated_stacks.write(generated_stacks.vllm_settings(n), tmp / f"src-{n}"))
             for n in SCALE_DEPLOYMENTS]
    rows = measure(cases, 1, tmp)
    print("| stack | resources | analyzed | AnalyzeStack MiB | plan wall / CPU s | gate cold wall / CPU s "
          "| gate after plan wall / CPU s | peak MiB gate cold |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        p, g, ga = r["plan"], r["gate cold"], r["gate after plan"]
        print(f"| {r['label']} | {r['resources']} | {r['analyzed']} | {r['bytes'] / 2**20:.1f} | {p[0]:.1f} / {p[1]:.1f} "
              f"| {g[0]:.1f} / {g[1]:.1f} | {ga[0]:.1f} / {ga[1]:.1f} | {g[2]:.0f} |")
    xs = [float(r["resources"]) for r in rows]
    for key in ("plan", "gate cold", "gate after plan"):
        slope, intercept = statistics.linear_regression(xs, [r[key][1] for r in rows])
        print(f"{key} CPU between them: {intercept:.1f} s + {slope * 1000:.2f} ms per resource")
    return rows


def _met(ok: bool) -> str:
    return "met" if ok else "**not met**"


def targets(rows: list[dict[str, Any]], large: list[dict[str, Any]]) -> None:
    """Issue 14's targets, each with this run's figure (whole processes; one run's medians)."""
    print("| target | this run | |")
    print("|---|---|---|")
    prod = next(r for r in rows if r["label"] == "prod")
    p, g, f, fi = prod["plan"], prod["gate cold"], prod["floor"], prod["floor+imports"]
    print(f"| plan prod ≤ 2.5× the fair floor (CPU) | {p[1] / f[1]:.2f}× ({p[1]:.2f} / {f[1]:.2f} s) "
          f"| {_met(p[1] <= 2.5 * f[1])} |")
    print(f"| plan prod ≤ 1.3× floor+imports (CPU) | {p[1] / fi[1]:.2f}× | {_met(p[1] <= 1.3 * fi[1])} |")
    print(f"| gate prod cold ≤ plan + 0.5 s (wall; CPU beside it) | + {g[0] - p[0]:.2f} s (CPU + {g[1] - p[1]:.2f} s) "
          f"| {_met(g[0] - p[0] <= 0.5)} |")
    every = rows + large
    if max(r["analyzed"] for r in every) < 1000:  # the shipped stacks alone: a slope of noise
        print("| ≤ 1.5 ms per analyzed resource | needs the generated stacks (run without --quick, or --scale) | |")
    else:
        slope, _ = statistics.linear_regression([float(r["analyzed"]) for r in every],
                                                [r["gate cold"][1] - r["plan"][1] for r in every])
        print(f"| ≤ 1.5 ms per analyzed resource (slope of gate cold − plan CPU, {len(every)} stacks) "
              f"| {slope * 1000:.2f} ms | {_met(slope <= 0.0015)} |")
    near = [r for r in every if 2000 <= r["resources"] <= 3000]
    for r in near:
        print(f"| {r['label']} ({r['resources']} resources): plan ≤ 6 s (wall) | {r['plan'][0]:.2f} s "
              f"| {_met(r['plan'][0] <= 6)} |")
        print(f"| {r['label']} ({r['resources']} resources): gate cold ≤ 10 s (wall) | {r['gate cold'][0]:.2f} s "
              f"| {_met(r['gate cold'][0] <= 10)} |")
    for r in (r for r in large if r["resources"] >= 10_000):  # run() stops the benchmark on any other exit
        print(f"| {r['resources']:,} resources gate without error | gate cold exited 0 or 1 (a finding) in "
              f"{r['gate cold'][0]:.1f} s | met |")


def main(argv: list[str]) -> None:
    """Print the table, the fitted growth and, with ``--scale``, the large runs."""
    rounds = int(argv[argv.index("--rounds") + 1]) if "--rounds" in argv else 1
    print(f"load average at start: {os.getloadavg()[0]:.2f} (1 min); {rounds} interleaved round(s); medians")
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        cases: list[tuple[str, str, int, Path]] = [(s, "shipped", 0, ROOT / "stacks" / f"Pulumi.{s}.yaml")
                                                   for s in STACKS]
        if "--quick" not in argv:
            cases += [(f"vllm-{n}", "vllm", n, generated_stacks.write(generated_stacks.vllm_settings(n), tmp / f"v{n}"))
                      for n in VLLM]
            cases += [(f"fleets-{n}", "fleets", n,
                       generated_stacks.write(generated_stacks.fleet_settings(n), tmp / f"f{n}")) for n in FLEETS]
        rows = measure(cases, rounds, tmp)
        print()
        table(rows)
        print()
        growth(rows)
        large = []
        if "--scale" in argv:
            print()
            large = scale(tmp)
        print()
        targets(rows, large)
    print(f"load average at end: {os.getloadavg()[0]:.2f} (1 min)")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--dump":
        dump(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        main(sys.argv[1:])
