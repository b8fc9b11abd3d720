"""Provider SDK packages load only the modules a program reads, and resolve to the same objects.

azure-native's service packages and Kubernetes' API-version packages (``components/_lean_sdk.py``).

Each check runs in a fresh interpreter: which modules a process has loaded is process state, and the test
process (xdist workers included) may have loaded whole service packages already.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from stack_support import REPO_ROOT, STACK_NAMES


def _python(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_service_attribute_loads_its_own_module_and_the_full_package_agrees() -> None:
    out = json.loads(_python("""
        import json, sys
        import components  # installs the lean service packages
        from pulumi_azure_native import authorization, network

        def loaded(service):
            return sum(1 for m in sys.modules if m.startswith(f"pulumi_azure_native.{service}."))

        picked = {"PrivateEndpoint": network.PrivateEndpoint, "SubnetArgs": network.SubnetArgs,
                  "PrivateEndpointArgs": network.PrivateEndpointArgs,
                  "IPAllocationMethod": network.IPAllocationMethod,
                  "get_client_config_output": authorization.get_client_config_output}
        lean = loaded("network")
        try:
            network.NoSuchThing  # a name no module explains: the real __init__ runs, then AttributeError
        except AttributeError:
            pass
        full = loaded("network")
        same = {name: getattr(network if name != "get_client_config_output" else authorization, name) is obj
                for name, obj in picked.items()}
        print(json.dumps({"lean": lean, "full": full, "same": same}))
    """))
    assert out["lean"] <= 10, out  # the whole package is ~290 modules
    assert out["full"] > 250, out  # the fallback really ran the package's __init__
    assert all(out["same"].values()), out  # the classes a plan used are the ones the full package exports


def test_a_kubernetes_class_loads_its_own_module_and_the_full_version_package_agrees() -> None:
    out = json.loads(_python("""
        import json, sys
        import components
        import pulumi_kubernetes as k8s

        def loaded(package):
            return sum(1 for m in sys.modules if m.startswith(f"pulumi_kubernetes.{package}."))

        picked = {("core", "Service"): k8s.core.v1.Service, ("core", "ServiceInitArgs"): k8s.core.v1.ServiceInitArgs,
                  ("core", "ServiceSpecArgs"): k8s.core.v1.ServiceSpecArgs,
                  ("core", "ServiceSpecType"): k8s.core.v1.ServiceSpecType,
                  ("helm", "Release"): k8s.helm.v3.Release, ("helm", "RepositoryOptsArgs"): k8s.helm.v3.RepositoryOptsArgs}
        lean = {"core": loaded("core.v1"), "helm": loaded("helm.v3"), "requests": "requests" in sys.modules}
        full = {"core": len(dir(k8s.core.v1)) and loaded("core.v1"), "helm": len(dir(k8s.helm.v3)) and loaded("helm.v3")}
        packages = {"core": k8s.core.v1, "helm": k8s.helm.v3}
        same = {name: getattr(packages[group], name) is obj for (group, name), obj in picked.items()}
        print(json.dumps({"lean": lean, "full": full, "same": same}))
    """))
    # Service, _inputs, _enums, outputs (and meta's): not core.v1's 48 resource modules, nor helm's Chart and requests
    assert out["lean"]["core"] <= 6, out
    assert out["lean"]["helm"] <= 4, out
    assert not out["lean"]["requests"], out
    assert out["full"]["core"] > 40, out  # dir() ran the real __init__
    assert out["full"]["helm"] > out["lean"]["helm"], out
    assert all(out["same"].values()), out


def test_a_star_import_and_dir_see_every_name() -> None:
    out = json.loads(_python("""
        import json
        import components
        from pulumi_azure_native import compute
        listed = len(dir(compute))
        namespace = {}
        exec("from pulumi_azure_native.network import *", namespace)
        print(json.dumps({"listed": listed, "star": "VirtualNetwork" in namespace, "names": len(namespace)}))
    """))
    assert out["listed"] > 500, out  # compute's whole API, not just what was placed so far
    assert out["star"], out
    assert out["names"] > 500, out


def test_every_shipped_stack_plans_byte_identical_with_whole_service_packages() -> None:
    script = """
        import json, sys
        full = sys.argv[1] == "full"
        if full:  # load every package the stacks use the way the provider does: whole
            import importlib
            for package in json.loads(sys.argv[2]):
                getattr(importlib.import_module(package), "_utilities")  # runs its whole __init__
        from slmctl.loader import load_stack_file
        from slmctl.plan import make_plan
        plans = {s: make_plan(load_stack_file(__import__("pathlib").Path(f"stacks/Pulumi.{s}.yaml"))).to_json()
                 for s in json.loads(sys.argv[3])}
        depth = {"pulumi_azure_native": 1, "pulumi_kubernetes": 2}
        packages = sorted({".".join(m.split(".")[:depth[m.split(".")[0]] + 1]) for m in sys.modules
                           if m.split(".")[0] in depth and m.count(".") > depth[m.split(".")[0]]})
        modules = sum(1 for m, module in sys.modules.items()  # loaded, not packages created and never run
                      if m.startswith(("pulumi_azure_native.", "pulumi_kubernetes."))
                      and type(module).__name__ not in ("ServicePackage", "_LazyModule"))
        whole_loads = [p for p in packages  # a name no single submodule explained ran the whole __init__
                       if type(sys.modules[p]).__name__ != "ServicePackage"]
        print(json.dumps({"plans": plans, "packages": packages, "modules": modules, "whole_loads": whole_loads}))
    """
    stacks = json.dumps(STACK_NAMES)

    def run(mode: str, packages: list[str]) -> dict[str, object]:
        result = subprocess.run([sys.executable, "-c", textwrap.dedent(script), mode, json.dumps(packages), stacks],
                                cwd=REPO_ROOT, capture_output=True, text=True, timeout=900, check=False)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    lean = run("lean", [])
    assert lean["whole_loads"] == [], lean["whole_loads"]  # every name the stacks read was placed, lean
    assert any(p.startswith("pulumi_kubernetes.") for p in lean["packages"]), lean["packages"]  # type: ignore[union-attr]
    whole = run("full", list(lean["packages"]))  # type: ignore[arg-type]
    assert int(whole["modules"]) > 3 * int(lean["modules"]), (lean["modules"], whole["modules"])  # type: ignore[arg-type]
    assert lean["plans"] == whole["plans"]


def test_local_loads_neither_the_aks_nor_the_docker_sdk() -> None:
    """local has no AKS and builds no image: its plan must not pay for those SDKs' imports."""
    loaded = json.loads(_python("""
        import json, sys
        from slmctl.loader import load_stack_file
        from slmctl.plan import make_plan
        from pathlib import Path
        make_plan(load_stack_file(Path("stacks/Pulumi.local.yaml")))
        print(json.dumps(sorted(m for m in sys.modules
                                if m.startswith(("pulumi_azure_native.containerservice.", "pulumi_docker")))))
    """))
    assert loaded == []
