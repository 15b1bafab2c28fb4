# tests/lib/harness.sh: shared by every integration test and by the benchmark.
#
# Starts a real PostgreSQL 15 (or reuses the one tests/integration/run.sh
# started for the whole run), starts and stops martgate with a generated
# config, mints tokens, and counts results. Usage in a test:
#
#   . "$(dirname "$0")/../lib/harness.sh"
#   h_init basic                  # temp dir, traps, PostgreSQL, certificates
#   pg_createdb t_basic           # a database owned by the service role
#   mg_start t_basic              # martgate serving database "t_basic"
#   check_eq "one" 1 "$(tgt_psql t_basic -Atc 'select 1')"
#   h_done                        # summary line; exit 1 if anything failed
#
# Output: one line per check, "ok - T: NAME", "not ok - T: NAME: WHY" (with
# "#" detail lines) or "skip - T: NAME: WHY"; run.sh counts them.
#
# MG_TARGET=direct points tgt_* at the warehouse itself (no martgate): the same
# tests then show what the real server answers. Every client call is bounded by
# `timeout`; the EXIT trap stops everything this process started.

[ -n "${_MG_HARNESS_LOADED:-}" ] && return 0
_MG_HARNESS_LOADED=1
set -euo pipefail

H_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
H_REPO=$(cd "$H_LIB/../.." && pwd)
: "${MARTGATE_BIN:=$H_REPO/build/martgate}"
case $MARTGATE_BIN in /*) ;; *) MARTGATE_BIN=$PWD/$MARTGATE_BIN ;; esac
export MARTGATE_BIN
: "${MG_TARGET:=martgate}"            # martgate | direct
export MG_TARGET
: "${PGBIN:=/usr/lib/postgresql/15/bin}"
: "${H_TIMEOUT:=30}"                   # seconds for one client call
: "${MG_TEST_OS_USER:=martgate-test}"  # runs PostgreSQL/PgBouncer when we are root
MG_ISS=https://idp.test
MG_AUD=martgate
MG_USER=alice                          # the client-side user of most tests
export MG_ISS MG_AUD MG_USER

H_PASS=0; H_FAIL=0; H_SKIP=0
T_NAME=${T_NAME:-harness}
T_DIR=""
H_PG_OWNED=0
H_BG_PIDS=()
H_MG_PIDS=()
H_PGB_PIDS=()
MG_PID=""
MG_PORT=""

# ---------------------------------------------------------------- reporting --
ok()   { H_PASS=$((H_PASS + 1)); echo "ok - $T_NAME: $1"; }
skip() { H_SKIP=$((H_SKIP + 1)); echo "skip - $T_NAME: $1: ${2:-}"; }
fail() { # NAME WHY [DETAIL...]
  H_FAIL=$((H_FAIL + 1))
  echo "not ok - $T_NAME: $1: ${2:-}"
  shift 2 || true
  local d
  for d in "$@"; do printf '%s\n' "$d" | head -n 40 | sed 's/^/#   /'; done
}
# check NAME CMD...: passes when CMD exits 0 (use for commands whose exit
# status really is the answer; compare output with check_eq/check_match).
check() {
  local name=$1; shift
  local out rc=0
  out=$("$@" 2>&1) || rc=$?
  if [ $rc -eq 0 ]; then ok "$name"; else fail "$name" "exit $rc: $*" "$out"; fi
}
check_eq() { # NAME EXPECTED ACTUAL
  if [ "$2" == "$3" ]; then ok "$1"; else fail "$1" "expected [$(head -c 300 <<<"$2")] got [$(head -c 300 <<<"$3")]"; fi
}
check_match() { # NAME ERE TEXT
  if grep -Eq -- "$2" <<<"$3"; then ok "$1"; else fail "$1" "no match for /$2/" "$3"; fi
}
check_nomatch() { # NAME ERE TEXT
  if grep -Eq -- "$2" <<<"$3"; then fail "$1" "unexpected match for /$2/" "$3"; else ok "$1"; fi
}
# expect_sqlstate NAME SQLSTATE CMD...: CMD's output (stdout+stderr) must carry
# the SQLSTATE (psql with VERBOSITY verbose, pgwire's "ERROR code msg", Java).
expect_sqlstate() {
  local name=$1 state=$2; shift 2
  local out rc=0
  out=$("$@" 2>&1) || rc=$?
  if grep -Eq "(^|[^0-9A-Z])$state([^0-9A-Z]|\$)" <<<"$out"; then ok "$name"
  else fail "$name" "expected SQLSTATE $state (exit $rc)" "$out"; fi
}
# h_sanitizer_check: stop every martgate this test started, then fail if any
# of their logs holds an AddressSanitizer, LeakSanitizer or UBSan report (the
# test command runs the suite against the sanitizer build).
h_sanitizer_check() {
  local pid log
  for pid in "${H_MG_PIDS[@]}"; do pid_alive "$pid" && stop_pid "$pid" 15 >/dev/null 2>&1; done
  [ -n "$T_DIR" ] && [ -d "$T_DIR" ] || return 0
  while IFS= read -r log; do
    if grep -Eq 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$log"; then
      fail "sanitizers" "report in $log" "$(grep -E -A12 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$log" | head -30)"
    fi
  done < <(find "$T_DIR" -name '*.log' -type f 2>/dev/null)
}
h_done() {
  h_sanitizer_check
  echo "# $T_NAME: $H_PASS passed, $H_FAIL failed, $H_SKIP skipped"
  [ "$H_FAIL" -eq 0 ]
  exit $?
}
h_log() { echo "# $T_NAME: $*"; }
# A command failed outside any check (set -e is about to end the test): say so.
h_abort() { fail "aborted" "line $1: $2 failed"; echo "# $T_NAME: $H_PASS passed, $H_FAIL failed, $H_SKIP skipped (aborted)"; }
h_die() { fail "${T_NAME}-setup" "$*"; h_done; }

# transcript_compare PREFIX DIRECT MARTGATE: client programs print "== PREFIX
# SCENARIO: TEXT" lines (tests/integration/clients/); one check per scenario
# of the direct run, which must print the same through martgate, and one that
# the direct run finished ("== PREFIX done: ok").
transcript_compare() {
  local prefix=$1 d=$2 m=$3 sc dl ml
  grep -q "^== $prefix done: ok" <<<"$d" || fail "$prefix ran directly" "it did not finish" "$(tail -3 <<<"$d")"
  for sc in $(sed -n "s/^== $prefix \([A-Za-z0-9_-]*\): .*/\1/p" <<<"$d"); do
    dl=$(grep -m1 -- "^== $prefix $sc: " <<<"$d")
    ml=$(grep -m1 -- "^== $prefix $sc: " <<<"$m" || true)
    if [ "$dl" = "$ml" ]; then ok "$prefix $sc as directly"
    else fail "$prefix $sc as directly" "they differ" "direct:   ${dl:0:400}" \
      "martgate: ${ml:-nothing ($(grep "^== $prefix died" <<<"$m" || echo 'no line'))}"; fi
  done
}

