"""Quantized models on edge devices and fleets: ``EdgeHub`` (the environment's IoT Hub) and ``EdgeDevice``.

A fleet is a set of devices of one class serving one catalogue model, delivered one of three ways:

- ``kubernetes``: a k3s / Arc-enabled cluster on the device or site, reached through a kubeconfig
  held as a Pulumi secret; one explicit Kubernetes provider per fleet and a hardened DaemonSet
  (one CPU engine per device node).
- ``iot-edge``: a base and a layered IoT Edge deployment on the shared IoT Hub, targeted by device
  twin tags (``tags.slmFleet='<fleet>'`` AND the selector), applied by a dynamic provider.
- ``foundry-local``: a bootstrap script for Windows/macOS devices (a desktop runtime, never a
  container: D8); nothing in the cloud.

Resource count is O(1) per fleet, whatever its device count: devices are addressed by tags (IoT
Edge) or node names/labels (Kubernetes), never one resource per device.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Literal

import pulumi
import pulumi_kubernetes as k8s
from pulumi_azure_native import containerregistry, iothub

from components._standard import (
    PrivateEndpointConfig,
    StandardInterfaces,
    apply_diagnostic_settings,
    apply_lock,
    apply_private_endpoint,
    apply_role_assignments,
)
from components.domain import EDGE_DELIVERY_OS, EDGE_ENGINES, DeviceClass, Fleet, ModelSpec
from components.edge import engines as edge_engines
from components.edge import iot_manifest
from components.edge.engines import EDGE_PULL_TOKEN_NAME
from components.edge.foundry import bootstrap_script, script_name
from components.edge.iot_configuration import IotEdgeConfiguration
from components.edge.kube import fleet_objects
from components.engines.ollama import DEFAULT_IMAGE as OLLAMA_DEFAULT_IMAGE

LLAMACPP_DEFAULT_IMAGE: Final = "ghcr.io/ggml-org/llama.cpp:server"
"""Dev default (tag only, the CPU server build that exposes ``--metrics``); prod passes a digest."""
DEFAULT_NAMESPACE: Final = "slm-edge"
GIB: Final = 1024**3
ENGINE_KEY_ENVS: Final = (edge_engines.API_KEY_ENV, "LLAMA_API_KEY")
"""The env names the engines read their API key from (ONNX server, llama-server)."""
IotHubSku = Literal["S1", "S2", "S3"]
IOT_HUB_PRIVATE_DNS_ZONE: Final = "privatelink.azure-devices.net"
"""The zone an IoT Hub private endpoint registers in (group ``iotHub``)."""


# --------------------------------------------------------------------------- the hub


@dataclass(frozen=True, kw_only=True)
class EdgeHubArgs(StandardInterfaces):
    """Inputs of ``EdgeHub``."""

    resource_group_name: pulumi.Input[str]
    location: pulumi.Input[str] | None = None
    """Default: the resource group's location."""
    hub_name: str | None = None
    """Default: auto-named from the component name (Pulumi adds a random suffix)."""
    sku: IotHubSku = "S1"
    """Default: S1 (standard tier: IoT Edge needs a standard tier; the basic tiers have no modules)."""
    capacity: int = 1
    """Default: 1 unit (400,000 messages/day on S1)."""
    public_network_access_enabled: bool = False
    """Default: disabled: devices and the deployer reach the hub through a private endpoint
    (ExpressRoute / VPN from sites). Dev stacks may enable it; prod must not (EDGE-03)."""
    subscription_id: pulumi.Input[str] | None = None
    """Required only with ``role_assignments`` (to build role definition ids)."""
    private_endpoint: PrivateEndpointConfig | None = None
    """Default: none. Given, a private endpoint (group ``iotHub``) in that subnet, registered in its DNS
    zones (pass ``privatelink.azure-devices.net``): the only way in once public access is disabled."""


