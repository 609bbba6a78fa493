#!/usr/bin/env bash
# Fetch the third-party CRDs the route routers write to, from the Go modules pinned in go.mod
# (verified against go.sum by `go mod download`): the Gateway API HTTPRoute and GRPCRoute
# (standard channel) and Istio's VirtualService. Never committed: copied out of the module
# cache into a directory keyed by a hash of go.mod, go.sum and this script:
#   ${MODELROLLOUT_CACHE:-$HOME/.cache/modelrollout}/peer-crds/<hash>/*.yaml
# Progress goes to stderr; the last line on stdout is that directory.
# Usage: bash tools/peer-crds/fetch.sh [--print-dir]   (--print-dir: print the dir, fetch nothing)
set -euo pipefail
cd "$(dirname "$0")"

log() { printf '\033[1m[peer-crds]\033[0m %s\n' "$*" >&2; }

source ../go-env.sh
require_go "bash tools/peer-crds/fetch.sh"

out=$(cache_dir peer-crds go.mod go.sum fetch.sh)
files=(httproutes.yaml grpcroutes.yaml virtualservices.yaml)

if [[ ${1:-} == --print-dir ]]; then
    echo "$out"
    exit 0
fi
complete=1
for f in "${files[@]}"; do [[ -s $out/$f ]] || complete=0; done
if ((complete)); then
    log "up to date: $out"
    echo "$out"
    exit 0
fi

# The module directory of one module, as `go mod download -json` reports it.
module_dir() {
    go mod download -json "$1" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p'
}
log "downloading modules (cached in $(go env GOMODCACHE))"
gateway=$(module_dir sigs.k8s.io/gateway-api)
istio=$(module_dir istio.io/api)
[[ -d $gateway && -d $istio ]] || { log "ERROR: module directories not found"; exit 1; }

tmp=$out.partial.$$
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"
for kind in httproutes grpcroutes; do
    cp "$gateway/config/crd/standard/gateway.networking.k8s.io_$kind.yaml" "$tmp/$kind.yaml"
    chmod 644 "$tmp/$kind.yaml"  # the module cache is read-only
done
# Istio ships every CRD in one multi-document file: keep the VirtualService document only.
awk -v RS='\n---\n' -v ORS='\n' '/\n  name: virtualservices\.networking\.istio\.io\n/' \
    "$istio/kubernetes/customresourcedefinitions.gen.yaml" >"$tmp/virtualservices.yaml"
for f in "${files[@]}"; do
    grep -q '^kind: CustomResourceDefinition' "$tmp/$f" || { log "ERROR: no CRD in $f"; exit 1; }
done
rm -rf "$out"
mv "$tmp" "$out"
log "CRDs of $(basename "$gateway") and $(basename "$istio"): $out"
echo "$out"
