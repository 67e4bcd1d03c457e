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
failed=()
run() { local name=$1; shift; "$@" || failed+=("$name"); }

step "Rust: build and test the workspace (unit, property, integration, real rq workers)"
cargo build --workspace --all-targets --locked
run "cargo test" cargo test --workspace --locked --no-fail-fast

step "Package: the .deb (dev profile, reusing the build above) that the e2e suite installs"
run "package" bash scripts/package.sh --debug

step "Lint: clippy (warnings are errors), rustfmt, the layout rules (no import loop, no file over 600 lines)"
run "clippy" cargo clippy --workspace --all-targets --locked -- -D warnings
run "rustfmt" cargo fmt --all --check
run "layout" python3 scripts/check-structure.py

step "Python: build the btu_client wheel and install it with btu_hooks into the test venv"
rm -rf target/wheels
"$VENV/bin/maturin" build -q -m py-client/Cargo.toml --out target/wheels
"$VENV/bin/pip" install -q --force-reinstall --no-deps target/wheels/btu_client-*.whl
"$VENV/bin/pip" install -q --no-deps -e frappe-hooks

# Three pytest runs: each suite has its own conftest.py (and helpers named after it).
PYTEST=("$VENV/bin/python" -m pytest -q -p no:cacheprovider)
step "Python: btu_client against golden vectors and fake sockets"
run "py-client tests" "${PYTEST[@]}" py-client/tests
step "Python: btu_hooks (doc_events, override, both runners, e-mails) on the Frappe and BTU-app stand-ins, MariaDB, Redis"
run "frappe-hooks tests" "${PYTEST[@]}" frappe-hooks/tests
step "Python: end to end (daemon, MariaDB, Redis, stock rq 1.15.1 / 2.6.1 / 3.0 workers)"
run "e2e tests" "${PYTEST[@]}" tests/e2e
step "Chaos soak, 2 minutes: two daemons, 1,000 schedules, daemon/Redis/MariaDB restarts, storms, edits (tests/chaos/README.md)"
run "chaos soak" "$VENV/bin/python" tests/chaos/soak.py --minutes 2

if [ ${#failed[@]} -gt 0 ]; then
  printf '\n\033[1;31mFAILED:\033[0m %s\n' "${failed[*]}"
  exit 1
fi
printf '\n\033[1;32mall test suites passed\033[0m\n'
