#!/usr/bin/env bash
# Scan rendered Kubernetes manifests with Checkov, offline, from its own virtualenv.
#
# Checkov pins packaging<24, which conflicts with pulumi (packaging>=26): it cannot share .venv
# (docs/DESIGN.md "Known traps"). This script creates .checkov-venv on first use, then runs
#   checkov -d <dir> --framework kubernetes --quiet --compact -o json --skip-download
# with the update check and the Bridgecrew mapping download turned off, so it needs no network
# after the install.
#
# Usage: scripts/checkov.sh <manifest-dir> [extra checkov args...]
#        scripts/checkov.sh --install-only
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${CHECKOV_VENV:-$ROOT/.checkov-venv}"
PYTHON="${PYTHON:-python3}"

if [[ ! -x "$VENV/bin/checkov" ]]; then
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "checkov>=3.3,<4"
fi

if [[ "${1:-}" == "--install-only" ]]; then
    exit 0
fi
if [[ $# -lt 1 ]]; then
    echo "usage: $0 <manifest-dir> [checkov args...]" >&2
    exit 64
fi

DIR="$1"
shift
export CKV_SKIP_PACKAGE_UPDATE_CHECK=true
export BC_SKIP_MAPPING=TRUE
exec "$VENV/bin/checkov" -d "$DIR" --framework kubernetes --quiet --compact -o json --skip-download "$@"
