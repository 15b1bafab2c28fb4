#!/usr/bin/env bash
# pgjdbc through martgate: compiles tests/integration/java/*.java against the
# Debian driver (/usr/share/java/postgresql.jar) and runs them; each "ok" /
# "not ok" line the Java program prints is one check.
. "$(dirname "$0")/../lib/harness.sh"
h_init jdbc
JAR=${PGJDBC_JAR:-/usr/share/java/postgresql.jar}
command -v javac >/dev/null || h_die "javac not found (default-jdk-headless)"
[ -f "$JAR" ] || h_die "$JAR not found (libpostgresql-jdbc-java)"
DB=t_jdbc
pg_createdb $DB
mg_start $DB || h_die "martgate did not start"

mkdir -p "$T_DIR/classes"
if ! out=$(timeout 120 javac -encoding UTF-8 -cp "$JAR" -d "$T_DIR/classes" "$(dirname "$0")"/java/*.java 2>&1); then
  h_die "javac failed: $out"
fi
# A CA that did not sign the server certificate, for the negative TLS check.
"$H_REPO/certs/make-dev-certs.sh" "$T_DIR/other-ca" >/dev/null

rc=0
out=$(JT_HOST=localhost JT_PORT=$MG_PORT JT_DB=$DB JT_USER=$(tgt_user) JT_PASSWORD=$(tgt_password) \
      JT_CA=$MG_CA JT_OTHER_CA=$T_DIR/other-ca/ca.crt JT_MARTGATE=$([ "$MG_TARGET" = martgate ] && echo 1 || echo 0) \
      timeout 240 java -Xss1m -Xmx256m -cp "$T_DIR/classes:$JAR" JdbcTests 2>&1) || rc=$?
while IFS= read -r line; do
  case $line in
    "ok "*) ok "${line#ok * - }" ;;
    "not ok "*) line=${line#not ok * - }; fail "${line%% | *}" "${line#* | }" ;;
    *) [ -n "$line" ] && echo "#   $line" ;;
  esac
done <<<"$out"
grep -q '^# jdbc: ' <<<"$out" || fail "java program" "did not finish (exit $rc)" "$(tail -20 <<<"$out")"
if [ "$MG_TARGET" = martgate ]; then
  if mg_alive; then ok "martgate still running"; else fail "martgate still running" "it exited" "$(mg_log_tail)"; fi
fi
h_done
