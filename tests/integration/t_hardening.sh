#!/usr/bin/env bash
# Issue 12's classes against the real warehouse, as a squad analyst with a
# read rule on one schema would try them:
#  1. the warehouse session parses as martgate does, whatever the role's or
#     database's defaults (standard_conforming_strings, backslash_quote,
#     client_encoding); a session that cannot be made to is refused;
#  2. settings by allow-list from the warehouse's own pg_settings;
#  3. statements whose relations martgate cannot enumerate (VACUUM, ANALYZE,
#     CLUSTER, REINDEX DATABASE|SYSTEM without a table) are denied;
#  5. every built-in function PUBLIC cannot execute, read from this warehouse,
#     is denied unless the policy grants it;
#  6. a superuser, BYPASSRLS, CREATEROLE or predefined-role service account is
#     refused unless allow_privileged_service_account, then logged.
. "$(dirname "$0")/../lib/harness.sh"
h_init hardening
need_martgate
DB=t_hardening
pg_createdb $DB
direct_psql $DB -q -v ON_ERROR_STOP=1 <<'SQL' >/dev/null
CREATE SCHEMA sales; CREATE SCHEMA secret;
CREATE TABLE sales.orders (id int PRIMARY KEY, amount int);
INSERT INTO sales.orders SELECT g, g * 10 FROM generate_series(1, 5) g;
CREATE TABLE secret.t (s text); INSERT INTO secret.t VALUES ('TOP-SECRET');
SQL
# the defaults a warehouse may carry, for the service role and the database
pg_admin postgres -c "ALTER ROLE $MG_SVC_USER IN DATABASE $DB SET standard_conforming_strings = off" \
  -c "ALTER DATABASE $DB SET backslash_quote = on" \
  -c "ALTER ROLE $MG_SVC_USER IN DATABASE $DB SET client_encoding = 'LATIN1'" >/dev/null
# a database whose only difference is one no ParameterStatus reports
pg_createdb ${DB}_bq
pg_admin postgres -c "ALTER DATABASE ${DB}_bq SET backslash_quote = off" >/dev/null
# a function only the service role may run, for functions.allow
pg_admin $DB -c "GRANT EXECUTE ON FUNCTION pg_catalog.pg_hba_file_rules() TO $MG_SVC_USER" >/dev/null

write_policy() { # EXTRA_TOP_LEVEL_MEMBERS
  cat >"$T_DIR/policy.json" <<JSON
{
  "datasets": {"sales": {"schemas": ["sales"]}, "secret": {"schemas": ["secret"]}},
  "rules": [
    {"id": "analysts-sales", "subjects": {"groups": ["analysts"]}, "objects": {"datasets": ["sales"]}, "access": "read"},
    {"id": "writers-sales", "subjects": {"groups": ["writers"]}, "objects": {"datasets": ["sales"]}, "access": "write"}
  ]${1:+, $1}
}
JSON
}
write_policy '"settings": {"allow": ["synchronous_commit"]}'
MG_CFG_EXTRA="\"policy\": \"$T_DIR/policy.json\""
mg_start $DB ${DB}_bq || h_die "martgate did not start"

# q USER GROUPS SQL...: psql through martgate, one session, errors verbose
q() {
  local user=$1 groups=$2 tok; shift 2
  tok=$(mg_token --sub "$user" --groups "$groups" --ttl 10m)
  local st; for st in "$@"; do printf '%s\n' "${st%;};"; done | PGPASSWORD=$tok timeout "$H_TIMEOUT" psql -X -At -v VERBOSITY=verbose \
    "host=127.0.0.1 port=$MG_PORT dbname=$DB user=$user sslmode=verify-full sslrootcert=$MG_CA" 2>&1
}
analyst() { q ana analysts "$@"; }

# ---- 1. parse settings ------------------------------------------------------
direct=$(direct_psql $DB -At -c "show standard_conforming_strings" -c "show backslash_quote" 2>&1)
check_eq "the warehouse's own defaults differ (role: scs off; database: backslash_quote on)" \
  $'off\non' "$direct"
out=$(analyst "show standard_conforming_strings" "show backslash_quote" "show client_encoding")
check_eq "through martgate the session parses as martgate does" $'on\nsafe_encoding\nUTF8' "$out"
tok=$(mg_token --sub ana --groups analysts --ttl 10m)
out=$(PGPASSWORD=$tok timeout "$H_TIMEOUT" psql -X -At "host=127.0.0.1 port=$MG_PORT dbname=${DB}_bq user=ana \
  sslmode=verify-full sslrootcert=$MG_CA" -c "show backslash_quote" 2>&1 || true)
