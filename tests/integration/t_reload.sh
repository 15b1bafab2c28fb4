#!/usr/bin/env bash
# SIGHUP reloads the config: a rotated token key is accepted (and the removed
# one refused), a new server certificate is served, sessions opened before the
# reload keep working; an invalid new config (bad JSON, missing key file) keeps
# the old one and the log says why. `serve --check` validates a config file.
. "$(dirname "$0")/../lib/harness.sh"
h_init reload
need_martgate
DB=t_reload
pg_createdb $DB
mg_start $DB || h_die "martgate did not start"

login_ok() { # TOKEN: a fresh login works
  local out; out=$(pgwire_login "$MG_PORT" "$MG_USER" "$1" $DB --query "select 'in'" 2>&1) || true
  grep -q '^ROW in$' <<<"$out"
}
login_refused() { local out; out=$(pgwire_login "$MG_PORT" "$MG_USER" "$1" $DB 2>&1) || true; grep -q '^ERROR 28P01 ' <<<"$out"; }
served_serial() { # the serial of the certificate martgate presents
  timeout 10 openssl s_client -starttls postgres -connect "127.0.0.1:$MG_PORT" -servername localhost \
    -CAfile "$MG_CA" </dev/null 2>/dev/null | openssl x509 -noout -serial 2>/dev/null
}

# ---- --check
out=$(timeout 10 "$MARTGATE_BIN" serve --config "$MG_CONFIG" --check 2>&1) && rc=0 || rc=$?
check_eq "serve --check accepts the running config (exit 0)" 0 "$rc"
printf '{"listen": ["127.0.0.1:1"],\n  "tls": {"cert_file": 42}\n' >"$MG_DIR/broken.json"
out=$(timeout 10 "$MARTGATE_BIN" serve --config "$MG_DIR/broken.json" --check 2>&1) && rc=0 || rc=$?
if [ $rc -ne 0 ] && grep -q 'broken.json' <<<"$out"; then ok "serve --check rejects bad JSON and names the file"
else fail "serve --check rejects bad JSON and names the file" "exit $rc" "$out"; fi
sed 's/"max_clients": [0-9]*/"max_clients": "many"/' "$MG_CONFIG" >"$MG_DIR/badfield.json"
out=$(timeout 10 "$MARTGATE_BIN" serve --config "$MG_DIR/badfield.json" --check 2>&1) && rc=0 || rc=$?
if [ $rc -ne 0 ] && grep -q 'max_clients' <<<"$out"; then ok "serve --check names the bad field (max_clients)"
else fail "serve --check names the bad field (max_clients)" "exit $rc" "$out"; fi

# ---- a session held across all reloads
held_open $DB
held_query "select 'held 0';"
old_token=$MG_TOKEN
serial_before=$(served_serial)

# ---- rotate the HMAC key and the server certificate, SIGHUP
(umask 077; openssl rand -hex 24 | tr -d '\n' >"$MG_DIR/jwt-new.secret")
NEWCERTS=$T_DIR/newcerts
mkdir -p "$NEWCERTS"
cp "$MG_CERTS/ca.crt" "$MG_CERTS/ca.key" "$NEWCERTS/"
"$H_REPO/certs/make-dev-certs.sh" "$NEWCERTS" >/dev/null     # same CA, new server key and certificate
MG_CFG_KEYS='{"hmac_secret_file": "jwt-new.secret", "algorithms": ["HS256"]}' \
MG_CFG_CERT=$NEWCERTS/server.crt MG_CFG_KEY=$NEWCERTS/server.key mg_write_config "$MG_CONFIG" $DB
new_token=$(timeout 10 "$MARTGATE_BIN" token --key "$MG_DIR/jwt-new.secret" --alg HS256 --iss "$MG_ISS" --aud "$MG_AUD" --sub "$MG_USER" --ttl 1h)
mg_reload
if wait_until 10 login_ok "$new_token"; then ok "after SIGHUP: token signed with the new key accepted"
else fail "after SIGHUP: token signed with the new key accepted" "refused" "$(mg_log_tail 5)"; fi
if login_refused "$old_token"; then ok "after SIGHUP: token signed with the removed key refused"
else fail "after SIGHUP: token signed with the removed key refused" "not refused"; fi
serial_after=$(served_serial)
if [ -n "$serial_after" ] && [ "$serial_after" != "$serial_before" ]; then ok "after SIGHUP: the new server certificate is served"
else fail "after SIGHUP: the new server certificate is served" "before [$serial_before] after [$serial_after]"; fi
held_query "select 'held 1';"
MG_TOKEN=$new_token
export MG_TOKEN

# ---- invalid configs are refused, the running one stays
log_lines() { wc -l <"$MG_LOG"; }
for bad in json keyfile; do
  case $bad in
    json) cp "$MG_CONFIG" "$MG_DIR/good.json"; printf '{ "listen": [ "127.0.0.1:%s", ' "$MG_PORT" >"$MG_CONFIG" ;;
    keyfile) MG_CFG_KEYS='{"hmac_secret_file": "no-such.secret", "algorithms": ["HS256"]}' \
               MG_CFG_CERT=$NEWCERTS/server.crt MG_CFG_KEY=$NEWCERTS/server.key mg_write_config "$MG_CONFIG" $DB ;;
  esac
  before=$(log_lines)
  mg_reload
  sleep 1
  new=$(tail -n +"$((before + 1))" "$MG_LOG")
  if mg_alive; then ok "invalid config ($bad): martgate still running"; else fail "invalid config ($bad): martgate still running" "it exited" "$(mg_log_tail)"; fi
  if login_ok "$new_token"; then ok "invalid config ($bad): the previous config still serves"
  else fail "invalid config ($bad): the previous config still serves" "login with the current key failed" "$new"; fi
  if grep -Eiq 'martgate.json|no-such.secret|invalid|error|keep' <<<"$new"; then ok "invalid config ($bad): the log says why"
  else fail "invalid config ($bad): the log says why" "no explanation in new log lines" "$new"; fi
  cp "$MG_DIR/good.json" "$MG_CONFIG" 2>/dev/null || true
done
held_query "select 'held 2';"

# ---- one more (valid, unchanged) reload
mg_reload
sleep 1
held_query "select 'held 3';"
out=$(held_close)
check_eq "a session opened before the reloads saw every query through" $'held 0\nheld 1\nheld 2\nheld 3' "$out"
if mg_alive; then ok "martgate still running"; else fail "martgate still running" "it exited" "$(mg_log_tail)"; fi
h_done
