# Sourced by the tools/*/ scripts that build or fetch from Go modules: finds the Go toolchain
# and names the content-addressed cache directory of what they produce.
# Needs a `log` function in the sourcing script.

# Put Go on PATH (the official tarball's place is tried too) or explain how to get it; $1 is
# the command to re-run.
require_go() {
    if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
        PATH=/usr/local/go/bin:$PATH
    fi
    if ! command -v go >/dev/null 2>&1; then
        log "ERROR: the Go toolchain is not on PATH; install the Go release go.mod names"
        log "       (https://go.dev/dl) or put /usr/local/go/bin on PATH, then re-run: $1"
        exit 1
    fi
}

# ${MODELROLLOUT_CACHE:-~/.cache/modelrollout}/<name>/<hash of the input files' content>.
# Builds pass `<(go version)` among the inputs so that a new toolchain rebuilds.
cache_dir() {
    local name=$1
    shift
    echo "${MODELROLLOUT_CACHE:-$HOME/.cache/modelrollout}/$name/$(cat "$@" | sha256sum | cut -c1-16)"
}
