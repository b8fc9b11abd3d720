"""slmctl: the offline toolchain (plan, gate, render, schema) for the slm-platform Pulumi project."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path


def _version() -> str:
    """The project version: from pyproject.toml in a checkout (the source of truth), else the installed metadata."""
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    if pyproject.is_file():
        return str(tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"])
    return metadata.version("slm-platform")


__version__ = _version()
