#!/usr/bin/env bash
# One command: install tools and peers (bench/serving/setup.sh), then run the benchmark.
# Arguments go to bench.py, e.g. --models lr --seconds 5 --peers kserve
set -euo pipefail
cd "$(dirname "$0")/../.."
bench/serving/setup.sh
exec .venv/bin/python bench/serving/bench.py "$@"
