#!/usr/bin/env bash
# The main job on the embedded default: btu-daemon reads examples/demo-schedules.toml and, at
# each due instant, writes real RQ jobs into Redis; a stock `rq worker` (from PyPI) runs them.
# Watch the runs arrive below. Ctrl-C stops everything (or set DEMO_SECONDS=N to stop after N s).
#
# Needs: Debian with apt (root or sudo), network access to the package registries.
# Installs/starts when missing: Redis, the Rust toolchain, a virtualenv with rq.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
bash scripts/bootstrap.sh --demo
cargo build -q -p btu-daemon --bins

WORK=$(mktemp -d /tmp/btu-demo.XXXXXX)
export BTU_DEMO_LOG=$WORK/runs.log
SOCK=$WORK/btu.sock
touch "$BTU_DEMO_LOG"
# The demo config with its own socket, so it never collides with a real daemon's.
sed "s|^\[daemon\]|[daemon]\nsocket_path = \"$SOCK\"|; s|^path = \"demo-schedules.toml\"|path = \"$ROOT/examples/demo-schedules.toml\"|" \
  examples/demo.toml > "$WORK/demo.toml"

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo; echo "demo stopped; logs kept in $WORK"
}
trap cleanup EXIT INT TERM

target/debug/btu-daemon --config "$WORK/demo.toml" >"$WORK/daemon.log" 2>&1 &
pids+=($!)
(cd examples && exec "$ROOT/tests/.venvs/rq-3.0.x/bin/rq" worker --url redis://127.0.0.1:6379/0 default \
   >"$WORK/worker.log" 2>&1) &
pids+=($!)

for _ in $(seq 50); do [ -S "$SOCK" ] && break; sleep 0.2; done
echo "btu-daemon is running (log: $WORK/daemon.log), rq worker too (log: $WORK/worker.log)."
echo; echo "Next runs, from the daemon:"
target/debug/btu upcoming --socket "$SOCK" --count 6 || true
echo; echo "Runs executed by the rq worker (one line each):"
if [ -n "${DEMO_SECONDS:-}" ]; then
  timeout "$DEMO_SECONDS" tail -n +1 -f "$BTU_DEMO_LOG" || true
else
  tail -n +1 -f "$BTU_DEMO_LOG"
fi
