"""Where the policy pack spends its time: the pack's analyzer driven in-process under cProfile.

Run: ``PYTHONPATH=. .venv/bin/python -m benchmarks.pack_profile [STACK_FILE] [TOP]`` (default
``stacks/Pulumi.prod.yaml``, 25 rows). It plans the stack in-process, builds the pack's servicer
exactly as ``policies/__main__.py`` does (same policies, initial config, ``conversion.install``, the
stack's ``PULUMI_*`` environment), configures it with the levels the gate resolves, and then sends
the gate's own requests (``slmctl.gate.Requests``) straight to
``Analyze`` and ``AnalyzeStack`` without gRPC (the plan's objects frozen first: the pack's own process
does not hold them, so the collector must not bill their traversal to the pack). It prints the milliseconds per analyzed resource, the
AnalyzeStack seconds, and the functions with the most cumulative and own time. It asserts nothing.
"""

from __future__ import annotations

import cProfile
import gc
import io
import json
import os
import pstats
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slmctl import gate
from slmctl.loader import load_stack_file
from slmctl.plan import make_plan
from slmctl.recorder import Recording

ROOT = Path(__file__).resolve().parent.parent


def servicer_for(stack: str, project: str, config: dict[str, str]) -> Any:
    """The pack's analyzer servicer as ``policies/__main__.py`` builds it, in this process."""
    os.environ.update({"PULUMI_PROJECT": project, "PULUMI_STACK": stack, "PULUMI_DRY_RUN": "true",
                       "PULUMI_CONFIG": json.dumps(config)})
    import pulumi_policy.policy as sdk
    from pulumi_policy import EnforcementLevel

    from policies import conversion
    from policies.pack import PACK_NAME, build_policies, environment_for_stack, initial_config

    conversion.install()
    return sdk._PolicyAnalyzerServicer(PACK_NAME, "0.0.1", list(build_policies()), EnforcementLevel.ADVISORY,
                                       initial_config(environment_for_stack(stack), stack))


@dataclass(frozen=True)
class InProcessGate:
    """The pack's servicer configured for one recording, and the gate's requests for it."""

    servicer: Any
    environment: str
    requests: list[Any]
    stack_request: Any
    resources: int


def prepare(recording: Recording, stack_file: Path | None) -> InProcessGate:
    """The servicer, configured with the levels the gate resolves, and the requests the gate would send.

    It sets the ``PULUMI_*`` variables of this process as the gate sets the pack's.
    """
    from google.protobuf import empty_pb2
    from pulumi.runtime.proto import analyzer_pb2

    from policies.environments import config_path_for_stack, environment_of_stack

    config = gate._stack_config(stack_file)  # the gate's own request builders
    servicer = servicer_for(recording.stack, recording.project, config)
    info = servicer.GetAnalyzerInfo(empty_pb2.Empty(), None)
    resolved = gate.reconcile_config(info, gate.load_policy_config(config_path_for_stack(recording.stack)))
    request = analyzer_pb2.ConfigureAnalyzerRequest()
    for name, (level, props) in resolved.items():
        request.policyConfig[name].enforcementLevel = gate.LEVEL_CODES[level]  # type: ignore[assignment]
        request.policyConfig[name].properties.update(props)
    servicer.Configure(request, None)
    requests = gate.Requests(recording.registrations)
    analyzed = [r for r in recording.registrations if r.custom and not r.read
                and not r.type.startswith("pulumi:providers:")]
    return InProcessGate(
        servicer, environment_of_stack(recording.stack), [requests.analyze(r) for r in analyzed],
        analyzer_pb2.AnalyzeStackRequest(resources=[requests.stack_resource(r) for r in recording.registrations]),
        len(recording.registrations))


def main(argv: list[str]) -> None:
    """Profile one gate's Analyze and AnalyzeStack calls."""
    path = Path(argv[0]) if argv else ROOT / "stacks" / "Pulumi.prod.yaml"
    top = int(argv[1]) if len(argv) > 1 else 25
    prepared = prepare(make_plan(load_stack_file(path)).recording, path)
    gc.collect()
    gc.freeze()  # the plan's objects are not in the pack's process: no collection here should traverse them
    servicer, requests, stack_req = prepared.servicer, prepared.requests, prepared.stack_request
    environment, analyzed = prepared.environment, requests
    print(f"{path.name} ({environment} levels): {len(analyzed)} resources analyzed")
    profile = cProfile.Profile()
    for label, prof in (("plain", None), ("under cProfile", profile)):
        start = time.process_time()
        if prof is not None:
            prof.enable()
        diagnostics = sum(len(servicer.Analyze(req, None).diagnostics) for req in requests)
        analyze_cpu = time.process_time() - start
        diagnostics += len(servicer.AnalyzeStack(stack_req, None).diagnostics)
        if prof is not None:
            prof.disable()
        stack_cpu = time.process_time() - start - analyze_cpu
        print(f"{label}: Analyze {analyze_cpu:.2f} s CPU = {analyze_cpu / len(analyzed) * 1000:.2f} ms per resource; "
              f"AnalyzeStack ({prepared.resources} resources) {stack_cpu:.2f} s CPU; "
              f"{diagnostics} diagnostics")
    for key in ("cumulative", "tottime"):
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats(key).print_stats(top)
        print(out.getvalue())


if __name__ == "__main__":
    main(sys.argv[1:])
