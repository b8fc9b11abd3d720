"""Plan and gate against a fair floor, whole process, per shipped stack.

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/plan_bench.py [REPEATS]``. For each stack it first
dumps the plan's exact tree (``--dump``, in a child process), then runs, interleaved, REPEATS rounds of
five whole processes: ``slmctl plan <stack> --no-gate --quiet``, ``slmctl gate`` on a copy of the stack
file never planned (so it plans), ``slmctl gate`` on a copy planned just before (so it analyzes the
recording ``plan`` left, ``slmctl/plan_reuse.py``), the fair floor (``fair_floor.py``: the same tree,
with the type aliases a real deploy sends, same mocks, nothing else) and the floor that also imports
the provider SDK modules the plan loaded. It prints medians of wall and CPU seconds (user + system of
the process and its children: the gate's pack included) and the peak RSS, the ratios, and the fitted
growth (least squares, seconds per resource across the stacks). Absolute times on a shared machine are
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

ROOT = Path(__file__).resolve().parent.parent
STACKS = ("local", "dev", "staging", "prod")
PROVIDER_PREFIXES = ("pulumi_azure_native", "pulumi_kubernetes", "pulumi_docker", "pulumi_random", "pulumi_tls")
REDUCED = ("generated stacks (1-120 vLLM deployments, 1-300 edge fleets) are not in this script yet; "
           "fleet_bench.py covers fleet growth in-process")


def dump(stack: str, out: Path) -> None:
    """Write the tree of ``stack``'s plan (with the alias specs the SDK sent) and the provider modules loaded."""
    from slmctl import recorder
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
        # With the aliases a real deploy sends: the floor replays what the SDK costs, not what plan skips.
        plan = make_plan(load_stack_file(ROOT / "stacks" / f"Pulumi.{stack}.yaml"), type_aliases=True)
    finally:
        recorder.RecordingMonitor.RegisterResource = original  # type: ignore[method-assign]
    stack_urns = {r.urn for r in plan.recording.registrations if r.type == "pulumi:pulumi:Stack"}
    tree = {"stack": stack,
            "modules": sorted(m for m in sys.modules if m.startswith(PROVIDER_PREFIXES)),
            "resources": [{"urn": r.urn, "type": r.type, "name": r.name, "custom": r.custom,
                           "parent": None if r.parent in stack_urns or not r.parent or "pulumi:pulumi:Stack" in r.parent
                           else r.parent, "inputs": r.inputs, "protect": r.protect, "aliases": aliases.get(r.urn, [])}
                          for r in plan.recording.registrations if not r.read]}
    out.write_text(json.dumps(tree), encoding="utf-8")


def run(argv: list[str]) -> tuple[float, float, float]:
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


def _fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    slope, intercept = statistics.linear_regression(xs, ys)
    return slope, intercept


def main() -> None:
    """Print the markdown table the README quotes."""
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    py = sys.executable
    print(f"load average at start: {os.getloadavg()[0]:.2f} (1 min); {repeats} interleaved rounds; medians")
    print(f"reduced: {REDUCED}")
    from slmctl.plan import default_out_dir
    from slmctl.plan_reuse import RECORDING_NAME

    rows: list[dict[str, Any]] = []
    out_dirs: list[Path] = []
    with tempfile.TemporaryDirectory() as tmp:
        for stack in STACKS:
            tree = Path(tmp) / f"{stack}.json"
            subprocess.run([py, __file__, "--dump", stack, str(tree)], cwd=ROOT, check=True,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
            count = len(json.loads(tree.read_text(encoding="utf-8"))["resources"])
            # gate on a copy of the stack file that was never planned (it plans, as on a fresh checkout), and
            # gate on another copy right after its plan (it reuses the recording: slmctl/plan_reuse.py).
            fresh, planned = (Path(tmp) / kind / f"Pulumi.{stack}.yaml" for kind in ("fresh", "planned"))
            for copy in (fresh, planned):
                copy.parent.mkdir(exist_ok=True)
                copy.write_bytes((ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_bytes())
            subprocess.run([py, "-m", "slmctl", "plan", "--stack-file", str(planned), "--no-gate", "--quiet"],
                           cwd=ROOT, check=True, stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT)})
            stale = default_out_dir(stack, fresh) / RECORDING_NAME
            out_dirs.extend(default_out_dir(stack, copy) for copy in (fresh, planned))
            commands = {
                "plan": [py, "-m", "slmctl", "plan", stack, "--no-gate", "--quiet", "--out", f"{tmp}/{stack}"],
                "gate": [py, "-m", "slmctl", "gate", "--stack-file", str(fresh), "--quiet", "--format", "json",
                         "--output", f"{tmp}/{stack}-gate.json"],
                "gate after plan": [py, "-m", "slmctl", "gate", "--stack-file", str(planned), "--quiet", "--format",
                                    "json", "--output", f"{tmp}/{stack}-gate-reused.json"],
                "floor": [py, str(ROOT / "benchmarks" / "fair_floor.py"), str(tree)],
                "floor+imports": [py, str(ROOT / "benchmarks" / "fair_floor.py"), str(tree), "--imports"],
            }
            samples: dict[str, list[tuple[float, float, float]]] = {k: [] for k in commands}
            for _ in range(repeats):
                for key, argv in commands.items():
                    stale.unlink(missing_ok=True)  # never a recording for the fresh copy's gate to reuse
                    samples[key].append(run(argv))
            med = {k: tuple(statistics.median(s[i] for s in v) for i in range(3)) for k, v in samples.items()}
            rows.append({"stack": stack, "resources": count, **med})
    for out_dir in out_dirs:  # build/<stack>-<hash>/ of the temporary copies
        shutil.rmtree(out_dir, ignore_errors=True)
    print()
    print("| stack | resources | plan wall / CPU s | gate wall / CPU s | floor wall / CPU s | floor+imports wall / CPU s "
          "| plan / floor (CPU) | plan / floor+imports (CPU) | gate − plan (CPU s) | gate after plan wall / CPU s "
          "| peak MiB plan / gate / floor |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        p, g, f, fi, ga = r["plan"], r["gate"], r["floor"], r["floor+imports"], r["gate after plan"]
        print(f"| {r['stack']} | {r['resources']} | {p[0]:.2f} / {p[1]:.2f} | {g[0]:.2f} / {g[1]:.2f} "
              f"| {f[0]:.2f} / {f[1]:.2f} | {fi[0]:.2f} / {fi[1]:.2f} | {p[1] / f[1]:.2f} | {p[1] / fi[1]:.2f} "
              f"| {g[1] - p[1]:.2f} | {ga[0]:.2f} / {ga[1]:.2f} | {p[2]:.0f} / {g[2]:.0f} / {f[2]:.0f} |")
    xs = [float(r["resources"]) for r in rows]
    print()
    for key in ("plan", "gate", "gate after plan", "floor", "floor+imports"):
        slope, intercept = _fit(xs, [r[key][1] for r in rows])
        print(f"fitted CPU growth, {key}: {intercept:.2f} s + {slope * 1000:.2f} ms per resource")
    print(f"load average at end: {os.getloadavg()[0]:.2f} (1 min)")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--dump":
        dump(sys.argv[2], Path(sys.argv[3]))
    else:
        main()