# ----------------------------------------------------------------- helpers --
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
port_open() { # PORT [HOST]
  timeout 2 bash -c "exec 3<>/dev/tcp/${2:-127.0.0.1}/$1" 2>/dev/null
}
wait_until() { # SECONDS CMD...: poll CMD every 0.1 s until it succeeds
  local limit=$1; shift
  local end=$(( $(now_ms) + limit * 1000 ))
  while [ "$(now_ms)" -lt "$end" ]; do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}
pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
pid_gone() { ! kill -0 "$1" 2>/dev/null; }
# stop_pid PID SECONDS: TERM, wait, then KILL. Returns the exit status when the
# pid is our child, 0 otherwise.
stop_pid() {
  local pid=$1 secs=${2:-10} rc=0
  pid_alive "$pid" || { wait "$pid" 2>/dev/null || rc=$?; return $rc; }
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_until "$secs" pid_gone "$pid"; then
    echo "# harness: pid $pid ignored SIGTERM for ${secs}s, killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.2
  fi
  wait "$pid" 2>/dev/null || rc=$?
  return $rc
}
h_bg() { "$@" & H_BG_PIDS+=($!); }          # background job stopped at exit
as_pg() { # run a command as the unprivileged PostgreSQL owner when we are root
  if [ "$(id -u)" -eq 0 ]; then (cd / && runuser -u "$MG_TEST_OS_USER" -- "$@")
  else "$@"; fi
}
ensure_test_user() {
  [ "$(id -u)" -eq 0 ] || return 0
  getent passwd "$MG_TEST_OS_USER" >/dev/null && return 0
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
    "$MG_TEST_OS_USER" 2>/dev/null || true
  getent passwd "$MG_TEST_OS_USER" >/dev/null || { echo "harness: cannot create user $MG_TEST_OS_USER" >&2; return 1; }
}
pgwire() { PYTHONDONTWRITEBYTECODE=1 PYTHONPATH=$H_PY timeout "$H_TIMEOUT" python3 "$H_PY/pgwire.py" "$@"; }
# pyt [ARGS]: run the Python script on stdin with pgwire importable.
pyt() { PYTHONPATH=$H_PY timeout "${PYT_TIMEOUT:-120}" python3 - "$@"; }
# pyf FILE [ARGS]: the same for a script in a file.
pyf() { PYTHONPATH=$H_PY timeout "${PYT_TIMEOUT:-120}" python3 "$@"; }

