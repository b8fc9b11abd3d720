"""Every container and IoT Edge module runs what its upstream image really has, as a user it allows.

The facts (entrypoint, user, executables, the nginx entrypoint's template step) were read from the
upstream Dockerfiles at the pinned versions and are committed with their source in
``components/engines/data/image-facts.json``. The IoT Edge start gate wraps the engine's own
ENTRYPOINT (``SERVER_ENTRYPOINTS``), so a wrong path there would leave the module restarting forever.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest

from components.edge import engines as edge_engines
from components.edge import iot_manifest
from components.engines import auth_proxy
from components.engines.spec import ContainerSpec
from tests.edge.fleets import AUTH_PROXY_IMAGE, LLAMACPP_IMAGE, OLLAMA_IMAGE, make_settings

FACTS: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[2] / "components/engines/data/image-facts.json").read_text())["images"]
REGISTRY = edge_engines.EdgeRegistry(login_server="slmdevacr.azurecr.io",
                                     fill_image=f"slmdevacr.azurecr.io/slm/model-fill@sha256:{'f' * 64}")
SECRETS = {"ENGINE_API_KEY": "k", "LLAMA_API_KEY": "k", edge_engines.REGISTRY_USERNAME_ENV: "u",
           edge_engines.REGISTRY_PASSWORD_ENV: "p"}


def fact(image: str) -> dict[str, Any] | None:
    """The facts of ``image`` (``<registry>/<repo>:<tag>@sha256:...``), by repository; ``None`` for our own images."""
    repo = image.split("@", maxsplit=1)[0].rsplit(":", 1)[0]
    return next((f for key, f in FACTS.items() if repo == key or repo.endswith("/" + key)), None)


def _spec(engine: str, *, registry: bool) -> ContainerSpec:
    fleet_def = {"device_class": "nuc", "model": "phi-4-mini", "delivery": "iot-edge", "engine": engine,
                 "device_selector": {"site": "plant-3"},
                 "image": OLLAMA_IMAGE if engine == "ollama" else LLAMACPP_IMAGE}
    if engine == "ollama":
        fleet_def["auth_proxy_image"] = AUTH_PROXY_IMAGE
    s = make_settings(site=fleet_def)
    fleet = s.edge.fleets["site"]
    return edge_engines.edge_container(
        "site", fleet, "phi-4-mini", s.models["phi-4-mini"], s.edge.device_classes["nuc"], image=fleet_def["image"],
        fetch_image=None if registry else OLLAMA_IMAGE, registry=REGISTRY if registry else None,
        auth_proxy_image=fleet.auth_proxy_image)


def _modules(engine: str, *, registry: bool) -> dict[str, dict[str, Any]]:
    modules = iot_manifest.fleet_modules("site", _spec(engine, registry=registry), memory_bytes=2**30,
                                         nano_cpus=10**9, secrets=SECRETS)
    return {name: {"image": m["settings"]["image"], **iot_manifest.join_create_options(m["settings"])}
            for name, m in modules.items()}


CASES = [(engine, registry) for engine in ("ollama", "llamacpp") for registry in (False, True)]


@pytest.mark.parametrize("engine", ["ollama", "llamacpp"])
def test_the_wrapped_server_entrypoint_is_the_images_own(engine: str) -> None:
    image = OLLAMA_IMAGE if engine == "ollama" else LLAMACPP_IMAGE
    facts = fact(image)
    assert facts is not None
    assert list(edge_engines.SERVER_ENTRYPOINTS[engine]) == facts["entrypoint"]
    server = _modules(engine, registry=True)[iot_manifest.module_name("site")]
    # sh -c GATE_SCRIPT <model@revision> <the image's entrypoint> <its args>
    assert server["Entrypoint"] == ["/bin/sh", "-c"]
    assert server["Cmd"][0] == iot_manifest.GATE_SCRIPT
    assert server["Cmd"][2:2 + len(facts["entrypoint"])] == facts["entrypoint"]


@pytest.mark.parametrize(("engine", "registry"), CASES)
def test_every_module_starts_a_program_its_image_has(engine: str, registry: bool) -> None:
    checked = 0
    for name, module in _modules(engine, registry=registry).items():
        facts = fact(module["image"])
        if facts is None:  # this repo's fill image: its own Dockerfile, checked in test_edge_registry
            continue
        argv = [*module.get("Entrypoint", facts["entrypoint"]), *module.get("Cmd", [])]
        assert argv[0] in facts["executables"], (name, argv[0])
        if argv[:2] == ["/bin/sh", "-c"]:
            # The programs the script runs by name: the image's own, found on its PATH.
            names = {Path(p).name for p in facts["executables"]}
            script_words = set(shlex.split(argv[2].replace(";", " ").replace("|", " "), posix=True))
            for program in ("ollama", "nginx", "envsubst", "llama-server"):
                if program in script_words or f"exec {program}" in argv[2]:
                    assert program in names, (name, program)
        checked += 1
    assert checked >= (2 if engine == "ollama" else 1)


def test_the_gate_never_runs_the_nginx_entrypoint_that_rewrites_config() -> None:
    nginx = FACTS["nginx"]
    rewrite = nginx["entrypoint_rewrites_config"]
    gate = _spec("ollama", registry=False).auth_proxy
    assert gate is not None
    assert fact(gate.image) is nginx
    modules = _modules("ollama", registry=False)
    module = modules[iot_manifest.auth_proxy_module_name("site")]
    for argv0 in (gate.command[0], module["Entrypoint"][0]):  # Kubernetes command, IoT Edge Entrypoint
        assert argv0 != nginx["entrypoint"][0]
    # Even run through the image's entrypoint, its template step reads and writes elsewhere than ours.
    assert not gate.template_dir.startswith(rewrite["template_dir"])
    assert not auth_proxy.RUN_DIR.startswith(rewrite["output_dir"])
    assert "envsubst" in auth_proxy.START_SCRIPT
    assert "/usr/bin/envsubst" in nginx["executables"]


@pytest.mark.parametrize(("engine", "registry"), CASES)
def test_modules_run_as_a_user_the_image_allows_and_write_only_volumes(engine: str, registry: bool) -> None:
    for name, module in _modules(engine, registry=registry).items():
        facts = fact(module["image"])
        if facts is None:
            continue
        assert facts["user"] is None  # no USER in the image: any UID we set runs it
        host = module["HostConfig"]
        if host.get("ReadonlyRootfs"):
            writable = [*host.get("Tmpfs", {}), *(m["Target"] for m in host.get("Mounts", []))]
            assert writable, name
            if name == iot_manifest.auth_proxy_module_name("site"):
                assert auth_proxy.RUN_DIR in host["Tmpfs"]
                assert f"uid={module['User'].split(':')[0]}" in host["Tmpfs"][auth_proxy.RUN_DIR]


def test_the_facts_name_their_source() -> None:
    for key, facts in FACTS.items():
        source = facts["source"]
        assert len(source["commit"]) == 40, key
        assert source["repo"], key
        assert source["path"], key


@pytest.mark.parametrize("engine", ["ollama", "llamacpp"])
def test_every_kubernetes_container_starts_a_program_its_image_has_and_writes_only_volumes(engine: str) -> None:
    from tests.edge.test_module_starts import LLAMACPP_FLEET, _kube

    fleet = LLAMACPP_FLEET if engine == "llamacpp" else {
        "device_class": "nuc", "model": "phi-4-mini", "engine": "ollama", "devices": ["nuc-01"],
        "image": OLLAMA_IMAGE, "auth_proxy_image": AUTH_PROXY_IMAGE}
    _, ds = _kube(fleet)
    pod = ds["spec"]["template"]["spec"]
    checked = 0
    for c in [*pod.get("initContainers", []), *pod["containers"]]:
        facts = fact(c["image"])
        if facts is None:
            continue
        argv = [*c.get("command", facts["entrypoint"]), *c.get("args", [])]
        assert argv[0] in facts["executables"], (c["name"], argv[0])
        assert facts["user"] is None
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        mounts = [m["mountPath"] for m in c.get("volumeMounts", [])]
        env = {e["name"]: e.get("value") for e in c.get("env", [])}
        for var in ("HOME", "OLLAMA_MODELS"):
            if env.get(var):
                assert any(env[var] == m or env[var].startswith(m + "/") for m in mounts), (c["name"], var)
        checked += 1
    assert checked >= (3 if engine == "ollama" else 2)  # pull + server (+ gate)
