"""Refresh policies/data/helm-index.json from the Helm repositories' own index.yaml (needs network).

    python scripts/refresh_helm_index.py            # rewrite the file
    python scripts/refresh_helm_index.py --check    # exit 1 when a pinned version is not in its index

The committed file keeps only the entries this project relies on: for every chart the code pins
(``PINS`` below reads the constants the components use), the pinned version's name, version,
appVersion and digest. Policy ``slm-k8s-helm-chart-exists`` checks the plan against that file offline;
tests never run this script. Bump a pin in the code, run this, and commit both: a version the
repository does not publish makes the script fail before anything is committed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import urllib.request
from pathlib import Path
from typing import Any, Final

import yaml

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from components import inference_cluster as ic  # noqa: E402 (after the repo root is on the path)
from components import serving_workloads as sw  # noqa: E402
from components.monitoring import helm_values as hv  # noqa: E402

OUT: Final = REPO_ROOT / "policies" / "data" / "helm-index.json"
TIMEOUT_SECONDS: Final = 120
PINS: Final[tuple[tuple[str, str, str], ...]] = (
    (hv.KUBE_PROMETHEUS_STACK_REPO, hv.KUBE_PROMETHEUS_STACK_CHART, hv.KUBE_PROMETHEUS_STACK_VERSION),
    (hv.DCGM_EXPORTER_REPO, hv.DCGM_EXPORTER_CHART, hv.DCGM_EXPORTER_VERSION),
    (ic.DEVICE_PLUGIN_REPO, "nvidia-device-plugin", ic.DEVICE_PLUGIN_CHART_VERSION),
    (ic.GPU_OPERATOR_REPO, "gpu-operator", ic.GPU_OPERATOR_CHART_VERSION),
    (sw.KEDA_REPO, "keda", sw.KEDA_CHART_VERSION),
    (sw.INGRESS_NGINX_REPO, "ingress-nginx", sw.INGRESS_NGINX_CHART_VERSION),
)
"""(repository, chart, version) for every Helm release the components declare."""


def fetch_index(repo: str) -> dict[str, Any]:
    """The repository's index.yaml, parsed."""
    url = repo.rstrip("/") + "/index.yaml"
    if not url.startswith("https://"):
        msg = f"{url}: only https repositories are fetched"
        raise ValueError(msg)
    with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310 (https only, above)
        return yaml.safe_load(response.read()) or {}


def entries(index: dict[str, Any], chart: str, version: str) -> list[dict[str, str | None]]:
    """The pinned entry of ``chart`` (empty when the index does not list that version)."""
    return [{"version": str(e["version"]), "appVersion": str(e.get("appVersion", "")),
             "digest": None if e.get("digest") is None else str(e["digest"])}
            for e in index.get("entries", {}).get(chart, []) if str(e.get("version")) == version]


def refreshed() -> tuple[dict[str, Any], list[str]]:
    """The new document and the pins the repositories do not publish."""
    today = dt.datetime.now(dt.UTC).date().isoformat()
    repos: dict[str, Any] = {}
    missing: list[str] = []
    indexes: dict[str, dict[str, Any]] = {}
    for repo, chart, version in PINS:
        index = indexes.setdefault(repo, fetch_index(repo))
        found = entries(index, chart, version)
        if not found:
            missing.append(f"{chart} {version} is not in {repo}/index.yaml")
        entry = repos.setdefault(repo.rstrip("/"), {"index": repo.rstrip("/") + "/index.yaml",
                                                    "copied_from": repo.rstrip("/") + "/index.yaml",
                                                    "copied_on": today, "charts": {}})
        entry["charts"].setdefault(chart, []).extend(found)
    about = json.loads(OUT.read_text(encoding="utf-8"))["about"] if OUT.is_file() else ""
    return {"about": about, "repositories": repos}, missing


def main(argv: list[str] | None = None) -> int:
    """Rewrite (or, with --check, only verify) the committed index entries."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="verify only; do not write")
    options = parser.parse_args(argv)
    document, missing = refreshed()
    for line in missing:
        sys.stderr.write(line + "\n")
    if missing:
        return 1
    if not options.check:
        OUT.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        sys.stdout.write(f"wrote {OUT.relative_to(REPO_ROOT)}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