# h_report OUTPUT: turn "PASS name" / "FAIL name | why" lines (from inline
# Python checks) into ok/fail; other lines are shown as comments. A script that
# died without reporting shows up as a failure through h_report_rc.
h_report() {
  local line
  while IFS= read -r line; do
    case $line in
      "PASS "*) ok "${line#PASS }" ;;
      "FAIL "*) line=${line#FAIL }; fail "${line%% | *}" "${line#* | }" ;;
      "SKIP "*) line=${line#SKIP }; skip "${line%% | *}" "${line#* | }" ;;
      *) [ -n "$line" ] && echo "#   $line" ;;
    esac
  done <<<"$1"
}
h_report_rc() { # NAME RC OUTPUT
  h_report "$3"
  [ "$2" -eq 0 ] || fail "$1" "the check script exited $2" "$(tail -15 <<<"$3")"
}

# -------------------------------------------------------------------- init --
h_init() { # NAME
  T_NAME=$1
  for tool in psql python3 openssl timeout runuser; do
    command -v "$tool" >/dev/null || { echo "harness: $tool not found (run scripts/install-deps.sh)" >&2; exit 1; }
  done
  [ -x "$PGBIN/initdb" ] || { echo "harness: $PGBIN/initdb not found (postgresql-15)" >&2; exit 1; }
  T_DIR=$(mktemp -d "${MG_RUN_DIR:-/tmp}/mgt-$T_NAME.XXXXXX")
  chmod 0711 "$T_DIR"
  trap h_cleanup EXIT
  trap 'h_abort $LINENO "$BASH_COMMAND"' ERR
  trap 'exit 130' INT
  trap 'exit 143' TERM
  H_PY=$H_LIB   # pgwire.py: the wire client the tests import or run
  if [ -n "${MG_CERTS:-}" ] && [ -f "$MG_CERTS/ca.crt" ]; then :
  else
    MG_CERTS=$T_DIR/certs
    "$H_REPO/certs/make-dev-certs.sh" "$MG_CERTS" >/dev/null
  fi
  MG_CA=$MG_CERTS/ca.crt
  export MG_CERTS MG_CA
  if [ -z "${MG_PG_PORT:-}" ]; then pg_start; fi
  MG_SVC_PASS=$(cat "$MG_SVC_PASS_FILE")
  export MG_SVC_PASS
}

h_cleanup() {
  local rc=$? pid
  set +e
  for pid in "${H_PGB_PIDS[@]}"; do pid_alive "$pid" && stop_pid "$pid" 10; done
  for pid in "${H_BG_PIDS[@]}"; do pid_alive "$pid" && kill -TERM "$pid" 2>/dev/null; done
  for pid in "${H_BG_PIDS[@]}"; do
    pid_alive "$pid" && { sleep 0.3; pid_alive "$pid" && kill -KILL "$pid" 2>/dev/null; }
    wait "$pid" 2>/dev/null
  done
  for pid in "${H_MG_PIDS[@]}"; do pid_alive "$pid" && stop_pid "$pid" 15; done
  [ -n "${H_STANDBY:-}" ] && [ -d "$H_STANDBY" ] &&
    as_pg "$PGBIN/pg_ctl" -D "$H_STANDBY" -m immediate -w -t 10 stop >/dev/null 2>&1
  [ "$H_PG_OWNED" -eq 1 ] && pg_stop
  if [ -n "$T_DIR" ] && [ -d "$T_DIR" ]; then
    if [ -n "${MG_KEEP_TMP:-}" ]; then echo "# harness: kept $T_DIR" >&2; else rm -rf "$T_DIR"; fi
  fi
  return $rc
}

