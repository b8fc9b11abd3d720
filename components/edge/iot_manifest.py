"""IoT Edge deployment manifests for one fleet (pure).

Three views of one fleet, all derived from the same engine ``ContainerSpec``:

- ``deployment_manifest``: the full manifest a device ends up with (``$edgeAgent`` runtime,
  systemModules and the model module; ``$edgeHub`` routes and store-and-forward). Rendered to
  ``<fleet>.deployment.json`` and valid for ``az iot edge set-modules`` on a single device.
- ``base_content``: the fleet's base deployment on the hub (runtime, systemModules, edgeHub).
- ``layered_content``: the fleet's layered deployment (the model module, its route) in the
  ``properties.desired.modules.<name>`` path form layered deployments require.

The deployments target ``tags.slmFleet='<fleet>'`` plus the fleet's selector tags, so a fleet of any
size is two hub configurations; devices are tagged when they are provisioned (DPS initial twin).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Final

from components.edge.engines import (
    MODELS_PATH,
    OLLAMA_PORT,
    SERVER_ENTRYPOINTS,
    VERIFIED_MARKER_PATH,
    serve_after_pull_script,
)
from components.engines import auth_proxy
from components.engines.spec import AuthProxy, ContainerSpec, SecretEnv

EDGE_AGENT_IMAGE: Final = "mcr.microsoft.com/azureiotedge-agent:1.5"
EDGE_HUB_IMAGE: Final = "mcr.microsoft.com/azureiotedge-hub:1.5"
"""The 1.5 LTS track. Microsoft publishes these as rolling minor tags for security patches; pin a
digest (``...:1.5@sha256:``) if your fleets must not take patch updates unreviewed."""
EDGE_AGENT_SCHEMA: Final = "1.1"
EDGE_HUB_SCHEMA: Final = "1.2"
CREATE_OPTIONS_CHUNK: Final = 512
"""IoT Edge caps each ``createOptions`` string at 512 characters; longer ones continue in
``createOptions01`` ... ``createOptions07``."""
MAX_CREATE_OPTIONS_CHUNKS: Final = 8
STORE_AND_FORWARD_SECONDS: Final = 7200
NANO_CPUS_PER_MILLICORE: Final = 1_000_000
MODELS_VOLUME: Final = "slm-models"
FETCH_MEMORY_BYTES: Final = 512 * 1024 * 1024
"""The run-once fetch module only downloads (no model is loaded)."""
REGISTRY_PASSWORD_PLACEHOLDER: Final = "${SLM_REGISTRY_PASSWORD}"  # noqa: S105 (a placeholder, not a secret)
ENGINE_API_KEY_PLACEHOLDER: Final = "${SLM_ENGINE_API_KEY}"
"""What rendered files carry instead of secrets (``az iot edge set-modules`` users substitute them)."""


def module_name(fleet_name: str) -> str:
    """The model module's name on the device (also its host name on the ``azure-iot-edge`` network)."""
    return f"slm-{fleet_name}"


def auth_proxy_module_name(fleet_name: str) -> str:
    """The API-key gate's module (Ollama fleets): the only module publishing a host port."""
    return f"{module_name(fleet_name)}-auth-proxy"


def auth_proxy_create_options(gate: AuthProxy, *, uid: int) -> dict[str, Any]:
    """The gate publishes its port on the host; its run dir is a tmpfs owned by ``uid`` (the key's render)."""
    port = f"{gate.port}/tcp"
    memory = gate.resources.memory_mib * 1024 * 1024
    return {
        "User": f"{uid}:{uid}",
        "Entrypoint": [gate.command[0], gate.command[1]],
        "Cmd": [auth_proxy.INLINE_START_SCRIPT],
        "ExposedPorts": {port: {}},
        "HostConfig": {
            "Memory": memory, "MemorySwap": memory,
            "NanoCpus": gate.resources.cpu_millicores * NANO_CPUS_PER_MILLICORE,
            "PortBindings": {port: [{"HostPort": str(gate.port)}]},
            "ReadonlyRootfs": True,
            "Tmpfs": {gate.run_volume.mount_path: f"rw,noexec,nosuid,size=16m,mode=0700,uid={uid},gid={uid}"},
            "CapDrop": ["ALL"],
            "SecurityOpt": ["no-new-privileges"],
            "LogConfig": {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "3"}},
        },
    }


