"""Each edge delivery's module would start: what the device runs, checked against the real programs.

For every delivery that runs a container (kubernetes, iot-edge) and every engine that needs one:

- the server's command line parses with the ONNX server's REAL argument parser (``server.py``) and
  the fill step's with ``download.py``'s, and the server loads the folder the fill step writes;
- every volume a container writes is writable by the user the container runs as;
- the registry credential and the engine API key are referenced where the runtime reads them, and
  never appear in plain text in the recorded inputs.

foundry-local runs no container (a desktop runtime, D8): its script is checked in test_render.py.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import types
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pulumi
import pytest

from components.edge import engines as edge_engines
from components.edge import iot_manifest
from components.edge_device import EdgeDevice, EdgeDeviceArgs, EdgeHub, EdgeHubArgs, RegistryCredential
from components.engines.onnx_server import download as download_mod
from components.engines.onnx_server import server as server_mod
from slmctl import recorder
from slmctl.recorder import Recording, record, secret_paths
from stacks.settings import EnvironmentSettings
from tests.edge.fleets import LLAMACPP_IMAGE, OLLAMA_IMAGE, ONNX_IMAGE, make_settings

DOCKERFILE = Path(server_mod.__file__).with_name("Dockerfile")
ENGINE_KEY = "edge-engine-key-value"
TOKEN_PASSWORD = "acr-token-password-value"
REGISTRY = "slmdevacr.azurecr.io"
KUBECONFIG = "apiVersion: v1\nkind: Config\n"
ONNX_FLEET = {"device_class": "nuc", "model": "phi-4-mini", "engine": "onnx-genai", "devices": ["nuc-01"]}
LLAMACPP_FLEET = {"device_class": "nuc", "model": "phi-4-mini", "engine": "llamacpp", "devices": ["nuc-01"],
                  "image": LLAMACPP_IMAGE}


# --------------------------------------------------------------------------- the real parsers


def server_options(argv: Sequence[str], monkeypatch: pytest.MonkeyPatch) -> argparse.Namespace:
    """``argv`` as the ONNX server parses it (its ``build_parser()``, else through its ``main``)."""
    build = getattr(server_mod, "build_parser", None)
    if callable(build):
        parser: Any = build()
        return parser.parse_args(list(argv))
    seen: dict[str, Any] = {}

    class StopError(Exception):
        pass

    def fake_generator(model_dir: str, **kwargs: Any) -> object:
        seen.update(model_dir=model_dir, **kwargs)
        return object()

    def fake_server(address: tuple[str, int], **kwargs: Any) -> object:
        seen.update(host=address[0], port=address[1], **kwargs)
        raise StopError

    monkeypatch.setattr(server_mod, "OgGenerator", fake_generator)
    monkeypatch.setattr(server_mod, "InferenceServer", fake_server)
    with pytest.raises(StopError):
        server_mod.main(list(argv))
    return argparse.Namespace(**seen)


def download_options(argv: Sequence[str], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """``argv`` as ``download.py`` parses and acts on it: the ``snapshot_download`` call it makes."""
    calls: list[dict[str, Any]] = []

    class StopError(Exception):
        pass

    def snapshot_download(**kwargs: Any) -> str:
        calls.append(kwargs)
        raise StopError

    monkeypatch.setitem(sys.modules, "huggingface_hub",
                        types.SimpleNamespace(snapshot_download=snapshot_download))
    with pytest.raises(StopError):
        download_mod.main(list(argv))
    return calls[0]


def image_entrypoint() -> list[str]:
    """The ONNX server image's ``ENTRYPOINT`` (exec form) from its Dockerfile."""
    match = re.search(r"^ENTRYPOINT\s+(\[.*\])\s*$", DOCKERFILE.read_text(), re.MULTILINE)
    assert match, "the Dockerfile needs an exec-form ENTRYPOINT"
    return json.loads(match.group(1))


