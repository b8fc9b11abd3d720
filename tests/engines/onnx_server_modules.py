"""Load the ONNX server's scripts (not a package: they are copied into the image) under unique names."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

SERVER_DIR = Path(__file__).resolve().parents[2] / "components" / "engines" / "onnx_server"


def load(script: str) -> ModuleType:
    """Import ``<script>.py`` from the server directory as ``slm_onnx_server_<script>``."""
    name = f"slm_onnx_server_{script}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, SERVER_DIR / f"{script}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
