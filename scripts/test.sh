#!/usr/bin/env bash
# Run the whole test suite: lint (ruff), types (mypy strict), then pytest.
# Extra arguments go to pytest, e.g. scripts/test.sh -m "not cluster" -x
set -uo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-$PWD/.venv}
export PATH="$VENV/bin:$PATH"

step() { printf '\n\033[1m==> %s\033[0m\n' "$*" >&2; }
fail() { printf '\033[1;31mFAILED: %s\033[0m\n' "$*" >&2; exit 1; }

step "ruff check"
ruff check src tests bench || fail "ruff check"
step "ruff format --check"
ruff format --check src tests bench || fail "ruff format (run: ruff format src tests bench)"
step "mypy --strict"
mypy || fail "mypy"
step "pytest"
python -m pytest "$@"
rc=$?
case $rc in
    0) ;;
    5) fail "pytest collected no tests: the suite must run something" ;;
    *) fail "pytest exited $rc" ;;
esac