def image_owned_dirs() -> dict[str, str]:
    """Directories the Dockerfile creates with an owner (``install -d -o U -g G ... <dir>``)."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    return {m.group(3): f"{m.group(1)}:{m.group(2)}"
            for m in re.finditer(r"install -d -o (\d+) -g (\d+)(?: -m \d+)? (/\S+)", text)}


def image_user() -> str:
    (user,) = re.findall(r"^USER\s+(\S+)\s*$", DOCKERFILE.read_text(), re.MULTILINE)
    return user


def fill_argv(command: Sequence[str], args: Sequence[str]) -> tuple[str, list[str]]:
    """``sh -c <script> <name> <args...>``: the script and the args ``"$@"`` passes to download.py."""
    assert list(command) == ["/bin/sh", "-c"]
    script, _name, *rest = args
    assert 'exec python /app/download.py "$@"' in script
    return script, rest


# --------------------------------------------------------------------------- recordings


def plan_fleet(s: EnvironmentSettings, name: str) -> Recording:
    fleet = s.edge.fleets[name]

    def program() -> None:
        hub = EdgeHub("edge", EdgeHubArgs(resource_group_name="rg"))
        EdgeDevice(f"edge-{name}", EdgeDeviceArgs(
            fleet_name=name, fleet=fleet, device_class_name=fleet.device_class,
            device_class=s.edge.device_classes[fleet.device_class], model_id=fleet.model,
            model=s.models[fleet.model], onnx_server_image=ONNX_IMAGE, fetch_image=OLLAMA_IMAGE,
            kubeconfig=pulumi.Output.secret(KUBECONFIG) if fleet.delivery == "kubernetes" else None,
            iot_hub_host_name=hub.hub_host_name if fleet.delivery == "iot-edge" else None,
            engine_api_key=pulumi.Output.secret(ENGINE_KEY),
            registry_credential=RegistryCredential(address=REGISTRY, username="edge-pull",
                                                   password=pulumi.Output.secret(TOKEN_PASSWORD))))

    return record(program)


def unwrap(value: Any) -> Any:
    """Wire form -> plain values, secrets revealed (the test checks where they go)."""
    if isinstance(value, dict):
        if value.get(recorder.SECRET_SIG) == recorder.SECRET_VALUE_SIG:
            return unwrap(value.get("value"))
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def _kube(fleet: Mapping[str, Any]) -> tuple[Recording, dict[str, Any]]:
    rec = plan_fleet(make_settings(site={**fleet, "delivery": "kubernetes"}), "site")
    (ds,) = rec.by_type("kubernetes:apps/v1:DaemonSet")
    return rec, unwrap(ds.inputs)


def _iot(fleet: Mapping[str, Any]) -> tuple[Recording, dict[str, Any], dict[str, Any]]:
    rec = plan_fleet(make_settings(site={**fleet, "delivery": "iot-edge"}), "site")
    configs = {r.name: r for r in rec.by_type("pulumi-python:dynamic:Resource")}
    base = unwrap(configs["edge-site-base"].inputs)["content"]["modulesContent"]
    layered = unwrap(configs["edge-site-model"].inputs)["content"]["modulesContent"]["$edgeAgent"]
    modules = {k.removeprefix("properties.desired.modules."): v for k, v in layered.items()}
    return rec, base, modules


# --------------------------------------------------------------------------- kubernetes


class TestKubernetesOnnx:
    def test_server_command_line_parses_with_the_real_parser_and_loads_the_filled_folder(
            self, monkeypatch: pytest.MonkeyPatch) -> None:
        _, ds = _kube(ONNX_FLEET)
        pod = ds["spec"]["template"]["spec"]
        (server,) = pod["containers"]
        (fill,) = pod["initContainers"]
        argv = [*server["command"], *server["args"]]
        assert argv[:2] == image_entrypoint()
        options = server_options(argv[2:], monkeypatch)
        assert options.served_model_name == "site"
        assert options.port == server["ports"][0]["containerPort"]
        _, fill_args = fill_argv(fill["command"], fill["args"])
        call = download_options(fill_args, monkeypatch)
        (pattern,) = call["allow_patterns"]
        assert options.model_dir == f"{call['local_dir']}/{pattern.removesuffix('/*')}"
        mounts = {m["mountPath"]: m["name"] for m in fill["volumeMounts"]}
        assert mounts[call["local_dir"]] in {m["name"] for m in server["volumeMounts"]}

    def test_fill_step_skips_the_download_when_the_model_is_stored(self) -> None:
        _, ds = _kube(ONNX_FLEET)
        (fill,) = ds["spec"]["template"]["spec"]["initContainers"]
        script, _ = fill_argv(fill["command"], fill["args"])
        assert script.startswith("test -f /models/cpu_and_mobile/")
        assert "genai_config.json" in script.split("||")[0]

    def test_every_written_volume_is_writable_by_the_container_user(self) -> None:
        _, ds = _kube(ONNX_FLEET)
        pod = ds["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        for c in [*pod["containers"], *pod["initContainers"]]:
            uid = c["securityContext"]["runAsUser"]
            assert uid == pod["securityContext"]["fsGroup"] == int(image_user().split(":")[0]), c["name"]
            for mount in c["volumeMounts"]:
                volume = volumes[mount["name"]]
                # fsGroup-managed types (emptyDir, generic ephemeral claims); k3s local-path creates 0777.
                assert set(volume) & {"emptyDir", "ephemeral"}, mount
                assert not mount.get("readOnly")

    def test_api_key_and_pull_secret_are_referenced_and_secret(self) -> None:
        rec, ds = _kube(ONNX_FLEET)
        pod = ds["spec"]["template"]["spec"]
        (server,) = pod["containers"]
        env = {e["name"]: e for e in server["env"]}
        ref = env["ENGINE_API_KEY"]["valueFrom"]["secretKeyRef"]
        secrets = {r.inputs["metadata"]["name"]: r for r in rec.by_type("kubernetes:core/v1:Secret")}
        key_secret = secrets[ref["name"]]
        assert secret_paths(key_secret.inputs) == ["stringData"]
        assert unwrap(key_secret.inputs)["stringData"][ref["key"]] == ENGINE_KEY
        (pull,) = pod["imagePullSecrets"]
        pull_secret = secrets[pull["name"]]
        assert pull_secret.inputs["type"] == "kubernetes.io/dockerconfigjson"
        assert secret_paths(pull_secret.inputs) == ["stringData"]
        auths = json.loads(unwrap(pull_secret.inputs)["stringData"][".dockerconfigjson"])["auths"]
        assert auths[REGISTRY]["username"] == "edge-pull"
        assert server["image"].startswith(REGISTRY + "/")
        for reg in rec.registrations:
            if reg.type != "kubernetes:core/v1:Secret":
                assert ENGINE_KEY not in json.dumps(reg.inputs)
                assert TOKEN_PASSWORD not in json.dumps(reg.inputs)

    def test_llamacpp_reads_its_api_key_from_the_secret(self) -> None:
        _, ds = _kube(LLAMACPP_FLEET)
        (server,) = ds["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e for e in server["env"]}
        assert env["LLAMA_API_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "slm-site-api-key"


# --------------------------------------------------------------------------- iot-edge


class TestIotEdgeOnnx:
    def test_server_module_command_line_parses_with_the_real_parser(
            self, monkeypatch: pytest.MonkeyPatch) -> None:
        _, _, modules = _iot(ONNX_FLEET)
        server = iot_manifest.join_create_options(modules["slm-site"]["settings"])
        fill_module = modules["slm-site-download-model"]
        fill = iot_manifest.join_create_options(fill_module["settings"])
        argv = [*server["Entrypoint"], *server["Cmd"]]
        assert argv[:2] == image_entrypoint()
        options = server_options(argv[2:], monkeypatch)
        assert str(options.port) + "/tcp" in server["HostConfig"]["PortBindings"]
        _, fill_args = fill_argv(fill["Entrypoint"], fill["Cmd"])
        call = download_options(fill_args, monkeypatch)
        (pattern,) = call["allow_patterns"]
        assert options.model_dir == f"{call['local_dir']}/{pattern.removesuffix('/*')}"
        # The fill module starts first and is not restarted once it succeeded.
        assert fill_module["startupOrder"] < modules["slm-site"]["startupOrder"]
        assert fill_module["restartPolicy"] == "on-failure"

    def test_models_volume_is_created_owned_by_the_module_user(self) -> None:
        _, _, modules = _iot(ONNX_FLEET)
        owned = image_owned_dirs()
        for name, module in modules.items():
            options = iot_manifest.join_create_options(module["settings"])
            user = options.get("User", image_user())
            assert user in {image_user(), f"{image_user()}:{image_user()}"}, name
            for mount in options["HostConfig"]["Mounts"]:
                assert mount["Type"] == "volume"  # a named volume copies the image directory's owner
                assert owned[mount["Target"]].split(":")[0] == user.split(":")[0], (name, mount)

    def test_registry_credentials_and_api_key_are_referenced_and_secret(self) -> None:
        rec, base, modules = _iot(ONNX_FLEET)
        creds = base["$edgeAgent"]["properties.desired"]["runtime"]["settings"]["registryCredentials"]
        (cred,) = creds.values()
        assert cred == {"address": REGISTRY, "username": "edge-pull", "password": TOKEN_PASSWORD}
        assert modules["slm-site"]["settings"]["image"].startswith(REGISTRY + "/")
        assert modules["slm-site"]["env"]["ENGINE_API_KEY"] == {"value": ENGINE_KEY}
        for reg in rec.by_type("pulumi-python:dynamic:Resource"):
            assert "content" in secret_paths(reg.inputs)
            assert ENGINE_KEY not in json.dumps(recorder.redact(reg.inputs))

    def test_rendered_manifest_carries_placeholders_not_secrets(self, tmp_path: Path) -> None:
        from stacks.edge import render_stack_edge

        s = make_settings(site={**ONNX_FLEET, "delivery": "iot-edge"})
        render_stack_edge(s, tmp_path, registry_login_server=REGISTRY, onnx_server_image=ONNX_IMAGE)
        manifest = json.loads((tmp_path / "site.deployment.json").read_text())["modulesContent"]
        runtime = manifest["$edgeAgent"]["properties.desired"]["runtime"]["settings"]
        (cred,) = runtime["registryCredentials"].values()
        assert cred["password"] == iot_manifest.REGISTRY_PASSWORD_PLACEHOLDER
        env = manifest["$edgeAgent"]["properties.desired"]["modules"]["slm-site"]["env"]
        assert env["ENGINE_API_KEY"] == {"value": iot_manifest.ENGINE_API_KEY_PLACEHOLDER}


def test_a_fleet_whose_engine_enforces_a_key_refuses_to_start_without_one() -> None:
    s = make_settings(site={**ONNX_FLEET, "delivery": "iot-edge"})
    fleet = s.edge.fleets["site"]
    with pytest.raises(ValueError, match="enforces an API key"):
        EdgeDevice("edge-site", EdgeDeviceArgs(
            fleet_name="site", fleet=fleet, device_class_name="nuc", device_class=s.edge.device_classes["nuc"],
            model_id="phi-4-mini", model=s.models["phi-4-mini"], onnx_server_image=ONNX_IMAGE,
            iot_hub_host_name="hub.azure-devices.net"))


def test_engine_pull_token_reads_only() -> None:
    actions = edge_engines.pull_scope_actions()
    assert actions
    assert all(a.endswith(("/content/read", "/metadata/read")) for a in actions)
    assert "repositories/slm/onnx-genai-server/content/read" in actions


def test_kubernetes_fleet_without_its_kubeconfig_is_one_line_naming_the_key(tmp_path: Path) -> None:
    """What `pulumi up` runs (__main__.py) when the kubeconfig secret is not set: one line, the key, the fix."""
    import runpy

    from stack_support import REPO_ROOT, stack_settings, write_stack

    from slmctl.loader import load_stack_file
    from stacks.platform import StackConfigError

    settings = stack_settings("dev")
    settings["models"]["phi-4-mini"]["artifacts"]["gguf"] = {
        "ollama_tag": "phi4-mini:3.8b-q4_K_M", "quantization": "q4_k_m", "sha256": "a" * 64}
    settings.setdefault("edge", {}).setdefault("device_classes", {})["nuc"] = {
        "architecture": "amd64", "memory_gib": 16, "cpus": 8}
    settings["edge"].setdefault("fleets", {})["shop"] = {
        "device_class": "nuc", "model": "phi-4-mini", "delivery": "kubernetes", "engine": "ollama",
        "devices": ["nuc-01"]}
    loaded = load_stack_file(write_stack(tmp_path, settings, name="dev"))
    key = "slm-platform:edgeKubeconfig-shop"
    config = {k: v for k, v in loaded.config.items() if k != key}
    with pytest.raises(StackConfigError) as info:
        record(lambda: runpy.run_path(str(REPO_ROOT / "__main__.py")), stack="dev", config=config,
               secret_keys=[k for k in loaded.secret_keys if k != key])
    message = str(info.value)
    assert "\n" not in message
    assert f"pulumi config set --secret {key} " in message
    assert isinstance(info.value, ValueError)  # slmctl reports it as bad input (exit 2)
    assert isinstance(info.value, pulumi.RunError)  # pulumi prints it without a traceback
