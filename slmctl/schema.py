"""JSON Schemas for editors: the settings object and a whole stack file."""

from __future__ import annotations

from typing import Any

from stacks.settings import SETTINGS_KEY, EnvironmentSettings


def _close_pattern_maps(node: Any) -> None:
    """A map with ``patternProperties`` (pool names, model ids) refuses keys that match no pattern.

    Without it a key like ``Phi_Managed:`` passes the editor's schema and fails only at load time.
    """
    if isinstance(node, dict):
        if "patternProperties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for value in node.values():
            _close_pattern_maps(value)
    elif isinstance(node, list):
        for value in node:
            _close_pattern_maps(value)


def settings_schema() -> dict[str, Any]:
    """The JSON Schema of ``EnvironmentSettings``."""
    schema = EnvironmentSettings.model_json_schema()
    _close_pattern_maps(schema)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def stack_file_schema() -> dict[str, Any]:
    """A schema for ``stacks/Pulumi.<env>.yaml``: the settings under ``config``, other keys free."""
    inner = settings_schema()
    defs = inner.pop("$defs", {})
    inner.pop("$schema", None)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "slm-platform stack file",
        "type": "object",
        "properties": {
            "config": {
                "type": "object",
                "properties": {SETTINGS_KEY: inner},
                "required": [SETTINGS_KEY],
            },
            "secretsprovider": {"type": "string"},
            "encryptedkey": {"type": "string"},
            "encryptionsalt": {"type": "string"},
        },
        "required": ["config"],
        "$defs": defs,
    }