check_eq "a database default of backslash_quote = off is overridden" "safe_encoding" "$out"
# one string for martgate's parser; with standard_conforming_strings off it
# would be a string, a subquery on secret.t and a comment
inj="select 'a\\' || ' , (select s from secret.t) -- ';"
out=$(analyst "$inj")
check_eq "backslash-quote injection is one string on the warehouse too" \
  "a\\ , (select s from secret.t) -- " "$out"
check_nomatch "no restricted row comes back" "TOP-SECRET" "$out"
direct=$(direct_psql $DB -At -c "$inj" 2>&1 || true)
check_match "the same text leaks directly on that warehouse (the test's premise)" "TOP-SECRET" "$direct"
out=$(analyst "reset standard_conforming_strings;" "show standard_conforming_strings" \
  "set standard_conforming_strings to default;" "show standard_conforming_strings" \
  "reset all;" "show standard_conforming_strings" "$inj")
check_eq "RESET, SET TO DEFAULT and RESET ALL give the value martgate parses with" \
  $'RESET\non\nSET\non\nRESET\non\na\\ , (select s from secret.t) -- ' "$out"
expect_sqlstate "SET standard_conforming_strings = off is refused" 42501 \
  analyst "set standard_conforming_strings = off;"
expect_sqlstate "SET client_encoding LATIN1 is refused" 42501 analyst "set client_encoding = 'LATIN1';"
out=$(analyst "set client_encoding = 'unicode';" "show client_encoding")
check_eq "SET client_encoding to another spelling of UTF-8 is allowed" $'SET\nUTF8' "$out"

# a pooler in between that drops martgate's startup options: the session
# would parse differently, so martgate refuses it and says what to change
if command -v pgbouncer >/dev/null; then
  pgb_start $DB ${DB}_bq || h_die "pgbouncer did not start"
  sed -i 's/^pool_mode = session/pool_mode = session\nignore_startup_parameters = options, extra_float_digits/' \
    "$T_DIR/pgbouncer/pgbouncer.ini"
  kill -HUP "$PGB_PID"; sleep 0.5
  cfg2=$MG_DIR/pooled.json log2=$MG_DIR/pooled.log port2=$(free_port)
  sed -e "s/port=$MG_PG_PORT dbname=/port=$PGB_PORT dbname=/" -e "s/sslmode=require/sslmode=disable/" \
    -e "s/127.0.0.1:$MG_PORT/127.0.0.1:$port2/" "$MG_CONFIG" >"$cfg2"
  "$MARTGATE_BIN" serve --config "$cfg2" 2>>"$log2" & H_MG_PIDS+=($!)
  wait_until 10 port_open "$port2" || fail "pooled martgate starts" "$(tail -5 "$log2")"
  tok=$(mg_token --sub ana --groups analysts --ttl 10m)
  out=$(PGPASSWORD=$tok timeout "$H_TIMEOUT" psql -X -At -v VERBOSITY=verbose \
    "host=127.0.0.1 port=$port2 dbname=$DB user=ana sslmode=verify-full sslrootcert=$MG_CA" -c "$inj" 2>&1 || true)
  check_nomatch "through a pooler that drops the options: no restricted row" "TOP-SECRET" "$out"
  check_match "... and the client is told the warehouse session was refused" "08|standard_conforming_strings" "$out"
  check_match "... and the log names the setting and what to change" \
    "standard_conforming_strings.*(off|ALTER|postgresql.conf)" "$(cat "$log2")"
  out=$(PGPASSWORD=$tok timeout "$H_TIMEOUT" psql -X -At -v VERBOSITY=verbose \
    "host=127.0.0.1 port=$port2 dbname=${DB}_bq user=ana sslmode=verify-full sslrootcert=$MG_CA" -c "select 1" 2>&1 || true)
  check_match "a setting no ParameterStatus reports (backslash_quote off) is checked too" "backslash_quote" "$out"
  check_match "... and the log says what to change" "backslash_quote.*ALTER DATABASE" "$(cat "$log2")"
else
  skip "pooler refusal" "pgbouncer not installed"
fi

