"""A protobuf ``Struct`` as Python, the way ``json_format.MessageToDict`` returns it, without its cost.

``MessageToDict`` dispatches on each field's descriptor in pure Python; a ``Struct`` only ever holds
six kinds of value, so reading them directly returns the same dict (same keys in the same order,
numbers as floats, null as None) about four times faster. Both sides of the gate convert every
resource's properties: the pack (``policies/conversion.py``) and the offline recorder
(``slmctl/recorder.py``). ``tests/policies/test_conversion_once.py`` compares the two on every Struct
of two gates. This module imports protobuf only: the pack and the planning process both load it.
"""

from __future__ import annotations

import math
from typing import Any

from google.protobuf import json_format


class NotFiniteError(Exception):
    """A NaN or infinite number: ``json_format`` raises its own error for it."""


def _value_to_python(value: Any) -> Any:
    which = value.WhichOneof("kind")
    if which is None or which == "null_value":
        return None
    if which == "number_value":
        number = value.number_value
        if not math.isfinite(number):
            raise NotFiniteError
        return number
    if which == "string_value":
        return value.string_value
    if which == "bool_value":
        return value.bool_value
    if which == "struct_value":
        return struct_to_python(value.struct_value)
    return [_value_to_python(item) for item in value.list_value.values]


def struct_to_python(message: Any) -> dict[str, Any]:
    """What ``json_format.MessageToDict`` returns for a ``Struct``; raises :class:`NotFiniteError` for NaN/inf."""
    fields = message.fields
    return {key: _value_to_python(fields[key]) for key in fields}


def struct_dict(message: Any) -> dict[str, Any]:
    """``json_format.MessageToDict(message)`` for a ``Struct``, including its ValueError for NaN or infinity."""
    try:
        return struct_to_python(message)
    except NotFiniteError:
        return json_format.MessageToDict(message)  # raises json_format's own error
