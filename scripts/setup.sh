#!/usr/bin/env bash
# Set up everything modelrollout needs on a fresh machine (idempotent, cached):
#   - a virtualenv in .venv with the package installed editable, all extras + dev tools
#   - the local Kubernetes control plane built from Go modules (cached by content hash)
#   - the Gateway API and Istio CRDs from their Go modules (for the route routers' tests)
#   - Prometheus built from its Go module, for the canary Prometheus provider's tests (cached)
# Usage: scripts/setup.sh            (everything)
#        SKIP_CLUSTER_BUILD=1 scripts/setup.sh   (Python only)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PYTHON=${PYTHON:-python3}
VENV=${VENV:-$ROOT/.venv}

log() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    log "Python 3.11+ is required (found: $("$PYTHON" --version 2>&1))"; exit 1
fi

# Reinstall only when the dependency declaration changed.
stamp_hash=$(cat pyproject.toml | sha256sum | cut -c1-16)
if [[ ! -x $VENV/bin/python || ! -f $VENV/.modelrollout-$stamp_hash ]]; then
    log "creating virtualenv $VENV and installing modelrollout[dev] (about a minute cold)"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --upgrade pip
    "$VENV/bin/pip" install --quiet -e ".[dev]"
    rm -f "$VENV"/.modelrollout-*
    touch "$VENV/.modelrollout-$stamp_hash"
else
    log "virtualenv $VENV is up to date"
fi

if [[ -z ${SKIP_CLUSTER_BUILD:-} && -f tools/kube/build.sh ]]; then
    log "building the local Kubernetes control plane (cached by content hash)"
    bash tools/kube/build.sh
    log "fetching the Gateway API and Istio CRDs the route routers' tests install (cached)"
    bash tools/peer-crds/fetch.sh
fi
if [[ -z ${SKIP_CLUSTER_BUILD:-} && -f tools/prometheus/build.sh ]]; then
    log "building Prometheus for the canary provider's tests (cached by content hash)"
    bash tools/prometheus/build.sh
fi
log "done: activate with 'source .venv/bin/activate' or call .venv/bin/modelrollout"
