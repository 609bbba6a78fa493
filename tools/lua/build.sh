#!/usr/bin/env bash
# Build luacheck, the gopher-lua runner of the Argo CD health checks and actions in
# manifests/argocd (see main.go). The binary lands outside the clone, keyed by a hash of
# go.mod, go.sum, the Go sources, this script and `go version`, so a second run skips it:
#   ${MODELROLLOUT_CACHE:-$HOME/.cache/modelrollout}/lua/<hash>/luacheck
# Progress goes to stderr; the last line on stdout is the binary's path.
# Usage: bash tools/lua/build.sh [--print-path]   (--print-path: print the path, build nothing)
set -euo pipefail
cd "$(dirname "$0")"

log() { printf '\033[1m[lua-build]\033[0m %s\n' "$*" >&2; }

source ../go-env.sh
require_go "bash tools/lua/build.sh"

out=$(cache_dir lua go.mod go.sum build.sh ./*.go <(go version))/luacheck

if [[ ${1:-} == --print-path ]]; then
    echo "$out"
    exit 0
fi
if [[ -x $out ]]; then
    log "up to date: $out"
    echo "$out"
    exit 0
fi

mkdir -p "$(dirname "$out")"
tmp=$out.partial.$$
trap 'rm -f "$tmp"' EXIT
start=$SECONDS
CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "-s -w" -o "$tmp" .
mv "$tmp" "$out"
log "built in $((SECONDS - start)) s: $out"
echo "$out"
