"""`slmctl render` writes every artefact family an independent checker reads, without secrets."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from stack_support import REPO_ROOT

from slmctl.loader import PLACEHOLDER_SECRET


def test_render_prod_writes_k8s_monitoring_and_edge_without_secrets(tmp_path: Path) -> None:
    # A copy written to its own folder, so parallel tests that write build/prod never race this one.
    stack_file = tmp_path / "Pulumi.prod-render-test.yaml"
    shutil.copy(REPO_ROOT / "stacks" / "Pulumi.prod.yaml", stack_file)
    base = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "slmctl", "render", "--stack-file", str(stack_file),
                             "--out", str(base)],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert list((base / "k8s").rglob("*.yaml"))
    assert list((base / "monitoring" / "rules").glob("*.yaml"))
    assert list((base / "monitoring" / "dashboards").glob("*.json"))
    layered = (base / "edge" / "plant-floor.layered.json").read_text()
    assert "slmprodacr.azurecr.io/slm/onnx-genai-server@sha256:" in layered  # the registry ModelRegistry builds into
    leaked = [p for p in base.rglob("*") if p.is_file() and PLACEHOLDER_SECRET in p.read_text(errors="ignore")]
    assert leaked == []
