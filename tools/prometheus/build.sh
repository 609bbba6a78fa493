#!/usr/bin/env bash
# Build the Prometheus server from the official Go module pinned in go.mod
# (github.com/prometheus/prometheus v0.316.0 = Prometheus 3.16.0, cmd/prometheus), used by the
# tests of the canary analysis' Prometheus provider.
#
# Built with the `remove_all_sd` tag (only the file and http service discoveries, which is all
# the tests use) and without `builtinassets` (no web UI; the HTTP API is complete without it).
# The binary lands outside the clone, keyed by a hash of go.mod, go.sum, this script and
# `go version`, so a second run skips the build:
#   ${MODELROLLOUT_CACHE:-$HOME/.cache/modelrollout}/prometheus/<hash>/bin
# Progress goes to stderr; the last line on stdout is the bin directory.
# Usage: bash tools/prometheus/build.sh [--print-dir]   (--print-dir: print the dir, build nothing)
set -euo pipefail
cd "$(dirname "$0")"

log() { printf '\033[1m[prometheus-build]\033[0m %s\n' "$*" >&2; }

PROMETHEUS_VERSION=3.16.0
source ../go-env.sh
require_go "bash tools/prometheus/build.sh"

go_version=$(go version)
dir=$(cache_dir prometheus go.mod go.sum build.sh <(go version))
out=$dir/bin

if [[ ${1:-} == --print-dir ]]; then
    echo "$out"
    exit 0
fi

if [[ -x $out/prometheus ]]; then
    log "up to date: $out"
    echo "$out"
    exit 0
fi

# Version stamps shown by `prometheus --version` and /api/v1/status/buildinfo; the build date
# is fixed so that identical inputs give identical binaries.
pkg=github.com/prometheus/common/version
ldflags="-s -w -X $pkg.Version=$PROMETHEUS_VERSION -X $pkg.Branch=HEAD"
ldflags+=" -X $pkg.Revision=v0.316.0 -X $pkg.BuildUser=modelrollout -X $pkg.BuildDate=19700101-00:00:00"

export CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-trimpath -buildvcs=false"
tmp=$dir/bin.partial.$$
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"

start=$SECONDS
log "$go_version; output $out"
log "compiling prometheus (modules fetched as needed into $(go env GOMODCACHE); -p 2)"
go build -p 2 -tags netgo,remove_all_sd -ldflags "$ldflags" -o "$tmp/prometheus" \
    github.com/prometheus/prometheus/cmd/prometheus

[[ -x $tmp/prometheus ]] || { log "ERROR: prometheus was not built"; exit 1; }
rm -rf "$out"
mv "$tmp" "$out"
log "built in $((SECONDS - start)) s: $out"
echo "$out"
