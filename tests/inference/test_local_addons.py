"""The local stack brings what its workloads need: KEDA (ScaledObject CRDs) and ingress-nginx (class nginx)."""

from __future__ import annotations

import copy
from pathlib import Path

from stack_support import REPO_ROOT, stack_settings, write_stack

from components.serving_workloads import INGRESS_NGINX_CHART_VERSION, KEDA_CHART_VERSION
from slmctl.loader import load_stack_file
from slmctl.plan import make_plan


def _local(**cluster: str) -> object:
    settings = copy.deepcopy(stack_settings("local"))
    settings.setdefault("cluster", {}).update(cluster)
    return settings


def test_local_installs_pinned_keda_and_ingress_nginx_before_the_workloads() -> None:
    rec = make_plan(load_stack_file(REPO_ROOT / "stacks" / "Pulumi.local.yaml")).recording
    releases = {r.inputs["chart"]: r for r in rec.by_type("kubernetes:helm.sh/v3:Release")}
    assert releases["keda"].inputs["version"] == KEDA_CHART_VERSION
    assert releases["keda"].inputs["repositoryOpts"]["repo"] == "https://kedacore.github.io/charts"
    nginx = releases["ingress-nginx"]
    assert nginx.inputs["version"] == INGRESS_NGINX_CHART_VERSION
    assert nginx.inputs["namespace"] == "ingress-nginx"  # the namespace the serving NetworkPolicies admit
    assert nginx.inputs["values"]["controller"]["service"]["type"] == "ClusterIP"
    addons = {releases["keda"].urn, nginx.urn}
    needs = [*rec.by_type("kubernetes:keda.sh/v1alpha1:ScaledObject"),
             *rec.by_type("kubernetes:networking.k8s.io/v1:Ingress")]
    assert needs
    for r in needs:
        assert addons <= set(r.dependencies), r.name
    (ingress,) = rec.by_type("kubernetes:networking.k8s.io/v1:Ingress")
    assert ingress.inputs["spec"]["ingressClassName"] == "nginx"


def test_check_mode_reads_the_addons_instead_of_installing_them(tmp_path: Path) -> None:
    settings = _local(local_addons="check")
    rec = make_plan(load_stack_file(write_stack(tmp_path, settings, name="local"))).recording
    assert not [r for r in rec.by_type("kubernetes:helm.sh/v3:Release") if r.inputs["chart"] in {"keda", "ingress-nginx"}]
    reads = {(r.type, r.name) for r in rec.registrations if r.read}
    assert ("kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition", "serving-keda-crd") in reads
    assert ("kubernetes:networking.k8s.io/v1:IngressClass", "serving-nginx-class") in reads
