#!/usr/bin/env bash
# Builds the btu-scheduler .deb with cargo-deb: /usr/bin/btu-daemon and /usr/bin/btu, the
# systemd unit, /etc/btu_scheduler/btu_scheduler.toml (conffile), docs. Prints the path of the
# package on its last line.
#
#   scripts/package.sh           release build (what users install)
#   scripts/package.sh --debug   dev profile, reusing the test build (scripts/test-all.sh)
#
# Metadata: daemon/Cargo.toml [package.metadata.deb]; maintainer scripts: deploy/debian/.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"

profile=release
case "${1:-}" in
  --debug) profile=dev ;;
  "") ;;
  *) echo "usage: $0 [--debug]" >&2; exit 2 ;;
esac

if ! cargo deb --version >/dev/null 2>&1; then
  echo "package.sh: installing cargo-deb (once)" >&2
  cargo install cargo-deb --locked
fi

out=target/debian
mkdir -p "$out"
# The dev profile is for the tests: stripped (its debug info is ~300 MB) and fast compression,
# so packaging takes seconds, not minutes.
extra=()
[ "$profile" = dev ] && extra=(--strip --fast --output "$out/btu-scheduler-debug.deb")
deb=$(cargo deb -p btu-daemon --locked --profile "$profile" "${extra[@]}" | tail -n 1)
echo "$deb"
