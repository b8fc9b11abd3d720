"""The ``slm`` Pulumi component package: our components for every Pulumi language.

Pulumi's component authoring for Python (``pulumi.provider.experimental``) infers a package schema from
a ``ComponentResource``'s ``__init__(self, name, args: SomeArgs, opts)`` and serves ``Construct`` over the
provider gRPC protocol; ``pulumi package add <this repo>`` reads ``PulumiPlugin.yaml`` and generates an
SDK in the consumer's language (TypeScript, Go, C#, Java, YAML).

What this module adds to ``component_provider_host`` (``SlmComponentProvider``), and why:

* **Analysis of our Args as written.** The stock analyzer reads raw ``__annotations__`` (so a module
  with ``from __future__ import annotations`` fails with ``'str' object has no attribute '__mro__'``),
  rejects ``Literal[...]`` and ``tuple[T, ...]``, and marks every non-``Optional`` field required, even
  one with a dataclass default. ``SlmAnalyzer`` resolves annotations (``eval_str``), reads string
  ``Literal``s as strings, ``tuple[T, ...]`` as lists and ``Annotated[T, ...]`` (pydantic domain types
  such as ``NodePool``) as ``T``, and makes a field with a default optional in
  the schema: the default is the documented behaviour. Python-only fields (``Callable`` hooks such as
  ``ModelRegistryArgs.registry_token_provider``, handles on arbitrary resources such as
  ``DeployRunnerArgs.after``) stay out of the schema and keep their default.
* **Unions of kinds** (``ServingWorkloadsArgs.deployments``: vLLM, Ollama or ONNX, chosen by ``target``).
  A Pulumi schema has no tagged unions, so ``analyze_kinds`` writes one object type (``AksDeployment``):
  ``target`` an enum of the kinds, every kind's fields optional properties whose descriptions name the
  kinds they apply to. ``build_kind`` validates what arrives with the real pydantic kind: a field of
  another kind, an unknown kind or a value the model refuses fails ``Construct`` before anything is
  registered, as the protocol's ``InputPropertiesError`` (path, value and fix).
* **Typed Args in Construct.** The stock provider hands the component a plain dict; ours are frozen
  dataclasses (``args.models``), so ``map_inputs`` builds the Args dataclass (nested ones too) from it.
* **Outputs of any shape.** The stock state mapping handles a dataclass output only at the top level
  and as a dict; ``get_state`` maps dataclasses (and maps of them) at any depth.
* **The schema's type token.** The engine asks for ``slm:index:<Component>``; the component registers
  under that token when constructed by the package (``_type_token``), and keeps its own
  (``slm:monitoring:MonitoringStack``) in Python programs, so our stacks' URNs do not move.

``python -m components.package.gen_schema --write`` regenerates ``components/package/schema.json``;
a test compares it with what the analyzer infers.
"""

import dataclasses
import inspect
import json
import re
import sys
import types
from collections import abc
from enum import Enum
from typing import Annotated, Any, Literal, NoReturn, Union, cast, get_args, get_origin

import pulumi
from pulumi.errors import InputPropertiesError, InputPropertyError
from pulumi.provider import main as provider_main
from pulumi.provider.experimental.analyzer import (
    Analyzer,
    ComponentDefinition,
    PropertyDefinition,
    PropertyType,
)
from pulumi.provider.experimental.component import ComponentProvider
from pulumi.provider.experimental.schema import generate_schema
from pulumi.provider.experimental.util import camel_case
from pulumi.provider.provider import ConstructResult, Provider

PACKAGE_NAME = "slm"
PACKAGE_VERSION = "0.1.0"
"""The package's version (the project's, ``pyproject.toml``)."""


def exported_components() -> list[type[pulumi.ComponentResource]]:
    """The components the package exports (imported here so the schema names exactly these)."""
    from components.deploy_runner import DeployRunner
    from components.edge_device import EdgeDevice
    from components.foundation import Foundation
    from components.inference_cluster import InferenceCluster
    from components.model_registry import ModelRegistry
    from components.monitoring_stack import MonitoringStack
    from components.serving_workloads import ServingWorkloads

    return [DeployRunner, EdgeDevice, Foundation, InferenceCluster, ModelRegistry, MonitoringStack,
            ServingWorkloads]


DISCRIMINATOR = "target"
"""The field that names a deployment's kind (``components/domain/deployments.py``)."""


def union_type_name(members: tuple[type, ...]) -> str:
    """The schema name of a union of kinds: the domain's alias (``AksDeployment``) for the serving kinds."""
    from components.domain.deployments import AksDeployment

    return "AksDeployment" if set(members) == set(get_args(AksDeployment)) else "Or".join(m.__name__ for m in members)