# ---- 2. settings by allow-list ---------------------------------------------
for s in "log_statement = none" "log_min_duration_statement = -1" "track_activities = off" \
         "session_replication_role = replica" "allow_system_table_mods = on" "temp_file_limit = -1" \
         "commit_siblings = 10" "debug_print_plan = on" "martgate_test.custom = 1" "no_such_setting = 1"; do
  out=$(analyst "set ${s};")
  check_match "SET ${s%% *} is denied (42501, saying why)" "42501.*(context|logging|monitoring|integrity|know|categor|allow)" "$out"
done
out=$(analyst "set work_mem = '8MB';" "set statement_timeout = '5s';" "set synchronous_commit = off;" "show synchronous_commit")
check_eq "user settings, and one the policy allows by name, are set" $'SET\nSET\nSET\noff' "$out"
out=$(analyst "select set_config('log_statement', 'none', false);")
check_match "set_config cannot go around it" "42501" "$out"
tok=$(mg_token --sub ana --groups analysts --ttl 10m)
out=$(pgwire_login "$MG_PORT" ana "$tok" $DB --param track_activities=off --query "select 1" 2>&1 || true)
check_match "a startup parameter is decided by the same rules (42501, saying why)" "42501.*context 'superuser'" "$out"
out=$(pgwire_login "$MG_PORT" ana "$tok" $DB --param options="-c track_activities=off" --query "select 1" 2>&1 || true)
check_match "... and a setting inside the options parameter too" "42501" "$out"
out=$(PGPASSWORD=$tok PGAPPNAME=dash PGTZ=UTC PGDATESTYLE=ISO timeout "$H_TIMEOUT" psql -X -At \
  "host=127.0.0.1 port=$MG_PORT dbname=$DB user=ana sslmode=verify-full sslrootcert=$MG_CA" \
  -c "show application_name" -c "show timezone" 2>&1 || true)
check_eq "startup parameters clients send are allowed" $'dash\nUTC' "$out"

# ---- 3. statements whose relations cannot be enumerated --------------------
for s in "vacuum" "vacuum (verbose)" "analyze verbose" "analyze" "cluster" "reindex database $DB" \
         "reindex system $DB" "checkpoint"; do
  out=$(analyst "${s};")
  check_match "analyst: ${s} is denied" "42501" "$out"
  out=$(q wri writers "${s};")
  check_match "writer of one dataset: ${s} is denied" "42501" "$out"
done
out=$(q wri writers "analyze sales.orders;" "vacuum sales.orders;")
check_eq "a writer may ANALYZE and VACUUM the tables it writes" $'ANALYZE\nVACUUM' "$out"

