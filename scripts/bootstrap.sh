#!/usr/bin/env bash
# Installs and starts everything the demo and the tests need, on a fresh Debian 12/13 machine
# or on one that already has parts of it. Idempotent: a second run only checks.
#
#   scripts/bootstrap.sh            system packages, Rust, MariaDB + Redis running, Python venvs
#   scripts/bootstrap.sh --demo     only what the demo needs: Rust, Redis, one venv with stock rq
#
# Needs root (or sudo) for apt and for starting MariaDB/Redis when they are not running.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
DEMO=0; [ "${1:-}" = "--demo" ] && DEMO=1
log() { printf '\033[1m[bootstrap]\033[0m %s\n' "$*"; }

# ---- system packages ---------------------------------------------------------------------------
need_apt=()
command -v redis-server >/dev/null || need_apt+=(redis-server)
if [ $DEMO -eq 0 ]; then
  command -v mariadbd >/dev/null   || need_apt+=(mariadb-server)
  command -v mariadb >/dev/null    || need_apt+=(mariadb-client)
fi
command -v python3 >/dev/null      || need_apt+=(python3)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
command -v cc >/dev/null           || need_apt+=(build-essential)
command -v pkg-config >/dev/null   || need_apt+=(pkg-config)
command -v curl >/dev/null         || need_apt+=(curl ca-certificates)
if [ $DEMO -eq 0 ]; then
  # TLS Redis test (certificates), uid test (users, setpriv/runuser), chaos soak (libfaketime),
  # Sentinel failover test (redis-sentinel)
  command -v openssl >/dev/null    || need_apt+=(openssl)
  command -v redis-sentinel >/dev/null || need_apt+=(redis-sentinel)
  command -v setpriv >/dev/null    || need_apt+=(util-linux)
  command -v runuser >/dev/null    || need_apt+=(util-linux)
  command -v useradd >/dev/null    || need_apt+=(passwd)
  [ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ] || [ -e /usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1 ] \
    || need_apt+=(libfaketime)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing Debian packages: ${need_apt[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${need_apt[@]}"
fi

# ---- Rust (edition 2024 needs cargo >= 1.85; Debian's own cargo is older, so use rustup) -------
if ! command -v cargo >/dev/null && [ -x "$HOME/.cargo/bin/cargo" ]; then export PATH="$HOME/.cargo/bin:$PATH"; fi
if ! command -v cargo >/dev/null; then
  log "installing the Rust toolchain with rustup"
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
  export PATH="$HOME/.cargo/bin:$PATH"
fi
if [ $DEMO -eq 0 ] && command -v rustup >/dev/null; then
  # the lint step of scripts/test-all.sh (a minimal rustup profile has neither)
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
  rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
fi

# ---- Redis -------------------------------------------------------------------------------------
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  log "starting redis-server on 127.0.0.1:6379"
  $SUDO mkdir -p /var/lib/redis /var/log/redis
  $SUDO redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 50); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break; sleep 0.2; done
fi
redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null || { echo "Redis did not start" >&2; exit 1; }

if [ $DEMO -eq 1 ]; then
  bash tests/setup-rq-venvs.sh >/dev/null
  log "ready for the demo: Redis $(redis-cli -h 127.0.0.1 info server | grep -m1 redis_version | tr -d '\r')"
  exit 0
fi

# ---- MariaDB -----------------------------------------------------------------------------------
mysql_tcp() { mariadb --protocol=TCP -h 127.0.0.1 -P 3306 -uroot "$@"; }
if ! mysql_tcp -e 'SELECT 1' >/dev/null 2>&1; then
  if ! $SUDO mariadb -uroot -e 'SELECT 1' >/dev/null 2>&1; then
    log "starting mariadbd"
    $SUDO mkdir -p /run/mysqld && $SUDO chown mysql:mysql /run/mysqld
    [ -d /var/lib/mysql/mysql ] || $SUDO mariadb-install-db --user=mysql >/dev/null
    $SUDO start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql
    for _ in $(seq 100); do $SUDO mariadb -uroot -e 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.3; done
  fi
  # A fresh Debian MariaDB lets root in only through the unix socket; the tests use TCP with an
  # empty password, so grant exactly that (local connections only).
  log "granting root@127.0.0.1 with an empty password (local test database)"
  $SUDO mariadb -uroot <<'SQL'
CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('');
FLUSH PRIVILEGES;
SQL
fi
mysql_tcp -e 'SELECT 1' >/dev/null || { echo "MariaDB is not reachable as root@127.0.0.1" >&2; exit 1; }

# ---- Python virtualenvs ------------------------------------------------------------------------
# tests/.venvs/test  : pytest, PyMySQL, redis-py, maturin + our two Python packages
# tests/.venvs/rq-*  : one stock rq release each (made by tests/setup-rq-venvs.sh)
VENV=tests/.venvs/test
if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import pytest, pymysql, redis, maturin, rq, aiosmtpd, cron_descriptor' 2>/dev/null; then
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -r tests/requirements.txt
fi
if [ -x tests/setup-rq-venvs.sh ]; then bash tests/setup-rq-venvs.sh; fi
log "ready: Redis $(redis-cli -h 127.0.0.1 info server | grep -m1 redis_version | tr -d '\r'), MariaDB $(mysql_tcp -N -e 'SELECT VERSION()')"
