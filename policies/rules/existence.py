"""Stack invariants: what the plan names exists, and what a container is started with is complete.

- Every pinned Helm chart version is listed in its repository's index (a committed copy of the entries
  we rely on, ``policies/data/helm-index.json``, refreshed by ``scripts/refresh_helm_index.py``; never
  fetched here).
- Every Foundry deployment (format, name, version, SKU) is one the model is offered with
  (``catalog.FOUNDRY_OFFERS``, with its source).
- Every container running our ONNX server passes arguments its real parser accepts: the parser is rebuilt
  from ``policies/data/onnx-server-cli.json``, the machine-readable spec ``python -m policies.gen_compliance
  --write`` generates from ``components/engines/onnx_server/server.py``'s ``build_parser()`` (its
  ``--check``, run by tests/policies/test_policy_meta.py, fails when the spec is stale). The pack ships
  alone (``pulumi policy publish``): it reads nothing outside its own folder.
"""

# Every rule takes (resources, config) so the pack can adapt them uniformly; not all use both.
# ruff: noqa: ARG001

from __future__ import annotations

import argparse
import contextlib
import io
import json
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any, Final

from policies.rules.catalog import FOUNDRY_OFFERS
from policies.rules.plan_graph import chart_name
from policies.rules.stack import Finding, StackResource
from policies.rules.tokens import FOUNDRY_DEPLOYMENT, HELM_RELEASE_TYPES
from policies.rules.wire import get, mapping, pod_spec

DATA_DIR: Final = Path(__file__).resolve().parents[1] / "data"
HELM_INDEX: Final = DATA_DIR / "helm-index.json"
ONNX_SERVER_CLI: Final = DATA_DIR / "onnx-server-cli.json"
"""The ONNX server's command line as data (generated from its ``build_parser()``; see ``cli_spec``)."""
ONNX_ENTRYPOINT: Final = "/app/server.py"
"""The image's ENTRYPOINT is ``python /app/server.py`` (components/engines/onnx_server/Dockerfile)."""
REFRESH: Final = "python scripts/refresh_helm_index.py"


@cache
def helm_index() -> dict[str, Any]:
    """The committed index entries, by repository URL."""
    return dict(json.loads(HELM_INDEX.read_text(encoding="utf-8"))["repositories"])


def _repo(release: StackResource) -> str:
    """``repositoryOpts.repo``, or the registry path of an ``oci://`` chart reference."""
    chart = str(get(release.props, "chart") or "")
    if chart.startswith("oci://"):
        return chart.rstrip("/").rsplit("/", 1)[0]
    return str(get(release.props, "repositoryOpts.repo") or "").rstrip("/")


def helm_chart_versions(resources: Sequence[StackResource], cfg: Mapping[str, Any]) -> list[Finding]:
    """Every Helm release pins a chart version its repository's index lists."""
    index = helm_index()
    out: list[Finding] = []
    for release in (r for r in resources if r.type in HELM_RELEASE_TYPES):
        chart, version, repo = chart_name(release), str(get(release.props, "version") or ""), _repo(release)
        if not version:
            out.append(Finding(f"version: found unset for chart {chart!r}; pin the chart version so every "
                               "`pulumi up` installs the same chart.", release))
            continue
        entry = index.get(repo)
        if entry is None and repo.startswith("oci://"):
            out.append(Finding(
                f"chart: found {chart!r} {version} from {repo}, an OCI registry, which publishes no index.yaml to "
                "check the version against offline; use the chart's HTTPS repository, or exempt the release with a "
                "written reason after `helm show chart` confirms the version.", release))
            continue
        if entry is None:
            out.append(Finding(
                f"repositoryOpts.repo: found {repo or 'unset'!s} for chart {chart!r} {version}, which "
                "policies/data/helm-index.json does not hold; add the pin to PINS in scripts/refresh_helm_index.py "
                "and run it so the version is checked.", release))
            continue
        known = [str(e["version"]) for e in entry["charts"].get(chart, [])]
        if version not in known:
            listed = ", ".join(known) or "none"
            out.append(Finding(
                f"version: found {version!r} for chart {chart!r}, which the index of {repo} does not list "
                f"(committed entries: {listed}; copied {entry['copied_on']}); `helm install` fails with 'chart "
                f"not found'. Pin a version the repository publishes and refresh with {REFRESH}.", release))
    return out


def foundry_model_offered(resources: Sequence[StackResource], cfg: Mapping[str, Any]) -> list[Finding]:
    """Every Foundry deployment uses a (format, name, version, SKU) the model is offered with."""
    offers = {(o.format, o.name, o.version): o for o in FOUNDRY_OFFERS}
    out: list[Finding] = []
    for dep in (r for r in resources if r.type == FOUNDRY_DEPLOYMENT):
        model = mapping(get(dep.props, "properties.model"))
        key = (str(model.get("format")), str(model.get("name")), str(model.get("version")))
        sku = str(get(dep.props, "sku.name") or "")
        offer = offers.get(key)
        if offer is None:
            out.append(Finding(
                f"properties.model: found {key[1]!r} version {key[2]!r} (format {key[0]!r}), which "
                "catalog.FOUNDRY_OFFERS does not record; add its offer (deployment types, with the Learn page "
                "it comes from) before deploying it.", dep))
        elif sku not in offer.skus:
            out.append(Finding(
                f"sku.name: found {sku!r} for {offer.name} version {offer.version}, which is offered only as "
                f"{', '.join(sorted(offer.skus))} ({offer.source}); Azure refuses the deployment. Use "
                f"{sorted(offer.skus)[0]}.", dep))
    return out


