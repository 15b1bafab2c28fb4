#!/usr/bin/env bash
# The README's demo command: installs what is missing, builds, starts a
# throwaway PostgreSQL 15 warehouse and martgate in front of it (development
# certificates, a fresh JWT signing key), and shows what clients see through
# it: a good token, an expired one, a token for someone else, a plaintext
# attempt, a FunctionCall. Everything it started is stopped when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
export MARTGATE_BIN=$PWD/build/martgate

. tests/lib/harness.sh
h_init demo >/dev/null

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; }

pg_createdb demo
pg_admin demo -c "SET ROLE $MG_SVC_USER" \
  -c "CREATE TABLE leads(id int PRIMARY KEY, channel text, region text, created_at date)" \
  -c "INSERT INTO leads SELECT g, (ARRAY['ads','organic','referral'])[1 + g % 3], (ARRAY['north','south','west'])[1 + g % 3], date '2026-11-01' + g % 20 FROM generate_series(1, 3000) g" >/dev/null
mg_start demo
say "martgate listens on 127.0.0.1:$MG_PORT; the warehouse on 127.0.0.1:$MG_PG_PORT (only martgate holds its password)"

TOKEN=$(mg_token --sub alice --groups analysts --ttl 1h)
say "alice logs in with a one-hour JWT (martgate token --sub alice --groups analysts --ttl 1h)"
show "psql \"host=127.0.0.1 port=$MG_PORT dbname=demo user=alice sslmode=verify-full sslrootcert=ca.crt\""
PGPASSWORD=$TOKEN timeout 20 psql -X "host=127.0.0.1 port=$MG_PORT dbname=demo user=alice sslmode=verify-full sslrootcert=$MG_CA" \
  -c "SELECT region, channel, count(*) AS leads FROM leads GROUP BY 1, 2 ORDER BY 1, 2 LIMIT 5" \
  -c "\\conninfo" || true

say "a token that expired a minute ago is refused (SQLSTATE 28P01; the log says why)"
PGPASSWORD=$(mg_token --sub alice --ttl -60) timeout 20 psql -X -v VERBOSITY=verbose \
  "host=127.0.0.1 port=$MG_PORT dbname=demo user=alice sslmode=verify-full sslrootcert=$MG_CA" -c "select 1" 2>&1 | sed 's/^/  /' || true

say "bob presents alice's token: the startup user must match the token's subject"
PGPASSWORD=$TOKEN timeout 20 psql -X "host=127.0.0.1 port=$MG_PORT dbname=demo user=bob sslmode=verify-full sslrootcert=$MG_CA" -c "select 1" 2>&1 | sed 's/^/  /' || true

say "a plaintext connection is refused (SQLSTATE 28000)"
PGPASSWORD=$TOKEN timeout 20 psql -X "host=127.0.0.1 port=$MG_PORT dbname=demo user=alice sslmode=disable" -c "select 1" 2>&1 | sed 's/^/  /' || true

say "errors from the warehouse arrive intact"
PGPASSWORD=$TOKEN timeout 20 psql -X "host=127.0.0.1 port=$MG_PORT dbname=demo user=alice sslmode=verify-full sslrootcert=$MG_CA" \
  -c "SELECT no_such_column FROM leads" 2>&1 | sed 's/^/  /' || true

say "what martgate logged"
sed 's/^/  /' "$MG_LOG" | tail -12
say "done: stopping martgate and the warehouse"
