"""Existence and completeness invariants (policies/rules/existence.py): charts, Foundry offers, server args.

Each rule gets a violating fragment and its compliant twin; the committed data they read is checked
against the code that pins it.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from components.inference_cluster import (
    DEVICE_PLUGIN_CHART_VERSION,
    DEVICE_PLUGIN_REPO,
    GPU_OPERATOR_CHART_VERSION,
    GPU_OPERATOR_REPO,
)
from components.monitoring import helm_values as hv
from components.serving_workloads import (
    INGRESS_NGINX_CHART_VERSION,
    INGRESS_NGINX_REPO,
    KEDA_CHART_VERSION,
    KEDA_REPO,
)
from policies.rules import existence
from policies.rules.catalog import FOUNDRY_OFFERS
from policies.rules.stack import StackResource
from tests.engines.onnx_server_modules import load as load_server_module
from tests.inference.builders import build, make_settings

REPO_ROOT = Path(__file__).resolve().parents[2]

RELEASE = "kubernetes:helm.sh/v3:Release"
KPS_REPO = "https://prometheus-community.github.io/helm-charts"


def res(type_: str, name: str, props: dict[str, Any]) -> StackResource:
    return StackResource(type_, name, f"urn:pulumi:dev::p::{type_}::{name}", props)


def release(version: str | None, *, chart: str = "kube-prometheus-stack", repo: str = KPS_REPO) -> StackResource:
    props: dict[str, Any] = {"chart": chart, "repositoryOpts": {"repo": repo}}
    if version is not None:
        props["version"] = version
    return res(RELEASE, "observability-kps", props)


class TestHelmChartVersions:
    def test_a_version_the_repository_never_published_fails(self) -> None:
        (finding,) = existence.helm_chart_versions([release("81.4.5")], {})
        assert finding.message == (
            "version: found '81.4.5' for chart 'kube-prometheus-stack', which the index of "
            "https://prometheus-community.github.io/helm-charts does not list (committed entries: 81.4.3; copied "
            "2026-12-03); `helm install` fails with 'chart not found'. Pin a version the repository publishes and "
            "refresh with python scripts/refresh_helm_index.py.")
        assert existence.helm_chart_versions([release("81.4.3")], {}) == []

    def test_unknown_repositories_and_unpinned_charts_fail(self) -> None:
        unknown = existence.helm_chart_versions([release("10.1.4", chart="grafana",
                                                         repo="https://grafana.github.io/helm-charts")], {})
        assert [f.message.split(",")[0] for f in unknown] == [
            "repositoryOpts.repo: found https://grafana.github.io/helm-charts for chart 'grafana' 10.1.4"]
        (unpinned,) = existence.helm_chart_versions([release(None)], {})
        assert unpinned.message.startswith("version: found unset for chart 'kube-prometheus-stack'")

    @pytest.mark.parametrize(("repo", "chart", "version"), [
        (hv.KUBE_PROMETHEUS_STACK_REPO, hv.KUBE_PROMETHEUS_STACK_CHART, hv.KUBE_PROMETHEUS_STACK_VERSION),
        (hv.DCGM_EXPORTER_REPO, hv.DCGM_EXPORTER_CHART, hv.DCGM_EXPORTER_VERSION),
        (DEVICE_PLUGIN_REPO, "nvidia-device-plugin", DEVICE_PLUGIN_CHART_VERSION),
        (GPU_OPERATOR_REPO, "gpu-operator", GPU_OPERATOR_CHART_VERSION),
        (KEDA_REPO, "keda", KEDA_CHART_VERSION),
        (INGRESS_NGINX_REPO, "ingress-nginx", INGRESS_NGINX_CHART_VERSION)])
    def test_every_chart_the_code_pins_is_in_the_committed_index(self, repo: str, chart: str, version: str) -> None:
        assert existence.helm_chart_versions([release(version, chart=chart, repo=repo)], {}) == []

    def test_the_committed_entries_name_their_source_and_digest(self) -> None:
        doc = json.loads(existence.HELM_INDEX.read_text(encoding="utf-8"))
        for repo, entry in doc["repositories"].items():
            assert entry["copied_from"], repo
            assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", entry["copied_on"]), repo
            for chart, versions in entry["charts"].items():
                for v in versions:
                    if v["digest"] is None:  # copied from the chart's release commit, not its index: says so
                        assert "no digest is recorded" in entry["copied_from"], (chart, v)
                        continue
                    assert re.fullmatch(r"[0-9a-f]{64}", v["digest"]), (chart, v)
                    assert v["appVersion"], (chart, v)


def deployment(sku: str, *, name: str = "Phi-4-mini-instruct", version: str = "1") -> StackResource:
    return res("azure-native:cognitiveservices:Deployment", "models-deploy-phi", {
        "properties": {"model": {"format": "Microsoft", "name": name, "version": version}},
        "sku": {"name": sku, "capacity": 5.0}})


class TestFoundryOffers:
    def test_phi_4_mini_has_no_data_zone_offer(self) -> None:
        (finding,) = existence.foundry_model_offered([deployment("DataZoneStandard")], {})
        assert finding.message.startswith("sku.name: found 'DataZoneStandard' for Phi-4-mini-instruct version 1, "
                                          "which is offered only as GlobalStandard (https://learn.microsoft.com/")
        assert finding.message.endswith("Azure refuses the deployment. Use GlobalStandard.")
        assert existence.foundry_model_offered([deployment("GlobalStandard")], {}) == []

    def test_a_model_without_a_recorded_offer_fails(self) -> None:
        (finding,) = existence.foundry_model_offered([deployment("GlobalStandard", version="7")], {})
        assert finding.message.startswith("properties.model: found 'Phi-4-mini-instruct' version '7'")

    def test_every_offer_names_its_source(self) -> None:
        assert all(o.source.startswith("https://learn.microsoft.com/") and o.skus for o in FOUNDRY_OFFERS)


def onnx_workload(args: list[str], *, command: list[str] | None = None) -> StackResource:
    container: dict[str, Any] = {"name": "onnx-genai", "image": "slmdevacr.azurecr.io/onnx-server@sha256:" + "b" * 64,
                                 "args": args}
    if command is not None:
        container["command"] = command
    return res("kubernetes:apps/v1:Deployment", "serving-phi4-onnx-deploy",
               {"spec": {"template": {"spec": {"containers": [container]}}}})


class TestContainerArgs:
    def test_the_onnx_server_parser_refuses_missing_required_flags(self) -> None:
        (finding,) = existence.container_args([onnx_workload(["--model-dir", "/models/cpu"],
                                                             command=["python", "/app/server.py"])], {})
        assert finding.message == (
            "spec.template.spec.containers[0].args: the ONNX server (components/engines/onnx_server/server.py) "
            "refuses ['--model-dir', '/models/cpu']: the following arguments are required: --served-model-name; the "
            "container exits at start. Pass what build_parser() requires.")

    def test_the_image_entrypoint_counts_when_there_is_no_command(self) -> None:
        (finding,) = existence.container_args([onnx_workload(["--served-model-name", "phi4", "--port", "x"])], {})
        assert "argument --port: invalid int value: 'x'" in finding.message
        assert existence.container_args([onnx_workload(["--model-dir", "/m", "--served-model-name", "phi4"])], {}) == []

    def test_other_images_are_not_parsed(self) -> None:
        other = res("kubernetes:apps/v1:Deployment", "vllm", {"spec": {"template": {"spec": {"containers": [
            {"name": "vllm", "image": "vllm/vllm-openai:v0.11.0", "args": ["--model", "x"]}]}}}})
        assert existence.container_args([other], {}) == []

    @pytest.mark.parametrize("argv", [
        [], ["--model-dir", "/m"], ["--served-model-name", "p"], ["--model-dir", "/m", "--served-model-name", "p"],
        ["--model-dir=/m", "--served-model-name=p", "--port", "8080", "--io-timeout", "2.5"],
        ["--model-dir", "/m", "--served-model-name", "p", "--port", "x"],
        ["--model-dir", "/m", "--served-model-name", "p", "--io-timeout", "soon"],
        ["--model-dir", "/m", "--served-model-name", "p", "--unknown"], ["--model-dir"], ["positional"],
        ["--model", "/m", "--served", "p"], ["-h"], ["--model-dir", "/m", "--served-model-name", "p", "--host"]])
    def test_the_committed_spec_parses_exactly_like_the_server(self, argv: list[str]) -> None:
        """The pack ships alone, so it rebuilds the server's parser from policies/data/onnx-server-cli.json: on
        every argv it must accept, refuse and explain exactly as the real build_parser() does."""
        real = load_server_module("server").build_parser()

        def outcome(parser: argparse.ArgumentParser) -> tuple[str, Any]:
            err = io.StringIO()
            try:
                with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                    return "ok", vars(parser.parse_args(argv))
            except SystemExit as exc:  # the error line without the usage's prog
                return f"exit {exc.code}", [line.split(" error: ", 1)[-1] for line in err.getvalue().splitlines()[-1:]]

        assert outcome(existence.parser_from_spec(existence.onnx_server_cli())) == outcome(real)

    def test_the_spec_is_regenerated_from_the_parser(self) -> None:
        """gen_compliance writes the spec from the real parser; a parser change makes --check fail."""
        from policies import gen_compliance

        assert gen_compliance.onnx_server_cli() == json.loads(existence.ONNX_SERVER_CLI.read_text(encoding="utf-8"))
        parser = argparse.ArgumentParser(prog="server.py")
        parser.add_argument("--mode", type=lambda v: v.upper())
        with pytest.raises(ValueError, match="--mode: cannot describe"):
            existence.cli_spec(parser, "x")

    def test_the_component_passes_what_the_server_requires(self) -> None:
        recording = build(make_settings("dev"))
        resources = [StackResource(r.type, r.name, r.urn, r.inputs) for r in recording.registrations]
        onnx = [r for r in resources if r.name.endswith("phi4-onnx-deploy")]
        assert onnx, "the builder settings serve phi4-onnx on AKS"
        assert existence.container_args(resources, {}) == []


def _refresh_script() -> Any:
    import importlib.util
    spec = importlib.util.spec_from_file_location("slm_refresh_helm_index", REPO_ROOT / "scripts" /
                                                  "refresh_helm_index.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_refresh_script_keeps_the_pinned_entries_and_refuses_a_missing_pin(monkeypatch: pytest.MonkeyPatch) -> None:
    script = _refresh_script()
    committed = json.loads(existence.HELM_INDEX.read_text(encoding="utf-8"))["repositories"]

    def index_with_every_pin(repo: str) -> dict[str, Any]:  # what each live index.yaml holds, offline
        charts = committed[repo]["charts"]
        return {"entries": {c: [{**e, "created": "x", "urls": ["u"]} for e in v] + [
            {"version": "0.0.1", "appVersion": "0", "digest": "0" * 64}] for c, v in charts.items()}}

    monkeypatch.setattr(script, "fetch_index", index_with_every_pin)
    document, missing = script.refreshed()
    assert missing == []
    assert {r: e["charts"] for r, e in document["repositories"].items()} == \
        {r: e["charts"] for r, e in committed.items()}
    monkeypatch.setattr(script, "fetch_index", lambda repo: {"entries": {}})
    _, missing = script.refreshed()
    assert "kube-prometheus-stack 81.4.3 is not in https://prometheus-community.github.io/helm-charts/index.yaml" \
        in missing


def test_the_local_stacks_charts_are_in_the_committed_index() -> None:
    """KEDA and ingress-nginx (installed by ``local``) are checked against real index entries, not advisory."""
    from slmctl.loader import load_stack_file
    from slmctl.plan import make_plan

    rec = make_plan(load_stack_file(REPO_ROOT / "stacks" / "Pulumi.local.yaml")).recording
    resources = [StackResource(r.type, r.name, r.urn, r.inputs) for r in rec.registrations]
    charts = {str(r.props["chart"]) for r in resources if r.type == RELEASE}
    assert {"keda", "ingress-nginx"} <= charts
    assert existence.helm_chart_versions(resources, {}) == []
    index = existence.helm_index()
    (nginx,) = index["https://kubernetes.github.io/ingress-nginx"]["charts"]["ingress-nginx"]
    assert nginx["appVersion"] == "1.13.3"  # chart 4.13.3 ships controller v1.13.3
