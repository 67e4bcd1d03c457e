#!/usr/bin/env bash
# Runs every test of the project against real services (MariaDB, Redis, stock rq workers).
# Installs and starts what is missing first (scripts/bootstrap.sh). Exit status: non-zero if
# anything failed. Nothing skips silently: a missing service is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
bash scripts/bootstrap.sh
VENV=$PWD/tests/.venvs/test
export BTU_TEST_STRICT=1   # tests that need a service fail instead of skipping

step() { printf '\n\033[1m== %s ==\033[0m\n' "$*"; }

step "Rust: build and test the workspace (unit, property, integration, real rq workers)"
cargo build --workspace --all-targets --locked
cargo test --workspace --locked --no-fail-fast

step "Python: build the btu_client wheel and install it with btu_hooks into the test venv"
rm -rf target/wheels
"$VENV/bin/maturin" build -q -m py-client/Cargo.toml --out target/wheels
"$VENV/bin/pip" install -q --force-reinstall --no-deps target/wheels/btu_client-*.whl
"$VENV/bin/pip" install -q --no-deps -e frappe-hooks

step "Python: client, hooks and end-to-end tests"
"$VENV/bin/python" -m pytest -q -p no:cacheprovider py-client/tests frappe-hooks/tests tests/e2e
