#!/usr/bin/env bash
# node-postgres, with pg-cursor and pg-copy-streams (versions pinned in
# clients/node/package-lock.json, installed by `npm ci` into a cache outside
# the checkout), through martgate as a writer, compared with the warehouse:
# types, named prepared statements reused, transactions and savepoints, 10^6
# rows by cursor and at once, COPY both ways, a multi-row INSERT and a
# pipelined series, errors with their fields (simple and extended protocol),
# a statement_timeout cancel.
. "$(dirname "$0")/../lib/harness.sh"
h_init clients_node
need_martgate
command -v node >/dev/null && command -v npm >/dev/null || h_die "node and npm not found (nodejs, npm)"
src=$(cd "$(dirname "$0")/clients/node" && pwd)
# one install per lock file: the cache is keyed by its hash
cache=${MG_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/martgate-test/node-$(sha256sum "$src/package-lock.json" | cut -c1-16)}
if [ ! -f "$cache/node_modules/.installed" ]; then
  mkdir -p "$cache"
  cp "$src/package.json" "$src/package-lock.json" "$cache/"
  if ! out=$(cd "$cache" && timeout 240 npm ci --no-audit --no-fund 2>&1); then
    h_die "npm ci failed (the npm registry must be reachable): $(tail -5 <<<"$out")"
  fi
  touch "$cache/node_modules/.installed"
fi
DB=t_clients_node
pg_createdb $DB
mg_start_writer $DB || h_die "martgate did not start"

# (--no-deprecation: the pipelined series is what pg 8 warns of)
run_node() { NODE_PATH=$cache/node_modules timeout 120 node --no-deprecation "$src/fidelity.js" "$@"; }
t0=$(now_ms)
d=$(run_node 127.0.0.1 "$MG_PG_PORT" $DB "$MG_SVC_USER" "$MG_SVC_PASS" "$MG_CA" fid_node 2>"$T_DIR/direct.err" || true)
t1=$(now_ms)
m=$(run_node 127.0.0.1 "$MG_PORT" $DB writer "$WTOK" "$MG_CA" fid_node 2>"$T_DIR/mg.err" || true)
t2=$(now_ms)
h_log "node: $((t1 - t0)) ms directly, $((t2 - t1)) ms through martgate"
transcript_compare node "$d" "$m"
[ -s "$T_DIR/mg.err" ] && h_log "through martgate: $(tail -3 "$T_DIR/mg.err")"
check_match "10^6 rows through pg-cursor" '^== node million-cursor: 1000000 500000500000$' "$m"
check_match "10^6 rows at once" '^== node million: 1000000 500000500000$' "$m"
check_match "COPY FROM STDIN through pg-copy-streams" '^== node copy-in: 5000$' "$m"
check_match "statement_timeout cancels at once" '^== node cancel: 57014$' "$m"
check_match "a parser error's HINT in the extended protocol" '^== node error-extended-4: ERROR 42601 .*For example' "$m"

if mg_alive; then ok "martgate still running"; else fail "martgate still running" "it exited" "$(mg_log_tail)"; fi
h_sanitizer_check
h_done