# -------------------------------------------------------------- PostgreSQL --
pg_start() {
  ensure_test_user
  MG_PG_BASE=$(mktemp -d /tmp/mgt-pg.XXXXXX)
  chmod 0711 "$MG_PG_BASE"
  H_PG_OWNED=1
  MG_PG_SOCK=$MG_PG_BASE/sock
  MG_PG_DATA=$MG_PG_BASE/data
  mkdir -p "$MG_PG_SOCK"
  [ "$(id -u)" -eq 0 ] && chown "$MG_TEST_OS_USER:" "$MG_PG_SOCK" "$MG_PG_BASE"
  if ! as_pg "$PGBIN/initdb" -D "$MG_PG_DATA" -U pgadmin -A trust -E UTF8 --locale=C.UTF-8 \
         --no-sync >"$MG_PG_BASE/initdb.log" 2>&1; then
    cat "$MG_PG_BASE/initdb.log" >&2; echo "harness: initdb failed" >&2; return 1
  fi
  local own=()
  [ "$(id -u)" -eq 0 ] && own=(-o "$MG_TEST_OS_USER" -g "$(id -gn "$MG_TEST_OS_USER")")
  install "${own[@]}" -m 0600 "$MG_CERTS/server.key" "$MG_PG_DATA/server.key"
  install "${own[@]}" -m 0644 "$MG_CERTS/server.crt" "$MG_PG_DATA/server.crt"
  cat <<EOF | as_pg tee "$MG_PG_DATA/pg_hba.conf" >/dev/null
local all all trust
host  all all 127.0.0.1/32 scram-sha-256
host  all all ::1/128      scram-sha-256
EOF
  local try
  for try in 1 2 3; do
    MG_PG_PORT=$(free_port)
    cat <<EOF | as_pg tee "$MG_PG_DATA/martgate-test.conf" >/dev/null
listen_addresses = '127.0.0.1'
port = $MG_PG_PORT
unix_socket_directories = '$MG_PG_SOCK'
max_connections = ${MG_PG_MAX_CONNECTIONS:-100}
shared_buffers = 64MB
ssl = on
fsync = off
synchronous_commit = off
full_page_writes = off
log_line_prefix = '%m [%p] %q%u@%d '
log_min_messages = warning
EOF
    grep -q "^include 'martgate-test.conf'" "$MG_PG_DATA/postgresql.conf" ||
      echo "include 'martgate-test.conf'" | as_pg tee -a "$MG_PG_DATA/postgresql.conf" >/dev/null
    if as_pg "$PGBIN/pg_ctl" -D "$MG_PG_DATA" -l "$MG_PG_BASE/postgresql.log" -w -t 30 start >/dev/null 2>&1; then
      break
    fi
    [ $try -eq 3 ] && { tail -20 "$MG_PG_BASE/postgresql.log" >&2; echo "harness: PostgreSQL did not start" >&2; return 1; }
  done
  MG_SVC_USER=martgate_svc
  MG_SVC_PASS_FILE=$MG_PG_BASE/svc.pass
  (umask 077; openssl rand -hex 24 | tr -d '\n' >"$MG_SVC_PASS_FILE")
  pg_admin postgres -c "CREATE ROLE $MG_SVC_USER LOGIN CREATEDB PASSWORD '$(cat "$MG_SVC_PASS_FILE")'" >/dev/null
  export MG_PG_BASE MG_PG_SOCK MG_PG_DATA MG_PG_PORT MG_SVC_USER MG_SVC_PASS_FILE
}

pg_stop() {
  [ -n "${MG_PG_DATA:-}" ] && [ -d "$MG_PG_DATA" ] || return 0
  if ! as_pg "$PGBIN/pg_ctl" -D "$MG_PG_DATA" -m fast -w -t 15 stop >/dev/null 2>&1; then
    as_pg "$PGBIN/pg_ctl" -D "$MG_PG_DATA" -m immediate -w -t 10 stop >/dev/null 2>&1 || {
      local pm; pm=$(head -1 "$MG_PG_DATA/postmaster.pid" 2>/dev/null || true)
      [ -n "$pm" ] && kill -KILL "$pm" 2>/dev/null
    }
  fi
  H_PG_OWNED=0
  [ -n "${MG_KEEP_TMP:-}" ] || rm -rf "$MG_PG_BASE"
}

# pg_admin DB [psql args]: superuser over the unix socket.
pg_admin() {
  local db=$1; shift
  PGOPTIONS='-c client_min_messages=warning' \
    timeout "$H_TIMEOUT" psql -X -q -At -v ON_ERROR_STOP=1 -h "$MG_PG_SOCK" -p "$MG_PG_PORT" -U pgadmin -d "$db" "$@"
}
# wh_sessions DB [SQL-LIKE]: client sessions on the warehouse in DB (only the
# active ones running a query LIKE the pattern, when given).
wh_sessions() {
  local f="backend_type = 'client backend'"
  [ -n "${2:-}" ] && f="state = 'active' and query like '$2'"
  pg_admin postgres -c "select count(*) from pg_stat_activity where datname = '$1' and $f"
}
wh_sessions_are() { [ "$(wh_sessions "$2" "${3:-}")" = "$1" ]; }   # N DB [LIKE]
# pg_createdb NAME: a fresh database owned by the service role.
pg_createdb() {
  pg_admin postgres -c "DROP DATABASE IF EXISTS \"$1\" WITH (FORCE)" -c "CREATE DATABASE \"$1\" OWNER $MG_SVC_USER" >/dev/null
}
# direct_psql DB [psql args]: the warehouse itself, as the service role, over
# TCP and TLS verified against the dev CA: what martgate's clients should see.
direct_conninfo() { echo "host=127.0.0.1 port=$MG_PG_PORT dbname=$1 user=$MG_SVC_USER sslmode=verify-full sslrootcert=$MG_CA connect_timeout=5"; }
direct_psql() {
  local db=$1; shift
  PGPASSWORD=$MG_SVC_PASS timeout "$H_TIMEOUT" psql -X "$(direct_conninfo "$db")" "$@"
}

