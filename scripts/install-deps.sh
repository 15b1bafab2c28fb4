#!/usr/bin/env bash
# Installs what building, testing, benchmarking, packaging (debian/,
# scripts/package.sh, t_package) and the demo need on Debian 12.
# Idempotent: packages already present are left alone; apt-get runs only when
# something is missing. Needs root (or sudo) when it has to install.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config git libtsan2
  libevent-dev libssl-dev libpq-dev libjansson-dev libjwt-dev libcmocka-dev
  libpg-query-dev postgresql-server-dev-15 zlib1g-dev
  postgresql-15 postgresql-client-15 pgbouncer
  libpostgresql-jdbc-java default-jdk-headless
  clang libclang-rt-14-dev jq
  openssl procps util-linux iproute2 python3
  python3-asyncpg python3-psycopg python3-psycopg2
  unixodbc odbc-postgresql python3-pyodbc
  prometheus curl haproxy
  chromium
  debhelper dpkg-dev fakeroot binutils logrotate systemd adduser
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

# Node.js and npm for t_clients_node: the machine's own when it has them
# (a newer one than Debian's may be installed outside dpkg), else Debian's
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# The Debian postgresql package starts a cluster of its own on port 5432; our
# tests never use it, and pgbouncer's packaged service is not wanted either.
# Nor are prometheus' and haproxy's: t_metrics starts its own on free ports.
for svc in pgbouncer prometheus haproxy; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet $svc 2>/dev/null; then
    systemctl stop $svc || true
  fi
done
exit 0