def kinds(tp: Any) -> dict[str, type] | None:
    """``{discriminator value: model}`` when ``tp`` is a union of pydantic models that each fix ``target``
    to one string ``Literal`` (the deployment kinds), else ``None``. ``T | None`` is not such a union."""
    if get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    if not _is_union(tp):
        return None
    members = [a for a in get_args(tp) if a is not type(None)]
    found: dict[str, type] = {}
    for m in members:
        field = getattr(m, "model_fields", {}).get(DISCRIMINATOR) if isinstance(m, type) else None
        values = get_args(field.annotation) if field is not None and get_origin(field.annotation) is Literal else ()
        if len(values) != 1 or not isinstance(values[0], str):
            return None
        found[values[0]] = m
    return found if len(members) > 1 else None


def _annotations(obj: Any) -> dict[str, Any]:
    import inspect

    return inspect.get_annotations(obj, eval_str=True)


def _defaulted_fields(typ: type) -> set[str]:
    """Fields of a dataclass or pydantic model that have a default (optional in the schema)."""
    if dataclasses.is_dataclass(typ):
        return {f.name for f in dataclasses.fields(typ)
                if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING}
    model_fields = getattr(typ, "model_fields", None)
    if isinstance(model_fields, dict):
        return {name for name, info in model_fields.items() if not info.is_required()}
    return set()


def _is_union(tp: Any) -> bool:
    return get_origin(tp) in (Union, types.UnionType)


def _is_callable(tp: Any) -> bool:
    """A Python-only field: a hook (``Callable``) or a handle on *any* resource (``pulumi.Resource``,
    alone or in a sequence), neither of which a schema type can carry. Other languages order with
    ``dependsOn``; a typed resource (``k8s.Provider``) is a schema reference and stays."""
    members = [a for a in get_args(tp) if a is not type(None)] if _is_union(tp) else [tp]
    for m in members:
        if get_origin(m) is abc.Callable or m is abc.Callable:
            return True
        item = get_args(m)[0] if get_origin(m) in (abc.Sequence, list, tuple) and get_args(m) else m
        if isinstance(item, type) and issubclass(item, pulumi.Resource) and not getattr(item, "pulumi_type", None):
            return True
    return False