# ---------------------------------------------------------------- martgate --
have_martgate() { [ -x "$MARTGATE_BIN" ]; }
# need_martgate: for tests that only make sense against martgate.
need_martgate() {
  if [ "$MG_TARGET" != martgate ]; then skip "all" "MG_TARGET=$MG_TARGET: this test is about martgate itself"; h_done; fi
  if ! have_martgate; then fail "martgate-binary" "$MARTGATE_BIN not found or not executable (build it first)"; h_done; fi
}

# Keys and secrets for one test's martgate, made once per test.
mg_setup_keys() {
  MG_DIR=$T_DIR/mg
  [ -f "$MG_DIR/jwt.secret" ] && return 0
  mkdir -p "$MG_DIR"
  (
    umask 077
    openssl rand -hex 24 | tr -d '\n' >"$MG_DIR/jwt.secret"            # 48 bytes
    openssl rand -hex 24 | tr -d '\n' >"$MG_DIR/jwt-other.secret"      # not configured
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$MG_DIR/jwt-rs.key" 2>/dev/null
    openssl pkey -in "$MG_DIR/jwt-rs.key" -pubout -out "$MG_DIR/jwt-rs.pub.pem"
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$MG_DIR/jwt-rs-other.key" 2>/dev/null
    cp "$MG_SVC_PASS_FILE" "$MG_DIR/svc.pass"
    openssl rand -hex 32 >"$MG_DIR/hash-mask.key"                     # the hash mask's key (64 bytes + newline)
  )
  MG_HS_SECRET=$MG_DIR/jwt.secret
  MG_RS_KEY=$MG_DIR/jwt-rs.key
  MG_HASH_KEY=$MG_DIR/hash-mask.key
  export MG_DIR MG_HS_SECRET MG_RS_KEY MG_HASH_KEY
}

# mg_hmac_field KEYFILE N: stdin lines of '|'-separated fields with field N
# replaced by HMAC-SHA256 (hex) of it under the key of KEYFILE (one trailing
# newline stripped, as martgate reads it); an empty field (NULL) stays empty.
# Computed by Python's hmac, independently of martgate's SQL.
mg_hmac_field() {
  /usr/bin/python3 -c '
import hmac, hashlib, sys
key = open(sys.argv[1], "rb").read()
if key.endswith(b"\n"): key = key[:-1]
if key.endswith(b"\r"): key = key[:-1]
n = int(sys.argv[2]) - 1
for line in sys.stdin.read().splitlines():
    f = line.split("|")
    if f[n] != "":
        f[n] = hmac.new(key, f[n].encode(), hashlib.sha256).hexdigest()
    print("|".join(f))
' "$1" "$2"
}

