"""Download one ONNX Runtime GenAI variant of a model at container start (init container).

Only ``<variant>/*`` of the pinned ``--revision`` is fetched, into ``--dest``; the server then
loads ``<dest>/<variant>``. Weights are never baked into the image (the image stays small and a
weights change is a config change, not a rebuild).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from pathlib import Path

REVISION_PATTERN = re.compile(r"^[0-9a-f]{40}$")


def variant_patterns(variant: str) -> list[str]:
    """``allow_patterns`` for one variant folder (and nothing else of the repo)."""
    clean = variant.strip("/")
    if not clean or ".." in clean.split("/"):
        msg = f"variant {variant!r} must be a sub-folder of the repo, e.g. gpu/gpu-int4-rtn-block-32"
        raise ValueError(msg)
    return [f"{clean}/*"]


def main(argv: Sequence[str] | None = None) -> None:
    """Fetch the variant (idempotent: files already present are reused)."""
    parser = argparse.ArgumentParser(description="download an ONNX Runtime GenAI model variant")
    parser.add_argument("--repo", required=True)
    parser.add_argument("--revision", required=True)
    parser.add_argument("--variant", required=True)
    parser.add_argument("--dest", required=True)
    options = parser.parse_args(argv)
    if not REVISION_PATTERN.fullmatch(options.revision):
        msg = f"--revision {options.revision!r} must be a 40-character commit sha, never a branch"
        raise SystemExit(msg)
    from huggingface_hub import (  # pyright: ignore[reportMissingImports]  # lazy: installed in the image only
        snapshot_download,
    )

    snapshot_download(repo_id=options.repo, revision=options.revision,
                      allow_patterns=variant_patterns(options.variant), local_dir=options.dest)
    if not (Path(options.dest) / options.variant.strip("/") / "genai_config.json").is_file():
        msg = f"{options.repo}@{options.revision} has no {options.variant}/genai_config.json"
        raise SystemExit(msg)


if __name__ == "__main__":
    main()