class SlmAnalyzer(Analyzer):
    """Pulumi's analyzer, reading resolved annotations, ``Literal`` / ``tuple`` fields, dataclass defaults
    and discriminated unions of pydantic kinds (``analyze_kinds``)."""

    def analyze_component(self, component: type[pulumi.ComponentResource]) -> ComponentDefinition:
        """As the stock analyzer, with ``args``' annotation resolved (``from __future__`` modules)."""
        args = _annotations(component.__init__).get("args")
        if args is None:
            msg = f"ComponentResource '{component.__name__}' needs a typed 'args' argument in __init__"
            raise TypeError(msg)
        inputs, inputs_mapping = self.analyze_type(args, is_component_output=False)
        outputs, outputs_mapping = self.analyze_type(component, is_component_output=True)
        return ComponentDefinition(
            name=component.__name__,
            description=component.__doc__.strip() if component.__doc__ else None,
            inputs=inputs, inputs_mapping=inputs_mapping,
            outputs=outputs, outputs_mapping=outputs_mapping,
            module=component.__module__,
        )

    def analyze_type(
        self, typ: type, *, is_component_output: bool
    ) -> tuple[dict[str, PropertyDefinition], dict[str, str]]:
        """Properties of ``typ`` from its resolved annotations; dataclass fields with a default are optional."""
        from pulumi.resource import ComponentResource, Resource

        ann: dict[str, Any] = {}
        for cls in reversed(typ.__mro__):
            if cls in (object, Resource, ComponentResource):
                continue
            ann.update(_annotations(cls))
        ann = {k: v for k, v in ann.items() if not k.startswith("_") and not _is_callable(v)}
        defaults = _defaulted_fields(typ)
        props = {
            camel_case(k): self.analyze_property(
                v, typ, k, can_be_plain=not is_component_output, is_component_output=is_component_output,
                optional=True if k in defaults else None)
            for k, v in ann.items()
        }
        return props, {camel_case(k): k for k in ann}

    def analyze_property(self, arg: Any, typ: type, name: str, *, can_be_plain: bool,
                         is_component_output: bool, optional: bool | None = None) -> PropertyDefinition:
        """``Literal["a", "b"]`` is a string, ``tuple[T, ...]`` a list of ``T``, a union of kinds one object
        (``analyze_kinds``); the rest as Pulumi's."""
        union = kinds(arg)
        if union is not None:
            return PropertyDefinition(ref=self.analyze_kinds(union, can_be_plain=can_be_plain,
                                                             is_component_output=is_component_output),
                                      optional=bool(optional), plain=True if can_be_plain else None,
                                      description=self.get_docstring(typ, name))
        if get_origin(arg) is Literal and all(isinstance(v, str) for v in get_args(arg)):
            return PropertyDefinition(type=PropertyType.STRING, optional=bool(optional),
                                      plain=True if can_be_plain else None,
                                      description=self.get_docstring(typ, name))
        if get_origin(arg) is Annotated:  # pydantic constraints: the schema keeps the base type
            return self.analyze_property(get_args(arg)[0], typ, name, can_be_plain=can_be_plain,
                                         is_component_output=is_component_output, optional=optional)
        if get_origin(arg) is tuple and len(get_args(arg)) == 2 and get_args(arg)[1] is Ellipsis:
            arg = abc.Sequence[get_args(arg)[0]]
        return super().analyze_property(arg, typ, name, can_be_plain=can_be_plain,
                                        is_component_output=is_component_output, optional=optional)

    def analyze_kinds(self, union: dict[str, type], *, can_be_plain: bool, is_component_output: bool) -> str:
        """A union of kinds as one object type (a Pulumi schema has no tagged unions): ``target`` is an enum
        of the kinds, every kind's fields are properties, optional unless every kind requires them, each
        described with the kinds it applies to. ``Construct`` validates the object with the real union."""
        from pulumi.provider.experimental.analyzer import EnumValueDefinition, TypeDefinition

        members = tuple(union.values())
        type_name = union_type_name(members)
        enum_name = f"{type_name}Target"
        ref = f"#/types/{self.name}:index:{type_name}"
        if type_name in self.type_definitions:
            return ref
        target_enum = cast("type[Enum]", Enum(enum_name, {v.upper().replace("-", "_"): v for v in union}, type=str))
        self.type_definitions[enum_name] = TypeDefinition(
            name=enum_name, type=PropertyType.STRING, properties={}, properties_mapping={},
            module=members[0].__module__, python_type=target_enum,
            description=f"Which kind an ``{type_name}`` is: which engine serves it.",
            enum=[EnumValueDefinition(name=m.name, value=m.value, description=(union[m.value].__doc__ or "").strip())
                  for m in target_enum])
        type_def = TypeDefinition(
            name=type_name, type=PropertyType.OBJECT, properties={}, properties_mapping={},
            module=members[0].__module__, python_type=dict,  # only an enum's is read; Construct: build_kind
            description=(f"One of the kinds {', '.join(union)}, chosen by ``{DISCRIMINATOR}``. A property "
                         "applies only to the kinds its description names; another kind's property is "
                         "refused with an error naming it."))
        self.type_definitions[type_name] = type_def
        names = [n for m in members for n in m.model_fields if n != DISCRIMINATOR]
        props: dict[str, PropertyDefinition] = {camel_case(DISCRIMINATOR): PropertyDefinition(
            ref=f"#/types/{self.name}:index:{enum_name}", optional=False, plain=True if can_be_plain else None,
            description="The kind: which engine serves the model, and so which other properties apply.")}
        for field_name in dict.fromkeys(names):
            props[camel_case(field_name)] = self._kind_property(union, field_name, can_be_plain=can_be_plain,
                                                                is_component_output=is_component_output)
        type_def.properties = props
        type_def.properties_mapping = {camel_case(n): n for n in [DISCRIMINATOR, *dict.fromkeys(names)]}
        return ref

    def _kind_property(self, union: dict[str, type], field_name: str, *, can_be_plain: bool,
                       is_component_output: bool) -> PropertyDefinition:
        """One field of the kinds that have it: its type (the same in each), its docs, where it applies."""
        having = {k: m for k, m in union.items() if field_name in m.model_fields}
        owners = {k: next(c for c in m.__mro__ if field_name in inspect.get_annotations(c))
                  for k, m in having.items()}
        hints = {k: _annotations(owner)[field_name] for k, owner in owners.items()}
        if len({repr(h) for h in hints.values()}) > 1:
            msg = f"{field_name}: the kinds {', '.join(having)} give it different types {set(hints.values())}"
            raise TypeError(msg)
        kind, owner = next(iter(owners.items()))
        prop = self.analyze_property(hints[kind], owner, field_name, can_be_plain=can_be_plain,
                                     is_component_output=is_component_output,
                                     optional=not all(k in having and having[k].model_fields[field_name].is_required()
                                                  for k in union))
        applies = ("Applies to every kind." if len(having) == len(union)
                   else f"Applies to {', '.join(having)} only.")
        defaults = {k: m.model_fields[field_name].default for k, m in having.items()
                    if not m.model_fields[field_name].is_required()
                    and isinstance(m.model_fields[field_name].default, bool | int | float | str)}
        if len(set(defaults.values())) > 1:
            applies += " Default: " + ", ".join(f"{v!r} ({k})" for k, v in defaults.items()) + "."
        prop.description = " ".join(x for x in (self.get_docstring(owner, field_name), applies) if x)
        return prop