# ---- 5. administrative functions, as this warehouse says ------------------
mapfile -t admin < <(pg_admin $DB -c "select distinct p.proname from pg_proc p
  where p.oid < 16384 and not has_function_privilege('public', p.oid, 'EXECUTE') order by 1")
check "the warehouse revokes EXECUTE from PUBLIC on some built-ins" test "${#admin[@]}" -gt 20
stmts=()
for f in "${admin[@]}"; do stmts+=("select pg_catalog.${f}();"); done
out=$(analyst "${stmts[@]}")
n=$(grep -c "42501" <<<"$out" || true)
check_eq "each of the ${#admin[@]} functions PUBLIC cannot execute is denied" "${#admin[@]}" "$n"
missed=$(for f in "${admin[@]}"; do grep -q "$f" <<<"$(grep 42501 <<<"$out")" || echo "$f"; done)
check_eq "... none of them reaches the warehouse" "" "$missed"
for f in "pg_hba_file_rules()" "pg_show_all_file_settings()" "pg_ident_file_mappings()"; do
  out=$(analyst "select * from ${f};")
  check_match "select * from ${f} is denied" "42501" "$out"
done
out=$(analyst "select lower('A'), pg_catalog.upper('b');")
check_eq "functions PUBLIC may execute are not affected" "a|B" "$out"
write_policy '"functions": {"allow": ["pg_catalog.pg_hba_file_rules"]}'
mg_reload_wait || fail "reload" "no reload logged"
out=$(analyst "select count(*) > 0 from pg_catalog.pg_hba_file_rules();" "select * from pg_show_all_file_settings();")
check_match "functions.allow grants one by name" "^t$" "$(head -1 <<<"$out")"
check_match "... and only that one" "42501" "$(tail -n +2 <<<"$out")"

# ---- 6. the service account's privileges -----------------------------------
pass=$(openssl rand -hex 16)
printf '%s' "$pass" >"$MG_DIR/priv.pass"; chmod 600 "$MG_DIR/priv.pass"
pg_admin postgres -c "DROP ROLE IF EXISTS mg_super" -c "CREATE ROLE mg_super LOGIN SUPERUSER PASSWORD '$pass'" \
  -c "DROP ROLE IF EXISTS mg_files" -c "CREATE ROLE mg_files LOGIN PASSWORD '$pass'" \
  -c "GRANT pg_read_server_files TO mg_files" -c "GRANT CONNECT ON DATABASE $DB TO mg_files" \
  -c "DROP ROLE IF EXISTS mg_rls" -c "CREATE ROLE mg_rls LOGIN BYPASSRLS PASSWORD '$pass'" >/dev/null
# start_as ROLE ALLOW: martgate on its own port, its database reached as ROLE
start_as() {
  local role=$1 allow=$2
  P_CFG=$MG_DIR/$role-$allow.json P_LOG=$MG_DIR/$role-$allow.log P_PORT=$(free_port)
  sed -e "s/user=$MG_SVC_USER/user=$role/" -e 's/"svc.pass"/"priv.pass"/' -e "s/127.0.0.1:$MG_PORT/127.0.0.1:$P_PORT/" \
    "$MG_CONFIG" >"$P_CFG"
  [ "$allow" = allow ] && sed -i 's/"password_file": "priv.pass"/"password_file": "priv.pass", "allow_privileged_service_account": true/' "$P_CFG"
  "$MARTGATE_BIN" serve --config "$P_CFG" 2>>"$P_LOG" & P_PID=$!
  H_MG_PIDS+=($P_PID)
  wait_until 10 port_open "$P_PORT"
}
p_login() {
  PGPASSWORD=$(mg_token --sub ana --groups analysts --ttl 10m) timeout "$H_TIMEOUT" psql -X -At -v VERBOSITY=verbose \
    "host=127.0.0.1 port=$P_PORT dbname=$DB user=ana sslmode=verify-full sslrootcert=$MG_CA" -c "select count(*) from sales.orders" 2>&1 || true
}
for role in mg_super mg_files mg_rls; do
  start_as $role deny || { fail "$role: martgate starts" "$(tail -5 "$P_LOG")"; continue; }
  out=$(pgwire_login "$P_PORT" ana "$(mg_token --sub ana --groups analysts --ttl 10m)" $DB --query "select 1" 2>&1 || true)
  check_match "$role service role: the login is refused with 42501" "42501.*privileged" "$out"
  check_match "$role: the log says what it is and what to change" \
    "service role \"$role\".*(superuser|BYPASSRLS|pg_read_server_files).*allow_privileged_service_account" "$(cat "$P_LOG")"
  stop_pid "$P_PID" 10 >/dev/null 2>&1
done
start_as mg_super allow || fail "mg_super allowed: martgate starts" "$(tail -5 "$P_LOG")"
out=$(p_login)
check_eq "allow_privileged_service_account: the session opens" "5" "$out"
check_match "... and a warning is logged" "WARNING.*service role \"mg_super\" is superuser" "$(cat "$P_LOG")"
stop_pid "$P_PID" 10 >/dev/null 2>&1
check_nomatch "the test's own service role is not privileged" "service role.*is (superuser|BYPASSRLS)" "$(cat "$MG_LOG")"

# ---- the facts CLI ---------------------------------------------------------
facts=$(PGPASSWORD=$MG_SVC_PASS "$MARTGATE_BIN" policy warehouse "$(direct_conninfo $DB)" 2>&1 || true)
n=$(/usr/bin/python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); print(len(d["settings"]) > 300, "pg_catalog.pg_hba_file_rules" in d["admin_functions"], d["service_role"]["name"])' <<<"$facts" 2>&1)
check_eq "policy warehouse prints the settings, admin functions and role" "True True $MG_SVC_USER" "$n"

pg_admin postgres -c "ALTER ROLE $MG_SVC_USER IN DATABASE $DB RESET ALL" -c "ALTER DATABASE $DB RESET ALL" \
  -c "DROP ROLE mg_super" -c "REVOKE CONNECT ON DATABASE $DB FROM mg_files" -c "DROP ROLE mg_files" \
  -c "DROP ROLE mg_rls" -c "DROP DATABASE ${DB}_bq WITH (FORCE)" >/dev/null
h_done