# --------------------------------------------------------------------------- container arguments


_ACTIONS: Final = {"_StoreAction": "store", "_StoreTrueAction": "store_true", "_StoreFalseAction": "store_false",
                   "_StoreConstAction": "store_const", "_AppendAction": "append", "_CountAction": "count",
                   "_HelpAction": "help"}
_TYPES: Final[dict[str, type]] = {"str": str, "int": int, "float": float}


def cli_spec(parser: argparse.ArgumentParser, source: str) -> dict[str, Any]:
    """``parser`` as data: every option with the argparse settings that decide what it accepts.

    Refuses (ValueError) what the spec cannot carry, such as a custom action or type, so a parser the
    pack could not rebuild faithfully is never written.
    """
    arguments = []
    for action in parser._actions:  # argparse has no public way to list its actions
        kind = _ACTIONS.get(type(action).__name__)
        type_name = getattr(action.type, "__name__", None) if action.type is not None else None
        if kind is None or (type_name is not None and type_name not in _TYPES):
            msg = f"{'/'.join(action.option_strings) or action.dest}: cannot describe {action!r} as data"
            raise ValueError(msg)
        arguments.append({"flags": list(action.option_strings), "dest": action.dest, "action": kind,
                          "required": action.required, "type": type_name, "nargs": action.nargs,
                          "choices": list(action.choices) if action.choices is not None else None,
                          "const": action.const, "default": action.default})
    return {"source": source, "prog": parser.prog, "arguments": arguments}


def parser_from_spec(spec: Mapping[str, Any]) -> argparse.ArgumentParser:
    """The argparse parser ``spec`` (from ``cli_spec``) describes, accepting and refusing what the original does."""
    parser = argparse.ArgumentParser(prog=spec["prog"], add_help=False)
    for arg in spec["arguments"]:
        kwargs: dict[str, Any] = {"dest": arg["dest"], "action": arg["action"]}
        if arg["action"] == "help":
            parser.add_argument(*arg["flags"], action="help")
            continue
        if arg["action"] in {"store", "append"}:
            kwargs.update(type=_TYPES[arg["type"]] if arg["type"] else None, nargs=arg["nargs"],
                          choices=arg["choices"])
        if arg["action"] in {"store_const"}:
            kwargs["const"] = arg["const"]
        if arg["flags"]:
            kwargs["required"] = arg["required"]
        else:  # a positional: argparse derives dest and requiredness from the name and nargs
            kwargs.pop("dest")
        parser.add_argument(*(arg["flags"] or [arg["dest"]]), default=arg["default"], **kwargs)
    return parser


@cache
def onnx_server_cli() -> dict[str, Any]:
    """The committed spec of the ONNX server's command line."""
    return dict(json.loads(ONNX_SERVER_CLI.read_text(encoding="utf-8")))


def onnx_server_argv_error(argv: Sequence[str]) -> str | None:
    """What the ONNX server's own parser says about ``argv`` (None when it accepts them)."""
    parser = parser_from_spec(onnx_server_cli())
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            parser.parse_args(list(argv))
    except SystemExit:
        lines = [line for line in err.getvalue().splitlines() if line.strip()]
        return lines[-1].split(" error: ", 1)[-1] if lines else "rejected"
    return None


def _server_argv(container: Mapping[str, Any]) -> list[str] | None:
    """The arguments server.py gets, when the container runs it (by command or by the image's entrypoint)."""
    command = [str(c) for c in container.get("command") or []]
    args = [str(a) for a in container.get("args") or []]
    if command:
        if ONNX_ENTRYPOINT not in command:
            return None
        return command[command.index(ONNX_ENTRYPOINT) + 1:] + args
    return args if "onnx-server" in str(container.get("image") or "") else None


def container_args(resources: Sequence[StackResource], cfg: Mapping[str, Any]) -> list[Finding]:
    """Containers running the ONNX server pass arguments its parser accepts (--model-dir, --served-model-name)."""
    out: list[Finding] = []
    for r in resources:
        pod = pod_spec(r.type, r.props)
        if pod is None:
            continue
        for c in pod.containers(include_init=False):
            argv = _server_argv(c.spec)
            if argv is None:
                continue
            error = onnx_server_argv_error(argv)
            if error is not None:
                out.append(Finding(
                    f"{c.path}.args: the ONNX server ({onnx_server_cli()['source']}) refuses {argv!r}: "
                    f"{error}; the container exits at start. Pass what build_parser() requires.", r))
    return out
