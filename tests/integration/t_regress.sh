#!/usr/bin/env bash
# PostgreSQL's own regression SQL (Debian's postgresql-15 source package,
# fetched by tests/regress/fetch.sh) run directly as the service role and
# through martgate as a writer of everything, on fresh clones of one template
# database prepared as test_setup.sql prepares it; tests/regress/compare.py
# compares the two outputs statement by statement. The files are
# tests/regress/schedule (in order: later files use what earlier ones made);
# differences by design are tests/regress/expected-differences, each with its
# reason; any other difference fails. The counts go to
# docs/compatibility.md by hand (they are printed last).
. "$(dirname "$0")/../lib/harness.sh"
h_init regress
need_martgate
here=$(cd "$(dirname "$0")/../regress" && pwd)
src=$(bash "$here/fetch.sh" 2>"$T_DIR/fetch.log") || h_die "fetching the regression SQL failed: $(tail -5 "$T_DIR/fetch.log")"
h_log "regression SQL from $src"
schedule=${MG_REGRESS_SCHEDULE:-$here/schedule}

# the data files COPY ... FROM reads on the server, where its OS user can read them
mkdir -p "$T_DIR/regress"
cp -r "$src/data" "$T_DIR/regress/"
chmod -R a+rX "$T_DIR/regress"
export PG_ABS_SRCDIR=$T_DIR/regress PG_ABS_BUILDDIR=$T_DIR/regress PG_LIBDIR=$T_DIR/regress/nolib PG_DLSUFFIX=.so
# as pg_regress runs psql
export PGTZ=PST8PDT PGDATESTYLE='Postgres, MDY'

# the template: test_setup.sql as a superuser of its own (its objects are then
# given to the service role, as if it had made them), COPY of the data files
pg_admin postgres -q -c "DROP DATABASE IF EXISTS regression WITH (FORCE)" -c "DROP DATABASE IF EXISTS regress_tpl" \
  -c "DROP ROLE IF EXISTS regress_setup" -c "CREATE ROLE regress_setup SUPERUSER LOGIN" \
  -c "CREATE DATABASE regress_tpl OWNER $MG_SVC_USER TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'" >/dev/null
PGUSER=regress_setup timeout 120 psql -X -q -h "$MG_PG_SOCK" -p "$MG_PG_PORT" -U regress_setup -d regress_tpl \
  -f "$src/sql/test_setup.sql" >"$T_DIR/setup.out" 2>&1 || true
pg_admin regress_tpl -q -c "REASSIGN OWNED BY regress_setup TO $MG_SVC_USER" >/dev/null
grep -q 'COPY 1000' "$T_DIR/setup.out" || [ "$(pg_admin regress_tpl -Atc 'select count(*) from onek')" = 1000 ] ||
  h_die "test_setup did not load onek: $(head -20 "$T_DIR/setup.out")"

fresh_db() { # the database the files run in, as pg_regress makes it
  pg_admin postgres -q -c "DROP DATABASE IF EXISTS regression WITH (FORCE)" \
    -c "CREATE DATABASE regression OWNER $MG_SVC_USER TEMPLATE regress_tpl" >/dev/null
  pg_admin postgres -q -c "ALTER DATABASE regression SET lc_messages TO 'C'" \
    -c "ALTER DATABASE regression SET lc_monetary TO 'C'" -c "ALTER DATABASE regression SET lc_numeric TO 'C'" \
    -c "ALTER DATABASE regression SET lc_time TO 'C'" -c "ALTER DATABASE regression SET bytea_output TO 'hex'" \
    -c "ALTER DATABASE regression SET timezone_abbreviations TO 'Default'" >/dev/null
}
run_files() { # OUTDIR CONNINFO PASSWORD
  local f
  mkdir -p "$1"
  while read -r f _; do
    [ -z "$f" ] || [ "${f#\#}" != "$f" ] && continue
    PGPASSWORD=$3 timeout 120 psql -X -a -v HIDE_TABLEAM=on -v HIDE_TOAST_COMPRESSION=on "$2" \
      <"$src/sql/$f.sql" >"$1/$f.out" 2>&1 || true
  done <"$schedule"
}

fresh_db
t0=$(now_ms)
run_files "$T_DIR/direct" "$(direct_conninfo regression)" "$MG_SVC_PASS"
t1=$(now_ms)
fresh_db
cat >"$T_DIR/policy.json" <<'JSON'
{"datasets": {"everything": {"schemas": ["*"]}},
 "defaults": {"search_path": [{"schemas": ["public"]}], "full_catalog_visibility": {"groups": ["writers"]}},
 "rules": [{"id": "writer", "subjects": {"groups": ["writers"]},
            "objects": {"datasets": ["everything"]}, "access": "write"}]}
JSON
MG_CFG_EXTRA="\"policy\": \"$T_DIR/policy.json\"" mg_start regression || h_die "martgate did not start"
WTOK=$(mg_token --sub writer --groups writers --ttl 1h)
t2=$(now_ms)
run_files "$T_DIR/martgate" "host=127.0.0.1 port=$MG_PORT dbname=regression user=writer sslmode=verify-full sslrootcert=$MG_CA" "$WTOK"
t3=$(now_ms)
h_log "$(grep -c '^[a-z]' "$schedule") files: $((t1 - t0)) ms directly, $((t3 - t2)) ms through martgate"

out=$(/usr/bin/python3 "$here/compare.py" "$src/sql" "$T_DIR/direct" "$T_DIR/martgate" "$schedule" \
        "$here/expected-differences" "$T_DIR/report.json" 2>&1) || true
while IFS= read -r line; do
  case $line in
    "PASS "*) ok "${line#PASS }" ;;
    "FAIL "*) line=${line#FAIL }; fail "${line%% | *}" "${line#* | }" ;;
    *) [ -n "$line" ] && echo "# $T_NAME: $line" ;;
  esac
done <<<"$out"
grep -q '^# .* statements: ' <<<"$out" || fail "compare.py" "did not finish" "$(tail -5 <<<"$out")"
[ -n "${MG_KEEP_TMP:-}" ] && h_log "outputs kept in $T_DIR/direct and $T_DIR/martgate"

if mg_alive; then ok "martgate still running"; else fail "martgate still running" "it exited" "$(mg_log_tail)"; fi
h_sanitizer_check   # (stops martgate)
pg_admin postgres -q -c "DROP DATABASE IF EXISTS regression WITH (FORCE)" -c "DROP DATABASE IF EXISTS regress_tpl" \
  -c "DROP ROLE IF EXISTS regress_setup" >/dev/null 2>&1 || true
h_done