# mg_write_config FILE DB...: config from the MG_CFG_* knobs (MG_CFG_EXTRA:
# more top-level members, e.g. '"policy": "/path", "deny_hint": "ask"';
# MG_WORKERS: the "workers" member, else martgate's default of one per core). Database names
# are the warehouse's (identity mapping), so direct and proxied runs match.
# Every config gives the hash mask's key (mg_setup_keys' hash-mask.key).
mg_write_config() {
  local file=$1; shift
  local workers_member=""
  [ -n "${MG_WORKERS:-}" ] && workers_member="\"workers\": $MG_WORKERS,"
  local dbs="" db sep=""
  for db in "$@"; do
    dbs+="$sep    \"$db\": {\"conninfo\": \"host=127.0.0.1 port=$MG_PG_PORT dbname=$db user=$MG_SVC_USER sslmode=${MG_CFG_WAREHOUSE_SSLMODE:-require}\", \"password_file\": \"svc.pass\"}"
    sep=$',\n'
  done
  [ -n "${MG_CFG_DATABASES:-}" ] && dbs=$MG_CFG_DATABASES   # whole database entries, for multi-host tests
  local keys=${MG_CFG_KEYS:-'{"hmac_secret_file": "jwt.secret", "algorithms": ["HS256"]},
             {"kid": "rs1", "public_key_file": "jwt-rs.pub.pem", "algorithms": ["RS256"]}'}
  cat >"$file" <<EOF
{
  ${MG_CFG_EXTRA:+$MG_CFG_EXTRA,}
  $workers_member
  "hash_mask_key_file": "hash-mask.key",
  "listen": ["127.0.0.1:$MG_PORT"],
  "tls": {"cert_file": "${MG_CFG_CERT:-$MG_CERTS/server.crt}", "key_file": "${MG_CFG_KEY:-$MG_CERTS/server.key}",
          "allow_plaintext": ${MG_CFG_ALLOW_PLAINTEXT:-false}},
  "auth": {
    "keys": [$keys],
    "issuer": "$MG_ISS", "audience": "$MG_AUD", "leeway_seconds": ${MG_CFG_LEEWAY:-5},
    "user_claim": "sub", "groups_claim": "groups"
  },
  "databases": {
$dbs
  },
  "limits": {"max_message_bytes": ${MG_CFG_MAX_MESSAGE:-1048576}, "max_clients": ${MG_CFG_MAX_CLIENTS:-1000},
             "max_pending_logins": ${MG_CFG_MAX_PENDING:-200}, "max_pending_per_address": ${MG_CFG_MAX_PENDING_ADDR:-64},
             "login_timeout_seconds": ${MG_CFG_LOGIN_TIMEOUT:-10}, "shutdown_timeout_seconds": ${MG_CFG_SHUTDOWN_TIMEOUT:-10}}
}
EOF
}

# mg_start DB...: martgate serving those databases (direct mode: nothing to
# start, the target is the warehouse). Sets MG_PORT, MG_PID, MG_CONFIG, MG_LOG.
mg_start() {
  if [ "$MG_TARGET" = direct ]; then MG_PORT=$MG_PG_PORT; export MG_PORT; return 0; fi
  have_martgate || { echo "harness: $MARTGATE_BIN not found" >&2; return 1; }
  mg_setup_keys
  MG_PORT=$(free_port)
  MG_CONFIG=$MG_DIR/martgate.json
  MG_LOG=$MG_DIR/martgate.log
  mg_write_config "$MG_CONFIG" "$@"
  "$MARTGATE_BIN" serve --config "$MG_CONFIG" 2>>"$MG_LOG" &
  MG_PID=$!
  H_MG_PIDS+=("$MG_PID")
  export MG_PORT MG_PID MG_CONFIG MG_LOG
  if ! wait_until 10 mg_ready; then
    echo "harness: martgate did not start listening on $MG_PORT; its log:" >&2
    tail -20 "$MG_LOG" >&2 || true
    return 1
  fi
  MG_TOKEN=$(mg_token --sub "$MG_USER" --groups analysts --ttl 1h) || { echo "harness: martgate token failed" >&2; return 1; }
  export MG_TOKEN
}
# mg_start_writer DB...: martgate with a policy that lets group "writers"
# write every schema (the fidelity tests' principal: it should not be able to
# tell martgate from the warehouse); WTOK is the token of user "writer".
mg_start_writer() {
  cat >"$T_DIR/writer-policy.json" <<'JSON'
{"datasets": {"everything": {"schemas": ["*"]}},
 "rules": [{"id": "writer", "subjects": {"groups": ["writers"]},
            "objects": {"datasets": ["everything"]}, "access": "write"}]}
JSON
  MG_CFG_EXTRA="\"policy\": \"$T_DIR/writer-policy.json\"" mg_start "$@" || return 1
  WTOK=$(mg_token --sub writer --groups writers --ttl 1h) || return 1
  export WTOK
}
mg_ready() { pid_alive "$MG_PID" && port_open "$MG_PORT"; }
mg_alive() { pid_alive "$MG_PID"; }
mg_reload() { kill -HUP "$MG_PID"; }
# mg_reload_wait [SECONDS]: SIGHUP, and wait until martgate has logged the
# reload (returns non-zero, and the caller's checks then tell, if it did not)
mg_reload_wait() {
  local n
  n=$(grep -c 'configuration reloaded' "$MG_LOG" || true)
  mg_reload
  wait_until "${1:-10}" mg_reloaded_since "$n"
}
mg_reloaded_since() { [ "$(grep -c 'configuration reloaded' "$MG_LOG" || true)" -gt "$1" ]; }
# mg_stop [SECONDS]: SIGTERM and wait; sets MG_EXIT to martgate's exit status.
mg_stop() {
  MG_EXIT=0
  [ -n "$MG_PID" ] || return 0
  stop_pid "$MG_PID" "${1:-20}" || MG_EXIT=$?
  MG_PID=""
}
mg_log_tail() { tail -n "${1:-20}" "$MG_LOG" 2>/dev/null || true; }
# mg_token ARGS...: `martgate token` with the test's HMAC key, issuer, audience.
mg_token() {
  timeout 10 "$MARTGATE_BIN" token --key "$MG_HS_SECRET" --alg HS256 --iss "$MG_ISS" --aud "$MG_AUD" "$@"
}
# py_jwt ARGS...: hand-made tokens (pgwire.py jwt), for what `martgate token`
# will not mint: alg none, foreign keys, odd headers.
py_jwt() { pgwire jwt "$@"; }

# ---------------------------------------------------------------- targets --
# The tgt_* helpers talk to martgate (or, with MG_TARGET=direct, the warehouse)
# as a client would: TLS verified against the dev CA, token as the password.
tgt_user() { if [ "$MG_TARGET" = direct ]; then echo "$MG_SVC_USER"; else echo "$MG_USER"; fi; }
tgt_password() { if [ "$MG_TARGET" = direct ]; then echo "$MG_SVC_PASS"; else echo "$MG_TOKEN"; fi; }
tgt_conninfo() { # DB [extra conninfo]
  echo "host=127.0.0.1 port=$MG_PORT dbname=$1 user=$(tgt_user) sslmode=verify-full sslrootcert=$MG_CA connect_timeout=5 ${2:-}"
}
# tgt_psql DB [psql args]
tgt_psql() {
  local db=$1; shift
  PGPASSWORD=$(tgt_password) timeout "$H_TIMEOUT" psql -X "$(tgt_conninfo "$db")" "$@"
}
tgt_env() { # exports PG* for tools that take no conninfo (pgbench, pg_dump)
  export PGHOST=127.0.0.1 PGPORT=$MG_PORT PGUSER=$(tgt_user) PGPASSWORD=$(tgt_password) \
         PGSSLMODE=verify-full PGSSLROOTCERT=$MG_CA PGCONNECT_TIMEOUT=5
}
direct_env() {
  export PGHOST=127.0.0.1 PGPORT=$MG_PG_PORT PGUSER=$MG_SVC_USER PGPASSWORD=$MG_SVC_PASS \
         PGSSLMODE=verify-full PGSSLROOTCERT=$MG_CA PGCONNECT_TIMEOUT=5
}
# pgwire_login PORT USER PASSWORD DB [pgwire login args]: a raw TLS login.
pgwire_login() {
  local port=$1 user=$2 pw=$3 db=$4; shift 4
  H_PW=$pw pgwire login --port "$port" --tls "$MG_CA" --user "$user" --db "$db" --password-env H_PW "$@"
}
# tgt_pgwire_login DB [pgwire login args]: a raw login to the target.
tgt_pgwire_login() {
  local db=$1; shift
  H_PW=$(tgt_password) pgwire login --port "$MG_PORT" --tls "$MG_CA" --user "$(tgt_user)" \
    --db "$db" --password-env H_PW "$@"
}

# A held session: a psql process reading from a FIFO, to prove that sessions
# opened earlier survive what a test does meanwhile.
#   held_open DB; held_query "select 1;"; ...; out=$(held_close)
held_open() {
  HELD_FIFO=$T_DIR/held.fifo; HELD_OUT=$T_DIR/held.out
  rm -f "$HELD_FIFO"; mkfifo "$HELD_FIFO"
  PGPASSWORD=$(tgt_password) timeout 300 psql -X -qAt "$(tgt_conninfo "$1")" <"$HELD_FIFO" >"$HELD_OUT" 2>&1 &
  HELD_PID=$!
  H_BG_PIDS+=("$HELD_PID")
  exec {HELD_FD}>"$HELD_FIFO"
}
held_query() { (printf '%s\n' "$1" >&"$HELD_FD") 2>/dev/null || true; }
held_close() { # prints everything the held session printed
  held_query '\q'        # not only EOF: later children may hold the FIFO open too
  exec {HELD_FD}>&-
  wait_until 10 pid_gone "$HELD_PID" || kill -TERM "$HELD_PID" 2>/dev/null || true
  wait "$HELD_PID" 2>/dev/null || true
  cat "$HELD_OUT"
}

# --------------------------------------------------------------- PgBouncer --
# haproxy_start CFG PORT: a real HAProxy on CFG (first checked by haproxy -c)
# as a background job of the test, once PORT accepts; its log is CFG with
# .log for .cfg. Non-zero, with why on stdout, when it does not start.
haproxy_start() {
  local cfg=$1 port=$2 log=${1%.cfg}.log
  command -v haproxy >/dev/null || { echo "haproxy is missing (scripts/install-deps.sh installs it)"; return 1; }
  haproxy -c -f "$cfg" >"$log" 2>&1 || { echo "haproxy -c refuses $cfg: $(tail -5 "$log")"; return 1; }
  h_bg haproxy -db -f "$cfg" >"$log" 2>&1
  wait_until 10 port_open "$port" || { echo "haproxy did not start: $(tail -5 "$log")"; return 1; }
}
# haproxy_status SOCKET BACKEND SERVER: that server's status in HAProxy's
# stats (UP, DOWN, MAINT, ...), from the stats socket; empty when it does not answer.
haproxy_status() {
  /usr/bin/python3 - "$@" <<'PY' 2>/dev/null || true
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"show stat\n")
data = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    data += b
rows = [l.split(",") for l in data.decode().splitlines() if l]
cols = rows[0]
cols[0] = cols[0].lstrip("# ")
for r in rows[1:]:
    if r[0] == sys.argv[2] and r[1] == sys.argv[3]:
        print(r[cols.index("status")])
PY
}

