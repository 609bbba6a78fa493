#!/usr/bin/env bash
# Install the benchmark's tools and peers, each peer in its own venv, all with the
# same scikit-learn as the project's venv (per-call predict cost differs 3.5x across
# scikit-learn versions). Idempotent: a venv whose marker file exists is kept.
#   BENCH_DIR (default ~/.cache/modelrollout-bench) holds the venvs and tools.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
BENCH_DIR=${BENCH_DIR:-$HOME/.cache/modelrollout-bench}
PY=${PYTHON:-python3.11}
mkdir -p "$BENCH_DIR"
SKLEARN=$("$REPO/.venv/bin/python" -c "import sklearn; print(sklearn.__version__)")

if ! command -v wrk >/dev/null; then
    apt-get update -qq && apt-get install -y -qq wrk
fi
if [ ! -x "$BENCH_DIR/bin/ghz" ]; then
    GOBIN="$BENCH_DIR/bin" go install github.com/bojand/ghz/cmd/ghz@v0.93.0
fi

make_venv() {  # name, pip args...
    local name=$1; shift
    local venv="$BENCH_DIR/$name"
    if [ -f "$venv/.ready-$SKLEARN" ]; then return; fi
    echo "==> venv $name (scikit-learn $SKLEARN)" >&2
    rm -rf "$venv"
    "$PY" -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade pip
    "$venv/bin/pip" install -q "scikit-learn==$SKLEARN" "$@"
    touch "$venv/.ready-$SKLEARN"
}

# The serving image's dependency set: our server without the dev/evaluate extras.
make_venv serving -e "$REPO[serving]"
# ...kept in step with the extra as it grows (onnxruntime, skl2onnx, onnx for --runtime auto).
"$BENCH_DIR/serving/bin/pip" install -q -e "$REPO[serving]"
# MLServer starts only with uvloop<0.22 (0.23 crash-loops its worker).
make_venv mlserver "mlserver==1.7.1" "mlserver-sklearn==1.7.1" "uvloop<0.22"
# KServe's model-server framework (its sklearnserver is not on PyPI).
make_venv kserve "kserve==0.21.0" joblib
echo "$BENCH_DIR"