def shared_network(gate_module: str) -> dict[str, Any]:
    """Create options that put a module in the gate module's network namespace (Ollama on IoT Edge).

    Ollama then binds ``127.0.0.1`` as in a pod: only the gate, in the same namespace, reaches it; other modules
    on the ``azure-iot-edge`` network reach the gate's port only. edgeAgent passes ``HostConfig.NetworkMode``
    through to Docker (Azure/iotedge ``edge-agent/src/Microsoft.Azure.Devices.Edge.Agent.Docker/models/
    HostConfig.cs``) and adds its own network only when ``NetworkingConfig.EndpointsConfig`` is absent
    (``CombinedEdgeletConfigProvider.InjectNetworkAliases``); aziot-edged creates the container as given, named
    after the module (``edgelet/edgelet-docker/src/runtime.rs`` ``create``), all @ ``55353a6``. The empty
    ``EndpointsConfig`` keeps the network out: Docker refuses a network endpoint, published or exposed ports
    on a ``container:`` network mode."""
    return {"HostConfig": {"NetworkMode": f"container:{gate_module}"}, "NetworkingConfig": {"EndpointsConfig": {}}}


def route_name(fleet_name: str) -> str:
    """The module's upstream route name (letters, digits, underscores)."""
    return "slm_" + fleet_name.replace("-", "_") + "_upstream"


def target_condition(fleet_name: str, selector: Mapping[str, str]) -> str:
    """The device-twin condition: the fleet tag, AND every selector tag (sorted: stable diffs)."""
    clauses = [f"tags.slmFleet='{fleet_name}'"]
    clauses += [f"tags.{key}='{value}'" for key, value in sorted(selector.items())]
    return " AND ".join(clauses)


def create_options(spec: ContainerSpec, *, memory_bytes: int, nano_cpus: int,
                   entrypoint: tuple[str, ...] = (), cmd: tuple[str, ...] = ()) -> dict[str, Any]:
    """Docker create options: bounded memory (no swap) and CPU, model store volume, no privileges."""
    port = f"{spec.port}/tcp"
    options: dict[str, Any] = {
        "ExposedPorts": {port: {}},
        "HostConfig": {
            "Memory": memory_bytes,
            "MemorySwap": memory_bytes,
            "NanoCpus": nano_cpus,
            "PortBindings": {port: [{"HostPort": str(spec.port)}]},
            "Mounts": [{"Type": "volume", "Source": MODELS_VOLUME, "Target": MODELS_PATH}],
            "CapDrop": ["ALL"],
            "SecurityOpt": ["no-new-privileges"],
            "LogConfig": {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "3"}},
        },
    }
    if spec.engine == "onnx-genai":
        # Our image's USER, stated: the slm-models volume is created owned by it (the Dockerfile).
        options["User"] = f"{spec.run_as_user}:{spec.run_as_user}"
    if entrypoint:
        options["Entrypoint"] = list(entrypoint)
    if cmd:
        options["Cmd"] = list(cmd)
    return options


def split_create_options(options: Mapping[str, Any]) -> dict[str, str]:
    """``createOptions`` (+ ``createOptions01``...) strings of at most 512 characters each."""
    text = json.dumps(options, separators=(",", ":"), sort_keys=True)
    chunks = [text[i:i + CREATE_OPTIONS_CHUNK] for i in range(0, len(text), CREATE_OPTIONS_CHUNK)]
    if len(chunks) > MAX_CREATE_OPTIONS_CHUNKS:
        msg = (f"createOptions is {len(text)} characters; IoT Edge accepts at most "
               f"{CREATE_OPTIONS_CHUNK * MAX_CREATE_OPTIONS_CHUNKS}: shorten the module's command")
        raise ValueError(msg)
    return {("createOptions" if i == 0 else f"createOptions{i:02d}"): c for i, c in enumerate(chunks)}