# pg_standby_start: a streaming standby of the test's own primary (the test
# unsets MG_PG_PORT before sourcing the harness, so that the primary is its
# own), made by pg_basebackup -R; sets STANDBY (its data directory) and
# STANDBY_PORT. h_cleanup stops it. Non-zero, with why on stdout, on failure.
pg_standby_start() {
  [ "$H_PG_OWNED" -eq 1 ] || { echo "pg_standby_start needs the test's own primary (unset MG_PG_PORT)"; return 1; }
  STANDBY=$MG_PG_BASE/standby
  echo "local replication all trust" | as_pg tee -a "$MG_PG_DATA/pg_hba.conf" >/dev/null
  pg_admin postgres -c "select pg_reload_conf()" >/dev/null
  as_pg "$PGBIN/pg_basebackup" -D "$STANDBY" -h "$MG_PG_SOCK" -p "$MG_PG_PORT" -U pgadmin -R -X stream -c fast \
    >"$T_DIR/basebackup.log" 2>&1 || { echo "pg_basebackup failed: $(tail -5 "$T_DIR/basebackup.log")"; return 1; }
  STANDBY_PORT=$(free_port)
  as_pg sed -i "s/^port = .*/port = $STANDBY_PORT/" "$STANDBY/martgate-test.conf"
  H_STANDBY=$STANDBY
  as_pg "$PGBIN/pg_ctl" -D "$STANDBY" -l "$MG_PG_BASE/standby.log" -w -t 30 start >/dev/null 2>&1 ||
    { echo "the standby did not start: $(tail -5 "$MG_PG_BASE/standby.log")"; return 1; }
}

