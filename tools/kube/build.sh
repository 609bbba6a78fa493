#!/usr/bin/env bash
# Build the local Kubernetes control plane from the official Go modules pinned in go.mod:
# kube-apiserver, kube-controller-manager, kubectl (k8s.io/kubernetes v1.37.2) and etcd.
#
# The binaries land outside the clone, keyed by a hash of go.mod, go.sum, this script and
# `go version`, so a second run (or CI on the same machine) skips the build:
#   ${MODELROLLOUT_CACHE:-$HOME/.cache/modelrollout}/kube/<hash>/bin
# Progress goes to stderr; the last line on stdout is the bin directory.
# Usage: bash tools/kube/build.sh [--print-dir]   (--print-dir: print the dir, build nothing)
set -euo pipefail
cd "$(dirname "$0")"

log() { printf '\033[1m[kube-build]\033[0m %s\n' "$*" >&2; }

KUBE_VERSION=v1.37.2
source ../go-env.sh
require_go "bash tools/kube/build.sh"

go_version=$(go version)
dir=$(cache_dir kube go.mod go.sum build.sh <(go version))
out=$dir/bin
binaries=(kube-apiserver kube-controller-manager kubectl etcd)

if [[ ${1:-} == --print-dir ]]; then
    echo "$out"
    exit 0
fi

complete=1
for b in "${binaries[@]}"; do [[ -x $out/$b ]] || complete=0; done
if ((complete)); then
    log "up to date: $out"
    echo "$out"
    exit 0
fi

# Version stamps read by /version and `kubectl version` (what Kubernetes' own build sets).
# The build date is fixed so that identical inputs give identical binaries.
minor=${KUBE_VERSION#v1.}
minor=${minor%%.*}
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

export CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-trimpath -buildvcs=false"
tmp=$dir/bin.partial.$$
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"

start=$SECONDS
log "$go_version; output $out"
log "downloading modules (cached in $(go env GOMODCACHE))"
go mod download
log "compiling kube-apiserver, kube-controller-manager, kubectl (-p 2; about 6 min cold on 2 cores)"
go build -p 2 -ldflags "$ldflags" -o "$tmp/" \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kubectl
log "compiling etcd ($((SECONDS - start)) s so far)"
go build -p 2 -ldflags "-s -w" -o "$tmp/etcd" go.etcd.io/etcd/server/v3

for b in "${binaries[@]}"; do [[ -x $tmp/$b ]] || { log "ERROR: $b was not built"; exit 1; }; done
rm -rf "$out"
mv "$tmp" "$out"
log "built in $((SECONDS - start)) s: $out"
echo "$out"