def join_create_options(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Inverse of ``split_create_options``: the parsed create options of a module's settings."""
    keys = ["createOptions", *sorted(k for k in settings if k.startswith("createOptions0"))]
    return json.loads("".join(str(settings[k]) for k in keys if k in settings))


def _module(image: str, options: Mapping[str, Any], env: Mapping[str, str], *, startup_order: int,
            restart_policy: str = "always") -> dict[str, Any]:
    return {
        "version": "1.0",
        "type": "docker",
        "status": "running",
        "restartPolicy": restart_policy,
        "imagePullPolicy": "on-create",  # pull once; keep serving from the local image offline
        "startupOrder": startup_order,
        "settings": {"image": image, **split_create_options(options)},
        "env": {k: {"value": v} for k, v in sorted(env.items())},
    }


def secret_env_values(fleet_name: str, spec: ContainerSpec, secrets: Mapping[str, str],
                      wanted: tuple[SecretEnv, ...] | None = None) -> dict[str, str]:
    """The module env of ``spec.secret_env`` (or ``wanted``). IoT Edge has no Secret store: the value rides
    in the deployment, which Pulumi keeps secret in the state and the renderer writes as a placeholder."""
    wanted = spec.secret_env if wanted is None else wanted
    missing = [s.name for s in wanted if s.name not in secrets]
    if missing:
        msg = (f"fleet {fleet_name!r}: the {spec.engine} module needs {', '.join(missing)} (the engine API "
               "key, or the registry token); pass them from the secret config")
        raise ValueError(msg)
    return {s.name: secrets[s.name] for s in wanted}


GATE_SCRIPT: Final = (
    f'test "$(cat {VERIFIED_MARKER_PATH} 2>/dev/null)" = "$0" || {{ echo "slm: $0 is not verified in '
    f'{MODELS_PATH} yet (the fill-model module refuses a hash mismatch); not serving" >&2; exit 1; }}; exec "$@"')
"""IoT Edge has no init containers: the server module starts only once the fill module has verified
this revision (its marker), and restarts (with back-off) until then; the marker goes first when a
fill starts, so a refused fill leaves the server down."""


def _arg(args: tuple[str, ...], flag: str) -> str:
    return args[args.index(flag) + 1]


def fleet_modules(fleet_name: str, spec: ContainerSpec, *, memory_bytes: int, nano_cpus: int,
                  secrets: Mapping[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """The fleet's ``$edgeAgent`` modules: the model server (and, for llama.cpp, its fetch module).

    IoT Edge has no init containers. Ollama pulls in its own module before serving (the pull is
    skipped offline when the model is stored); llama.cpp gets a run-once fetch module (an Ollama
    image pulling into the shared ``slm-models`` volume) started before the server, which restarts
    until the blob is there. From the registry (staging, prod) every engine gets the run-once
    ``fill-model`` module instead (the registry token in its env), and the server is gated on the
    fill's verified marker (``GATE_SCRIPT``).
    """
    modules: dict[str, dict[str, Any]] = {}
    server_env = {**spec.env, **secret_env_values(fleet_name, spec, secrets or {})}
    sha = spec.env.get("SLM_MODEL_SHA256")
    version = spec.env.get("SLM_MODEL_VERSION", spec.served_model_name)
    filled = next((step for step in spec.init_steps if step.name == "fill-model"), None)
    gate = spec.auth_proxy
    if spec.engine == "ollama" and gate is None:
        msg = f"fleet {fleet_name!r}: the ollama module needs its API-key gate (spec.auth_proxy)"
        raise ValueError(msg)
    if gate is not None:
        if f"//127.0.0.1:{OLLAMA_PORT}" not in gate.config_template:
            msg = (f"fleet {fleet_name!r}: the gate must reach the engine on 127.0.0.1:{OLLAMA_PORT} (the engine "
                   "module joins the gate's network namespace); build the spec with the default engine_host")
            raise ValueError(msg)
        # The engine joins the gate's network namespace and listens on its loopback: the gate is the one way in.
        # The gate starts first: the namespace the engine joins is the gate's running container's.
        modules[auth_proxy_module_name(fleet_name)] = _module(
            gate.image, auth_proxy_create_options(gate, uid=spec.run_as_user),
            {**secret_env_values(fleet_name, spec, secrets or {}, (gate.key,)),
             auth_proxy.TEMPLATE_ENV: gate.config_template}, startup_order=9)
    if spec.engine == "ollama" and filled is None:
        options = create_options(spec, memory_bytes=memory_bytes, nano_cpus=nano_cpus,
                                 entrypoint=("/bin/sh", "-c"),
                                 cmd=(serve_after_pull_script(spec.served_model_name, sha),))
        del options["ExposedPorts"], options["HostConfig"]["PortBindings"]
        _join(options, auth_proxy_module_name(fleet_name))
        modules[module_name(fleet_name)] = _module(spec.image, options, server_env, startup_order=10)
        return modules
    for step in spec.init_steps:
        fetch_memory = min(FETCH_MEMORY_BYTES, memory_bytes)
        options = create_options(spec, memory_bytes=fetch_memory, nano_cpus=nano_cpus,
                                 entrypoint=step.command, cmd=step.args)
        del options["ExposedPorts"], options["HostConfig"]["PortBindings"]
        step_env = {**step.env, "SLM_MODEL_VERSION": version,
                    **secret_env_values(fleet_name, spec, secrets or {}, step.secret_env)}
        modules[f"{module_name(fleet_name)}-{step.name}"] = _module(
            step.image, options, step_env, startup_order=5, restart_policy="on-failure")
    entrypoint, cmd = spec.command, spec.args
    if filled is not None:
        served = f"{_arg(filled.args, '--model')}@{_arg(filled.args, '--revision')}"
        entrypoint = ("/bin/sh", "-c")
        cmd = (GATE_SCRIPT, served, *(spec.command or SERVER_ENTRYPOINTS[spec.engine]), *spec.args)
    options = create_options(spec, memory_bytes=memory_bytes, nano_cpus=nano_cpus,
                             entrypoint=entrypoint, cmd=cmd)
    if gate is not None:
        del options["ExposedPorts"], options["HostConfig"]["PortBindings"]
        _join(options, auth_proxy_module_name(fleet_name))
    modules[module_name(fleet_name)] = _module(spec.image, options, server_env, startup_order=10)
    return modules


def _join(options: dict[str, Any], gate_module: str) -> None:
    shared = shared_network(gate_module)
    options["HostConfig"].update(shared["HostConfig"])
    options["NetworkingConfig"] = shared["NetworkingConfig"]


def _runtime(registry: Mapping[str, str] | None) -> dict[str, Any]:
    settings: dict[str, Any] = {"minDockerVersion": "v1.25", "loggingOptions": ""}
    if registry is not None:
        settings["registryCredentials"] = {"registry": dict(registry)}
    return {"type": "docker", "settings": settings}


def _system_modules() -> dict[str, Any]:
    hub_options = {"HostConfig": {"PortBindings": {
        "443/tcp": [{"HostPort": "443"}], "5671/tcp": [{"HostPort": "5671"}],
        "8883/tcp": [{"HostPort": "8883"}]}}}
    return {
        "edgeAgent": {"type": "docker", "settings": {"image": EDGE_AGENT_IMAGE, "createOptions": "{}"}},
        "edgeHub": {"type": "docker", "status": "running", "restartPolicy": "always",
                    "startupOrder": 0,
                    "settings": {"image": EDGE_HUB_IMAGE,
                                 "createOptions": json.dumps(hub_options, separators=(",", ":"))}},
    }


def _edge_hub(routes: Mapping[str, str]) -> dict[str, Any]:
    return {"schemaVersion": EDGE_HUB_SCHEMA, "routes": dict(routes),
            "storeAndForwardConfiguration": {"timeToLiveSecs": STORE_AND_FORWARD_SECONDS}}


def _route(fleet_name: str) -> str:
    return f"FROM /messages/modules/{module_name(fleet_name)}/outputs/* INTO $upstream"


def deployment_manifest(fleet_name: str, modules: Mapping[str, Mapping[str, Any]], *,
                        registry: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The complete manifest a device of the fleet runs (base + the fleet's layer)."""
    return {"modulesContent": {
        "$edgeAgent": {"properties.desired": {
            "schemaVersion": EDGE_AGENT_SCHEMA, "runtime": _runtime(registry),
            "systemModules": _system_modules(),
            "modules": {k: dict(v) for k, v in sorted(modules.items())}}},
        "$edgeHub": {"properties.desired": _edge_hub({route_name(fleet_name): _route(fleet_name)})},
    }}


def base_content(registry: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The fleet's base deployment: runtime, system modules, edgeHub; no workload modules."""
    return {"modulesContent": {
        "$edgeAgent": {"properties.desired": {
            "schemaVersion": EDGE_AGENT_SCHEMA, "runtime": _runtime(registry),
            "systemModules": _system_modules(), "modules": {}}},
        "$edgeHub": {"properties.desired": _edge_hub({})},
    }}


def layered_content(fleet_name: str, modules: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The fleet's layered deployment (path form: it merges onto whichever base the device has)."""
    return {"modulesContent": {
        "$edgeAgent": {f"properties.desired.modules.{k}": dict(v) for k, v in sorted(modules.items())},
        "$edgeHub": {f"properties.desired.routes.{route_name(fleet_name)}": _route(fleet_name)},
    }}


def configuration_id(fleet_name: str, kind: str, content: Mapping[str, Any]) -> str:
    """``slm-<fleet>-<kind>-<hash>``: deployment content is immutable on the hub, so a content
    change is a new configuration (created before the old one is deleted: no serving gap)."""
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:10]
    return f"slm-{fleet_name}-{kind}-{digest}"