def refuse(problems: list[tuple[str, Any, str]]) -> NoReturn:
    """Fail ``Construct`` as the provider protocol reports bad inputs: one ``path=value: fix`` line each in
    the message, and each as an ``InputPropertiesError`` detail (``property_path``, ``reason``)."""
    shown = [(path, int(v) if isinstance(v, float) and v.is_integer() else v, reason)  # numbers travel as floats
             for path, v, reason in problems]
    raise InputPropertiesError("; ".join(f"{path}={value!r}: {reason}" for path, value, reason in shown),
                               [{"property_path": path, "reason": f"{value!r}: {reason}"}
                                for path, value, reason in shown])


def build_kind(union: dict[str, type], value: dict[str, Any], path: str) -> Any:
    """The kind ``value[target]`` names, validated by the domain model itself; a field of another kind, an
    unknown kind or a value the model refuses fails with the schema path, the value and the fix."""
    raw = value.get(DISCRIMINATOR)
    target = raw.value if isinstance(raw, Enum) else raw
    if target not in union:
        refuse([(f"{path}.{DISCRIMINATOR}", target, f"not a kind; use one of {', '.join(union)}")])
    model = union[target]
    wrong = [(f"{path}.{camel_case(key)}", given,
              f"applies to {', '.join(k for k, m in union.items() if key in m.model_fields)} only, not "
              f"{target}; remove it, or set {DISCRIMINATOR} to "
              f"{next(k for k, m in union.items() if key in m.model_fields)}")
             for key, given in value.items() if key != DISCRIMINATOR and key not in model.model_fields]
    if wrong:
        refuse(wrong)
    hints = {k: v for cls in reversed(model.__mro__) for k, v in _annotations(cls).items()}
    fields = {k: build_value(hints.get(k, Any), v, f"{path}.{camel_case(k)}") for k, v in value.items()}
    return validated(model, fields | {DISCRIMINATOR: target}, path)


def validated(model: Any, data: dict[str, Any], path: str) -> Any:
    """``model.model_validate(data)``; what pydantic refuses is refused with its schema path (``refuse``)."""
    from pydantic import ValidationError

    try:
        return model.model_validate(data)
    except ValidationError as e:
        refuse([(".".join([path, *(camel_case(str(p)) for p in err["loc"])]), err["input"], err["msg"])
                for err in e.errors()])


