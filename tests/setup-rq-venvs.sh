#!/usr/bin/env bash
# Creates one virtualenv per stock rq release the daemon must feed, under tests/.venvs/:
#   rq-1.15.1  rq 1.15.1 + redis-py 4.5.5   (Frappe v15 pins both exactly)
#   rq-2.6.1   rq 2.6.1  + redis-py 7.1.x   (Frappe develop / v16)
#   rq-3.0.x   newest rq 3.0.* + the redis-py pip resolves
# Each also gets PyMySQL: the e2e tests run the Frappe stand-in (backed by MariaDB) inside workers.
# Idempotent and fast when already done: a venv is rebuilt only if its stamp (the pip
# requirements it was made from) differs or its `rq` command is missing.
# Used by daemon/tests/rq_workers.rs and tests/e2e.
set -euo pipefail
cd "$(dirname "$0")"
VENVS=$PWD/.venvs
PYTHON=${PYTHON:-python3}
mkdir -p "$VENVS"

make_venv() {
  local name=$1; shift
  local dir=$VENVS/$name stamp="$*"
  if [ -x "$dir/bin/rq" ] && [ "$(cat "$dir/.btu-stamp" 2>/dev/null)" = "$stamp" ]; then
    return 0
  fi
  echo "setup-rq-venvs: creating $dir ($stamp)" >&2
  rm -rf "$dir"
  "$PYTHON" -m venv "$dir"
  "$dir/bin/pip" install -q --disable-pip-version-check "$@"
  "$dir/bin/rq" --version >/dev/null   # fails loudly if the install is broken
  printf '%s' "$stamp" > "$dir/.btu-stamp"
}

make_venv rq-1.15.1 'rq==1.15.1' 'redis==4.5.5' 'PyMySQL==1.1.*' &
make_venv rq-2.6.1 'rq==2.6.1' 'redis==7.1.*' 'PyMySQL==1.1.*' &
make_venv rq-3.0.x 'rq==3.0.*' 'PyMySQL==1.1.*' &
status=0
for job in $(jobs -p); do wait "$job" || status=1; done
if [ $status -ne 0 ]; then echo "setup-rq-venvs: a virtualenv failed to build" >&2; exit 1; fi
for d in rq-1.15.1 rq-2.6.1 rq-3.0.x; do
  printf '%s: ' "$d"; "$VENVS/$d/bin/python" -c 'import rq, redis; print("rq", rq.__version__ if hasattr(rq, "__version__") else rq.VERSION, "redis-py", redis.__version__)'
done