class EdgeHub(pulumi.ComponentResource):
    """The IoT Hub shared by an environment's ``iot-edge`` fleets.

    Creates: one ``IotHubResource`` (Entra-only: local/SAS auth disabled, TLS 1.2, system-assigned
    identity, public network access disabled unless opted in), plus the standard-interface children
    (role assignments, e.g. *IoT Hub Data Contributor* for the deployer; diagnostic settings; lock).
    """

    hub: iothub.IotHubResource
    """Escape hatch: the underlying IoT Hub."""
    hub_id: pulumi.Output[str]
    hub_name: pulumi.Output[str]
    hub_host_name: pulumi.Output[str]
    """``<name>.azure-devices.net``: what ``EdgeDeviceArgs.iot_hub_host_name`` takes."""
    grants: list[pulumi.Resource]
    """The hub's role assignments: pass them as ``EdgeDeviceArgs.iot_hub_grants`` so the IoT Edge
    configurations are written only once the deployer may write them."""

    def __init__(self, name: str, args: EdgeHubArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("slm:edge:EdgeHub", name, None, opts)
        if args.role_assignments and args.subscription_id is None:
            msg = f"EdgeHub {name!r}: role_assignments need subscription_id; pass the deployment's subscription"
            raise ValueError(msg)
        child = pulumi.ResourceOptions(parent=self)
        self.hub = iothub.IotHubResource(
            f"{name}-hub",
            resource_name_=args.hub_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            sku=iothub.IotHubSkuInfoArgs(name=args.sku, capacity=args.capacity),
            identity=iothub.ArmIdentityArgs(type=iothub.ResourceIdentityType.SYSTEM_ASSIGNED),
            properties=iothub.IotHubPropertiesArgs(
                disable_local_auth=True,
                disable_device_sas=False,  # devices authenticate with X.509 or per-device SAS (DPS)
                min_tls_version="1.2",
                public_network_access="Enabled" if args.public_network_access_enabled else "Disabled",
            ),
            tags=dict(args.tags),
            opts=child,
        )
        self.hub_id = self.hub.id
        self.hub_name = self.hub.name
        self.hub_host_name = self.hub.properties.apply(lambda p: p.host_name)
        grants = apply_role_assignments(self, name, scope_id=self.hub.id,
                                        subscription_id=args.subscription_id or "",
                                        assignments=args.role_assignments)
        self.grants = list(grants)
        if args.private_endpoint is not None:
            apply_private_endpoint(self, name, resource_id=self.hub.id, group_id="iotHub", config=args.private_endpoint,
                                   resource_group_name=args.resource_group_name,
                                   location=args.location or self.hub.location, tags=dict(args.tags))
        diags = apply_diagnostic_settings(self, name, resource_id=self.hub.id,
                                          settings=args.diagnostic_settings)
        apply_lock(self, name, scope_id=self.hub.id, lock=args.lock, depends_on=[*grants, *diags])
        self.register_outputs({"hub_id": self.hub_id, "hub_name": self.hub_name,
                               "hub_host_name": self.hub_host_name})


# --------------------------------------------------------------------------- registry pull token



class EdgePullToken(pulumi.ComponentResource):
    """A repository-scoped ACR token edge devices pull with (anonymous pull and admin user are off).

    Creates a ``ScopeMap`` (pull-only on ``EDGE_PULL_REPOSITORIES`` and each fleet model's
    ``models/<model>`` artifact repository) and a ``Token`` bound to it. ARM
    cannot return a token password, so one is generated once, out of band, and kept as a Pulumi
    secret: ``az acr token credential generate -r <registry> -n edge-pull --password1`` then
    ``pulumi config set --secret slm-platform:edgeRegistryTokenPassword <password1>``. A leaked
    device credential reads images only and is revoked by regenerating the password.
    """

    token_name: str

    def __init__(self, name: str, *, registry_name: pulumi.Input[str], resource_group_name: pulumi.Input[str],
                 model_ids: Sequence[str] = (), opts: pulumi.ResourceOptions | None = None) -> None:
        """``model_ids``: the fleets' models, whose ``models/<model>`` artifacts the token may also pull."""
        super().__init__("slm:edge:EdgePullToken", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        scope = containerregistry.ScopeMap(
            f"{name}-scope", registry_name=registry_name, resource_group_name=resource_group_name,
            scope_map_name=f"{EDGE_PULL_TOKEN_NAME}-scope",
            actions=edge_engines.pull_scope_actions(edge_engines.edge_pull_repositories(tuple(model_ids))),
            description="slm-platform edge devices: pull the engine images and the fleets' model artifacts",
            opts=child)
        containerregistry.Token(
            f"{name}-token", registry_name=registry_name, resource_group_name=resource_group_name,
            token_name=EDGE_PULL_TOKEN_NAME, scope_map_id=scope.id, status="enabled", opts=child)
        self.token_name = EDGE_PULL_TOKEN_NAME
        self.register_outputs({"token_name": self.token_name})


# --------------------------------------------------------------------------- a fleet


@dataclass(frozen=True, kw_only=True)
class RegistryCredential:
    """How devices pull from the private registry: an ACR token (a pull-only scope map), never the
    admin user or an Entra password. IoT Edge carries it as ``registryCredentials``; Kubernetes
    fleets as a ``kubernetes.io/dockerconfigjson`` image pull Secret."""

    address: pulumi.Input[str]
    """The registry login server, e.g. ``slmprodacr.azurecr.io``."""
    username: pulumi.Input[str]
    """The ACR token's name (``EdgePullToken.token_name``)."""
    password: pulumi.Input[str]
    """A password generated for the token (``az acr token credential generate``), read with
    ``require_secret``: the configuration and the Secret that carry it stay secret in the state."""


@dataclass(frozen=True, kw_only=True)
class ModelPull:
    """Where the fleet's devices get the model: the environment's ACR, never a public hub (staging, prod).

    ``slmctl models sync`` publishes each model revision there as an OCI artifact
    (``models/<model>:<revision>``, see ``components/registry/oci.py``); the fleet's fill step pulls it
    with the pull-only token (``registry_credential``) and verifies every file against its manifest."""

    login_server: pulumi.Input[str]
    """The registry login server (``ModelRegistry.registry_login_server``)."""
    fill_image: pulumi.Input[str]
    """The registry fill image (``ModelRegistry.model_fill_image``, by digest)."""
    network_path: str
    """How devices reach the registry, said in the plan (e.g. the ACR private endpoint over the site's
    ExpressRoute/VPN, resolved through ``privatelink.azurecr.io``)."""
    egress_cidrs: tuple[str, ...] = ()
    """kubernetes: the registry endpoint's addresses as the devices' site reaches them (the private
    endpoint subnet); the fleet's pods may reach only these on 443, and cluster DNS. Required there."""


@dataclass(frozen=True, kw_only=True)
class EdgeDeviceArgs:
    """Inputs of ``EdgeDevice``: the settings objects pass straight through (STYLE P2)."""

    fleet_name: str
    """The fleet's key in ``edge.fleets``: names objects, the ``slmFleet`` twin tag and labels."""
    fleet: Fleet
    device_class_name: str
    device_class: DeviceClass
    model_id: str
    model: ModelSpec
    kubeconfig: pulumi.Input[str] | None = None
    """Required for ``kubernetes``: the cluster's kubeconfig, as a secret
    (``pulumi.Config().require_secret(fleet.kubeconfig_key(fleet_name))``)."""
    iot_hub_host_name: pulumi.Input[str] | None = None
    """Required for ``iot-edge``: ``EdgeHub.hub_host_name``."""
    iot_hub_grants: Sequence[pulumi.Resource] = ()
    """Default: none. ``EdgeHub.grants``: the configurations wait for them (the deployer's IoT Hub Data
    Contributor), else the first ``pulumi up`` races the grant and is refused."""
    engine_image: pulumi.Input[str] | None = None
    """Default: ``fleet.image``; else for onnx-genai ``onnx_server_image``; else (only when
    ``digest_pinning_required`` is off) the engine's public dev tag."""
    onnx_server_image: pulumi.Input[str] | None = None
    """The ONNX Runtime GenAI server image ModelRegistry built (``repo@sha256:...``)."""
    fetch_image: str | None = None
    """llamacpp only: an Ollama image (by digest) whose pull stores the GGUF blob. Default: the Ollama
    dev tag when ``digest_pinning_required`` is off."""
    digest_pinning_required: bool = True
    """Default: on: a plain-string image without ``@sha256:`` is refused (devices pull IfNotPresent
    and keep serving offline, so a moving tag would never be corrected). Dev stacks may turn it off."""
    namespace: str = DEFAULT_NAMESPACE
    """Default: ``slm-edge`` (kubernetes)."""
    storage_class: str | None = None
    """Default: the cluster's default StorageClass (k3s: local-path) for the model store."""
    registry_credential: RegistryCredential | None = None
    """Default: none: devices pull anonymously or through a connected registry. Required when an
    image comes from an Azure Container Registry (anonymous pull is off on ours)."""
    model_pull: ModelPull | None = None
    """Default: none: devices pull from the public hub (Hugging Face, the Ollama library; dev only).
    Given: the fill step pulls the model from the registry with ``registry_credential`` (required)."""
    engine_api_key: pulumi.Input[str] | None = None
    """The engine API key (a secret Output) the server enforces on ``/v1/*``; required for engines
    that enforce one (onnx-genai, llamacpp). Kubernetes: a Secret in the namespace; IoT Edge: the
    module's env."""
    base_deployment_enabled: bool = True
    """Default: on: the fleet's base IoT Edge deployment (runtime, edgeAgent/edgeHub 1.5) is
    managed here. Turn it off when your organization's own base deployment targets the devices."""
    labels: Mapping[str, str] = field(default_factory=dict[str, str])
    """Extra labels on the IoT Hub configurations (e.g. the environment tags)."""


class EdgeDevice(pulumi.ComponentResource):
    """One edge fleet serving one quantized model.

    Creates, by ``fleet.delivery``:

    - ``kubernetes``: a Kubernetes ``Provider`` (from the secret kubeconfig), a Namespace (PSA
      restricted, ``slm.io/tier: edge``), a ServiceAccount (no token), a DaemonSet (engine pinned by
      digest, ``IfNotPresent``, resources inside the device envelope, model version + sha256
      annotations), a ClusterIP Service, and default-deny + serving NetworkPolicies.
    - ``iot-edge``: two IoT Hub configurations (``pulumi-python:dynamic:Resource``): the fleet's base
      deployment (unless ``base_deployment_enabled`` is off) and the layered model deployment.
    - ``foundry-local``: no resources; the bootstrap script is an output.

    Refuses (before declaring anything) a model that does not fit the device class, a delivery the
    class's OS cannot run, a missing kubeconfig or hub, and a tag-only image when pinning is required.
    """

    _type_token: ClassVar[str] = "slm:edge:EdgeDevice"  # noqa: S105 (a type token)
    """Our stacks' token; the component package constructs it as ``slm:index:EdgeDevice``."""

    delivery: str
    bootstrap_script: pulumi.Output[str] | None
    """foundry-local: the PowerShell (windows) or bash (macos) script."""
    bootstrap_script_name: str | None
    deployment_manifest: pulumi.Output[str] | None
    """iot-edge: the full manifest a device of the fleet runs (JSON)."""
    configuration_ids: pulumi.Output[list[str]] | None
    """iot-edge: the hub configuration ids (base, model)."""
    target_condition: str | None
    namespace: str | None
    provider: k8s.Provider | None
    """kubernetes: escape hatch, the fleet's cluster provider."""
    daemon_set: k8s.apps.v1.DaemonSet | None

    def __init__(self, name: str, args: EdgeDeviceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        fleet = args.fleet
        _validate(name, args)  # before registering anything (STYLE P11)
        images = _images(name, args) if fleet.delivery != "foundry-local" else ("", None)
        super().__init__(self._type_token, name, {
            "fleet": args.fleet_name, "delivery": fleet.delivery, "engine": fleet.engine,
            "deviceClass": args.device_class_name, "model": args.model_id,
            "deviceCount": len(fleet.devices), "deviceSelector": dict(fleet.device_selector),
            **({"modelSource": pulumi.Output.concat("oci://", args.model_pull.login_server, "/models/",
                                                    args.model_id),
                "modelNetworkPath": args.model_pull.network_path}
               if args.model_pull is not None and fleet.delivery != "foundry-local" else
               {"modelSource": "public hub"} if fleet.delivery != "foundry-local" else {}),
        }, opts)
        self.delivery = fleet.delivery
        self.bootstrap_script = None
        self.bootstrap_script_name = None
        self.deployment_manifest = None
        self.configuration_ids = None
        self.target_condition = None
        self.namespace = None
        self.provider = None
        self.daemon_set = None
        outputs: dict[str, Any] = {"delivery": fleet.delivery}
        if fleet.delivery == "foundry-local":
            version, sha = fleet.artifact_pin(args.model_id, args.model)
            text = bootstrap_script(fleet_name=args.fleet_name, os=args.device_class.os, model=version,
                                    model_id=args.model_id, sha256=sha)
            self.bootstrap_script = pulumi.Output.from_input(text)
            self.bootstrap_script_name = script_name(args.fleet_name, args.device_class.os)
            outputs["bootstrap_script"] = self.bootstrap_script
        elif fleet.delivery == "kubernetes":
            self._kubernetes(name, args, *images)
            outputs["namespace"] = self.namespace
        else:
            self._iot_edge(name, args, *images)
            outputs["configuration_ids"] = self.configuration_ids
            outputs["target_condition"] = self.target_condition
        self.register_outputs(outputs)

    # -- kubernetes ------------------------------------------------------------------------

    def _kubernetes(self, name: str, args: EdgeDeviceArgs, image: pulumi.Input[str],
                    fetch: pulumi.Input[str] | None) -> None:
        fleet = args.fleet
        version, sha = fleet.artifact_pin(args.model_id, args.model)

        pull = args.model_pull

        def build(images: list[Any]) -> Any:
            spec = edge_engines.edge_container(args.fleet_name, fleet, args.model_id, args.model,
                                               args.device_class, image=images[0], fetch_image=images[1],
                                               registry=_edge_registry(pull, images[2], images[3]),
                                               auth_proxy_image=fleet.auth_proxy_image)
            return fleet_objects(fleet_name=args.fleet_name, namespace=args.namespace, spec=spec,
                                 architecture=args.device_class.architecture, devices=fleet.devices,
                                 node_selector=fleet.device_selector, model_id=args.model_id,
                                 model_version=version, model_sha256=sha, storage_class=args.storage_class,
                                 image_pull_secret=pull_secret_name(args.fleet_name)
                                 if args.registry_credential is not None else None,
                                 egress_cidrs=pull.egress_cidrs if pull is not None else None)

        objects = pulumi.Output.all(image, fetch, *((pull.login_server, pull.fill_image) if pull else (None, None))
                                    ).apply(build)
        # Known-at-plan metadata (names, labels) from a stand-in build; specs come from the Output.
        static = build(["<image>", "<fetch-image>", "<registry>", "<fill-image>"])
        self.provider = k8s.Provider(f"{name}-k8s", kubeconfig=args.kubeconfig, delete_unreachable=True,
                                     opts=pulumi.ResourceOptions(parent=self))
        on_cluster = pulumi.ResourceOptions(parent=self, provider=self.provider)
        ns = k8s.core.v1.Namespace(f"{name}-ns", metadata=static.namespace["metadata"], opts=on_cluster)
        in_ns = pulumi.ResourceOptions(parent=self, provider=self.provider, depends_on=[ns])
        secrets: list[pulumi.Resource] = [*self._kube_secrets(name, args, static.daemon_set["metadata"]["labels"], in_ns)]
        if static.auth_proxy_config is not None:  # the API-key gate's template (no key in it)
            secrets.append(k8s.core.v1.ConfigMap(f"{name}-auth-proxy", metadata=static.auth_proxy_config["metadata"],
                                                 data=static.auth_proxy_config["data"], opts=in_ns))
        sa = k8s.core.v1.ServiceAccount(
            f"{name}-sa", metadata=static.service_account["metadata"],
            automount_service_account_token=False, opts=in_ns)
        deny = k8s.networking.v1.NetworkPolicy(
            f"{name}-deny", metadata=static.deny_all["metadata"], spec=static.deny_all["spec"], opts=in_ns)
        allow = k8s.networking.v1.NetworkPolicy(
            f"{name}-allow", metadata=static.allow_serving["metadata"], spec=static.allow_serving["spec"],
            opts=in_ns)
        policies: list[pulumi.Resource] = [deny, allow]
        if static.allow_egress is not None:
            policies.append(k8s.networking.v1.NetworkPolicy(
                f"{name}-egress", metadata=static.allow_egress["metadata"], spec=static.allow_egress["spec"],
                opts=in_ns))
        self.daemon_set = k8s.apps.v1.DaemonSet(
            f"{name}-server", metadata=static.daemon_set["metadata"],
            spec=objects.apply(lambda o: o.daemon_set["spec"]),
            opts=pulumi.ResourceOptions(parent=self, provider=self.provider,
                                        depends_on=[sa, *policies, *secrets]))
        k8s.core.v1.Service(f"{name}-svc", metadata=static.service["metadata"], spec=static.service["spec"],
                            opts=in_ns)
        self.namespace = args.namespace

    def _kube_secrets(self, name: str, args: EdgeDeviceArgs, labels: Mapping[str, str],
                      opts: pulumi.ResourceOptions) -> list[k8s.core.v1.Secret]:
        """The engine API key Secret and the registry pull Secret (values stay secret Outputs)."""
        created: list[k8s.core.v1.Secret] = []

        def meta(secret_name: str) -> k8s.meta.v1.ObjectMetaArgs:
            return k8s.meta.v1.ObjectMetaArgs(name=secret_name, namespace=args.namespace, labels=dict(labels))

        if args.engine_api_key is not None and edge_engines.enforces_api_key(args.fleet.engine):
            created.append(k8s.core.v1.Secret(
                f"{name}-api-key", metadata=meta(edge_engines.api_key_secret_name(args.fleet_name)),
                type="Opaque", string_data={edge_engines.API_KEY_SECRET_KEY: pulumi.Output.secret(args.engine_api_key)},
                opts=opts))
        cred = args.registry_credential
        if cred is not None and args.model_pull is not None:
            created.append(k8s.core.v1.Secret(
                f"{name}-registry-token", metadata=meta(edge_engines.registry_secret_name(args.fleet_name)),
                type="Opaque", string_data={"username": cred.username, "password": pulumi.Output.secret(cred.password)},
                opts=opts))
        if cred is not None:
            config = pulumi.Output.all(cred.address, cred.username, cred.password).apply(
                lambda v: docker_config_json(v[0], v[1], v[2]))
            created.append(k8s.core.v1.Secret(
                f"{name}-pull", metadata=meta(pull_secret_name(args.fleet_name)),
                type="kubernetes.io/dockerconfigjson",
                string_data={".dockerconfigjson": pulumi.Output.secret(config)}, opts=opts))
        return created

    # -- iot-edge --------------------------------------------------------------------------

    def _iot_edge(self, name: str, args: EdgeDeviceArgs, image: pulumi.Input[str],
                  fetch: pulumi.Input[str] | None) -> None:
        fleet = args.fleet
        condition = iot_manifest.target_condition(args.fleet_name, fleet.device_selector)
        labels = {**dict(args.labels), "slmFleet": args.fleet_name, "slmModel": args.model_id}
        registry = None
        if args.registry_credential is not None:
            cred = args.registry_credential
            registry = pulumi.Output.all(cred.address, cred.username, cred.password).apply(
                lambda v: {"address": v[0], "username": v[1], "password": v[2]})

        pull = args.model_pull

        def build(values: list[Any]) -> dict[str, Any]:
            secrets: dict[str, str] = {} if values[3] is None else dict.fromkeys(ENGINE_KEY_ENVS, str(values[3]))
            if pull is not None and values[2] is not None:
                secrets |= {edge_engines.REGISTRY_USERNAME_ENV: str(values[2]["username"]),
                            edge_engines.REGISTRY_PASSWORD_ENV: str(values[2]["password"])}
            return _iot_views(args, image=values[0], fetch_image=values[1], registry=values[2], secrets=secrets,
                              model_registry=_edge_registry(pull, values[4], values[5]))

        key = (pulumi.Output.secret(args.engine_api_key)
               if args.engine_api_key is not None and edge_engines.enforces_api_key(fleet.engine) else None)
        views = pulumi.Output.all(image, fetch, registry, key,
                                  *((pull.login_server, pull.fill_image) if pull else (None, None))).apply(build)
        child = pulumi.ResourceOptions(parent=self, depends_on=list(args.iot_hub_grants))
        # The ids hash the content, which holds the engine key (secret): a 10-hex digest of it reveals nothing,
        # and the hub needs a readable id (a new key is a new id: deployments are immutable on the hub).
        ids: list[pulumi.Output[str]] = []
        if args.base_deployment_enabled:
            base = IotEdgeConfiguration(
                f"{name}-base", hub_host_name=args.iot_hub_host_name or "",
                configuration_id=pulumi.Output.unsecret(views.apply(lambda v: v["base_id"])),
                content=views.apply(lambda v: v["base"]),
                target_condition=condition, priority=fleet.priority,
                labels={**labels, "slmLayer": "base"}, opts=child)
            ids.append(base.configurationId)
        model = IotEdgeConfiguration(
            f"{name}-model", hub_host_name=args.iot_hub_host_name or "",
            configuration_id=pulumi.Output.unsecret(views.apply(lambda v: v["layered_id"])),
            content=views.apply(lambda v: v["layered"]),
            target_condition=condition, priority=fleet.priority,
            labels={**labels, "slmLayer": "model"}, opts=child)
        ids.append(model.configurationId)
        self.configuration_ids = pulumi.Output.all(*ids)
        self.target_condition = condition
        self.deployment_manifest = views.apply(lambda v: json.dumps(v["manifest"], indent=2, sort_keys=True))


def _images(name: str, args: EdgeDeviceArgs) -> tuple[pulumi.Input[str], pulumi.Input[str] | None]:
    """(engine image, fetch image) after defaults and the digest rule."""
    engine = args.fleet.engine
    image: pulumi.Input[str] | None = args.fleet.image or args.engine_image
    if image is None and engine == "onnx-genai":
        image = args.onnx_server_image
    if image is None and not args.digest_pinning_required:
        image = {"ollama": OLLAMA_DEFAULT_IMAGE, "llamacpp": LLAMACPP_DEFAULT_IMAGE}.get(engine or "")
    if image is None:
        msg = (f"EdgeDevice {name!r}: fleet {args.fleet_name!r} ({engine}) has no image; set "
               "edge.fleets.<fleet>.image or engine_image to '<registry>/<repo>:<tag>@sha256:<digest>'"
               + (" or pass onnx_server_image from ModelRegistry" if engine == "onnx-genai" else ""))
        raise ValueError(msg)
    fetch: pulumi.Input[str] | None = None
    if engine == "llamacpp" and args.model_pull is None:
        fetch = args.fetch_image or (None if args.digest_pinning_required else OLLAMA_DEFAULT_IMAGE)
        if fetch is None:
            msg = (f"EdgeDevice {name!r}: fleet {args.fleet_name!r} (llamacpp) needs fetch_image, an Ollama "
                   "image by digest whose pull stores the GGUF blob")
            raise ValueError(msg)
    if args.digest_pinning_required:
        for what, ref in (("image", image), ("fetch_image", fetch)):
            if isinstance(ref, str):
                edge_engines.require_digest(args.fleet_name, ref, what=what)
        if engine == "ollama":
            proxy = args.fleet.auth_proxy_image
            if proxy is None:
                msg = (f"EdgeDevice {name!r}: fleet {args.fleet_name!r} (ollama) has no auth_proxy_image; Ollama checks "
                       "no API key, so an nginx gate runs in front of it: import docker.io/library/nginx into the "
                       "stack's registry and set edge.fleets.<fleet>.auth_proxy_image to "
                       "'<registry>/nginx:<tag>@sha256:<digest>'")
                raise ValueError(msg)
            edge_engines.require_digest(args.fleet_name, proxy, what="auth_proxy_image")
    return image, fetch


def pull_secret_name(fleet_name: str) -> str:
    """The fleet's image pull Secret (Kubernetes delivery)."""
    return f"slm-{fleet_name}-registry"


def docker_config_json(address: str, username: str, password: str) -> str:
    """The ``.dockerconfigjson`` of one registry credential."""
    auth = base64.b64encode(f"{username}:{password}".encode()).decode()
    return json.dumps({"auths": {address: {"username": username, "password": password, "auth": auth}}},
                      sort_keys=True)


def _edge_registry(pull: ModelPull | None, login_server: Any, fill_image: Any) -> edge_engines.EdgeRegistry | None:
    """The plain-values registry of a fleet once its Outputs resolved (None: the public-hub path)."""
    if pull is None:
        return None
    return edge_engines.EdgeRegistry(login_server=str(login_server), fill_image=str(fill_image))


def _iot_views(args: EdgeDeviceArgs, *, image: str, fetch_image: str | None,
               registry: Mapping[str, str] | None, secrets: Mapping[str, str],
               model_registry: edge_engines.EdgeRegistry | None = None) -> dict[str, Any]:
    """Base, layered and full manifests (and their ids) of one iot-edge fleet."""
    spec = edge_engines.edge_container(args.fleet_name, args.fleet, args.model_id, args.model,
                                       args.device_class, image=image, fetch_image=fetch_image,
                                       registry=model_registry, auth_proxy_image=args.fleet.auth_proxy_image)
    modules = iot_manifest.fleet_modules(
        args.fleet_name, spec, memory_bytes=spec.resources.memory_mib * 1024 * 1024,
        nano_cpus=spec.resources.cpu_millicores * iot_manifest.NANO_CPUS_PER_MILLICORE, secrets=secrets)
    base = iot_manifest.base_content(registry)
    layered = iot_manifest.layered_content(args.fleet_name, modules)
    return {
        "base": base, "base_id": iot_manifest.configuration_id(args.fleet_name, "base", base),
        "layered": layered,
        "layered_id": iot_manifest.configuration_id(args.fleet_name, "model", layered),
        "manifest": iot_manifest.deployment_manifest(args.fleet_name, modules, registry=registry),
    }


def _validate(name: str, args: EdgeDeviceArgs) -> None:
    """Pure checks before any child is declared (the settings run the same rules at load time)."""
    fleet = args.fleet
    if fleet.device_class != args.device_class_name:
        msg = (f"EdgeDevice {name!r}: fleet {args.fleet_name!r} names device class {fleet.device_class!r} "
               f"but was given {args.device_class_name!r}; pass the class the fleet names")
        raise ValueError(msg)
    if fleet.model != args.model_id:
        msg = (f"EdgeDevice {name!r}: fleet {args.fleet_name!r} serves {fleet.model!r} but was given "
               f"model {args.model_id!r}; pass the fleet's model")
        raise ValueError(msg)
    allowed = EDGE_DELIVERY_OS[fleet.delivery]
    if args.device_class.os not in allowed:
        msg = (f"EdgeDevice {name!r}: delivery {fleet.delivery!r} does not run on {args.device_class.os} "
               f"devices; it needs {' or '.join(allowed)}"
               + (" (Foundry Local is a desktop runtime, never a container: D8)"
                  if fleet.delivery == "foundry-local" else ""))
        raise ValueError(msg)
    if fleet.delivery != "foundry-local" and fleet.engine is None:
        msg = f"EdgeDevice {name!r}: delivery {fleet.delivery!r} needs an engine ({', '.join(EDGE_ENGINES)})"
        raise ValueError(msg)
    fit = fleet.fit_error(f"edge.fleets.{args.fleet_name}", args.model, args.device_class_name,
                          {args.device_class_name: args.device_class})
    if fit is not None:
        raise ValueError(fit)
    if fleet.delivery == "kubernetes" and args.kubeconfig is None:
        msg = (f"EdgeDevice {name!r}: delivery 'kubernetes' needs kubeconfig; read it with "
               f"pulumi.Config().require_secret({fleet.kubeconfig_key(args.fleet_name)!r})")
        raise ValueError(msg)
    needs_key = edge_engines.enforces_api_key(fleet.engine) and fleet.delivery != "foundry-local"
    if needs_key and args.engine_api_key is None:
        msg = (f"EdgeDevice {name!r}: the {fleet.engine} server enforces an API key on /v1/*; pass "
               "engine_api_key (the secret config slm-platform:engineApiKey) so the device port is not open")
        raise ValueError(msg)
    if args.model_pull is not None and fleet.delivery != "foundry-local":
        if args.registry_credential is None:
            msg = (f"EdgeDevice {name!r}: model_pull needs registry_credential (the pull-only ACR token the fill "
                   "step pulls the model with)")
            raise ValueError(msg)
        if fleet.delivery == "kubernetes" and not args.model_pull.egress_cidrs:
            msg = (f"EdgeDevice {name!r}: model_pull.egress_cidrs is empty; list the registry endpoint's CIDRs as "
                   "the site reaches them (the private endpoint subnet), the only egress the fleet's pods get")
            raise ValueError(msg)
    if fleet.delivery == "iot-edge" and args.iot_hub_host_name is None:
        msg = f"EdgeDevice {name!r}: delivery 'iot-edge' needs iot_hub_host_name (EdgeHub.hub_host_name)"
        raise ValueError(msg)