def build_value(tp: Any, value: Any, path: str = "") -> Any:
    """``value`` (what Construct received, names already in Python form) as an instance of ``tp``.

    Dataclasses are built from dicts (recursively), enums from their values, integral floats of ``int``
    fields become ints, mappings and sequences go item by item, a union of kinds by its ``target``
    (``build_kind``); ``pulumi.Input`` values and Outputs pass through unchanged. ``path`` names the
    value in messages, in schema names (``deployments.phi.target``).
    """
    if value is None or isinstance(value, pulumi.Output):
        return value
    union = kinds(tp)
    if union is not None and isinstance(value, dict):
        return build_kind(union, value, path)
    if _is_union(tp):
        members = [a for a in get_args(tp) if a is not type(None)]
        if any(get_origin(a) is abc.Awaitable for a in members):  # pulumi.Input[T]: pass it on
            return value
        tp = members[0]
    origin = get_origin(tp)
    if isinstance(tp, type) and hasattr(tp, "model_validate") and isinstance(value, dict):
        # A pydantic domain type (components/domain: NodePool, SystemPool): its fields, then its validators.
        hints = {k: v for cls in reversed(tp.__mro__) for k, v in _annotations(cls).items()}
        return validated(tp, {k: build_value(hints.get(k, Any), v, _join(path, camel_case(k)))
                              for k, v in value.items()}, path)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        hints: dict[str, Any] = {}
        for cls in reversed(tp.__mro__):
            hints.update(_annotations(cls))
        return tp(**{f.name: build_value(hints[f.name], value[f.name], _join(path, camel_case(f.name)))
                     for f in dataclasses.fields(tp) if f.init and f.name in value})
    if origin in (abc.Mapping, dict, abc.MutableMapping) and isinstance(value, dict):
        item = get_args(tp)[1] if get_args(tp) else Any
        return {k: build_value(item, v, f"{path}.{k}") for k, v in value.items()}
    if origin in (abc.Sequence, list, tuple, abc.MutableSequence) and isinstance(value, list | tuple):
        item = get_args(tp)[0] if get_args(tp) else Any
        return tuple(build_value(item, v, f"{path}[{i}]") for i, v in enumerate(value))
    if isinstance(tp, type) and issubclass(tp, Enum) and not isinstance(value, tp):
        return tp(value)
    if tp is int and isinstance(value, float) and value.is_integer():
        # Numbers travel as floats; the stock mapping converts integers and then overwrites the result
        # with the raw float (pulumi 3.272 component.py), so "30s" would render as "30.0s".
        return int(value)
    return value


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def to_state(value: Any) -> Any:
    """An output value as the engine takes it: dataclasses as camelCase objects, enums as values."""

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {camel_case(f.name): to_state(getattr(value, f.name)) for f in dataclasses.fields(value)
                if getattr(value, f.name) is not None}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {k: to_state(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_state(v) for v in value]
    return value


class SlmComponentProvider(ComponentProvider):
    """``ComponentProvider`` with ``SlmAnalyzer``, typed Args and the schema's type tokens."""

    def __init__(self, components: list[type[pulumi.ComponentResource]], name: str = PACKAGE_NAME,
                 version: str = PACKAGE_VERSION) -> None:
        self._name = name
        self.analyzer = SlmAnalyzer(name)
        result = self.analyzer.analyze(components)
        self._components = {c.__name__: c for c in components}
        self._component_defs = result["component_definitions"]
        self._type_defs = result["type_definitions"]
        self._external_enum_types = result["external_enum_types"]
        self._dependencies = sorted(result["dependencies"], key=lambda d: f"{d.name}{d.version}")
        schema = generate_schema(name, version, None, self._component_defs, self._type_defs, self._dependencies)
        Provider.__init__(self, version, json.dumps(schema.to_json()))

    def map_inputs(self, inputs: Any, component_def: ComponentDefinition) -> Any:
        """The component's Args instance (not the stock dict). A bad input is refused with its path, its
        value and the fix, in the error's message too (the stock one leaves it empty), before any
        registration."""
        try:
            mapped = super().map_inputs(inputs, component_def)
        except InputPropertyError as e:
            allowed = re.search(r"for enum '(\w+)'", e.reason)
            enum = self._type_defs.get(allowed.group(1)) if allowed else None
            fix = f"; use one of {', '.join(str(v.value) for v in enum.enum or [])}" if enum else ""
            msg = f"{e.property_path}: {e.reason}{fix}"
            raise InputPropertiesError(msg, [{"property_path": e.property_path, "reason": e.reason + fix}]) from None
        args_type = _annotations(self._components[component_def.name].__init__)["args"]
        return build_value(args_type, mapped)

    def construct(self, name: str, resource_type: str, inputs: Any,
                  options: pulumi.ResourceOptions | None = None) -> ConstructResult:
        """Construct the component under the schema's token (``slm:index:<Component>``)."""
        component_name = resource_type.rsplit(":", maxsplit=1)[-1]
        original = self._components[component_name]
        self._components[component_name] = type(component_name, (original,), {
            "_type_token": resource_type, "__module__": original.__module__, "__doc__": original.__doc__})
        try:
            return super().construct(name, resource_type, inputs, options)
        finally:
            self._components[component_name] = original


    def get_state(self, instance: pulumi.ComponentResource, component_def: ComponentDefinition) -> dict[str, Any]:
        """The component's outputs by schema name; dataclass values (``Foundation.kubelet_identity``, a map
        of them in ``workload_identities``) become objects with camelCase keys, at any depth."""
        state: dict[str, Any] = {}
        for key, py_name in component_def.outputs_mapping.items():
            value = getattr(instance, py_name, None)
            if value is not None:
                state[key] = to_state(value)
        return state


def schema() -> dict[str, Any]:
    """The package schema Pulumi's analyzer infers from ``exported_components()``."""
    return json.loads(SlmComponentProvider(exported_components()).schema or "{}")


def serve() -> None:
    """Run the provider as the engine starts a plugin (``<plugin> <engine address>``; the port on stdout)."""
    provider_main(SlmComponentProvider(exported_components()), sys.argv[1:])