# pgb_start DB...: PgBouncer in session mode in front of the warehouse (runs as
# the unprivileged user: pgbouncer refuses root). Sets PGB_PORT, PGB_PID.
pgb_start() {
  command -v pgbouncer >/dev/null || { echo "harness: pgbouncer not found" >&2; return 1; }
  local dir=$T_DIR/pgbouncer db
  mkdir -p "$dir"
  PGB_PORT=$(free_port)
  {
    echo "[databases]"
    for db in "$@"; do
      echo "$db = host=127.0.0.1 port=$MG_PG_PORT dbname=$db user=$MG_SVC_USER password=$MG_SVC_PASS"
    done
    cat <<EOF
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGB_PORT
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = session
max_client_conn = 2000
default_pool_size = 400
max_db_connections = 0
server_tls_sslmode = ${PGB_SERVER_SSLMODE:-disable}
logfile = $dir/pgbouncer.log
pidfile =
EOF
    if [ -n "${PGB_CLIENT_TLS:-}" ]; then
      echo "client_tls_sslmode = require"
      echo "client_tls_cert_file = $dir/server.crt"
      echo "client_tls_key_file = $dir/server.key"
    fi
  } >"$dir/pgbouncer.ini"
  echo "\"$MG_SVC_USER\" \"$MG_SVC_PASS\"" >"$dir/userlist.txt"
  cp "$MG_CERTS/server.crt" "$MG_CERTS/server.key" "$dir/"
  [ "$(id -u)" -eq 0 ] && chown -R "$MG_TEST_OS_USER:" "$dir"
  chmod 0700 "$dir"
  as_pg pgbouncer "$dir/pgbouncer.ini" >"$T_DIR/pgbouncer.stderr" 2>&1 &
  H_BG_PIDS+=($!)
  wait_until 10 port_open "$PGB_PORT" || { cat "$T_DIR/pgbouncer.stderr" "$dir/pgbouncer.log" >&2 2>/dev/null; return 1; }
  # the pgbouncer process itself (as_pg wraps it in runuser when we are root);
  # its config path is unique to this test
  PGB_PID=$(pgrep -f -x "pgbouncer $dir/pgbouncer.ini" | head -1)
  [ -n "$PGB_PID" ] || { echo "harness: pgbouncer pid not found" >&2; return 1; }
  H_PGB_PIDS+=("$PGB_PID")
  export PGB_PORT PGB_PID
}

