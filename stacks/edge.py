"""Our stack file -> the edge renderer's inputs (``components.edge.render`` knows fleets, not stacks)."""

from __future__ import annotations

from pathlib import Path

from components.edge.render import render_edge
from stacks.settings import EnvironmentSettings


def render_stack_edge(settings: EnvironmentSettings, out_dir: Path, *, registry_login_server: str = "<registry>",
                      onnx_server_image: str | None = None) -> list[Path]:
    """``slmctl render``'s edge files: the stack's fleets, device classes and models; the registry
    pull when the tier loads weights from the registry (``EnvironmentSettings.weights_from_registry``)."""
    return render_edge(settings.edge.fleets, settings.edge.device_classes, settings.models, out_dir,
                       weights_from_registry=settings.weights_from_registry,
                       registry_login_server=registry_login_server, onnx_server_image=onnx_server_image)
