#!/usr/bin/env bash
# Logins with a JWT: good tokens (HS256 from `martgate token`, RS256 by kid,
# leeway, aud as an array) are accepted; bad ones (expired, not yet valid, wrong
# signature, tampered payload, alg none, HS256 signed with the RS public key,
# algorithm not configured for the key, wrong/missing iss or aud, user not the
# claim, garbage, a 1 MB token) are refused with 28P01 and one message that does
# not say which check failed; plaintext is refused with 28000 unless allowed.
# A session opened before all this keeps working, and martgate keeps serving.
. "$(dirname "$0")/../lib/harness.sh"
h_init auth
need_martgate
DB=t_auth
pg_createdb $DB
mg_start $DB || h_die "martgate did not start"

held_open $DB
held_query "select 'held before';"

login() { # TOKEN [USER]: a TLS login with this token as the password
  pgwire_login "$MG_PORT" "${2:-$MG_USER}" "$1" $DB --query "select current_user, 'in'"
}
accepts() { # NAME TOKEN [USER]
  local out rc=0
  out=$(login "$2" "${3:-}" 2>&1) || rc=$?
  if [ $rc -eq 0 ] && grep -q "^ROW $MG_SVC_USER|in$" <<<"$out"; then ok "accepted: $1"
  else fail "accepted: $1" "exit $rc" "$out" "log: $(mg_log_tail 3)"; fi
}
REFUSAL_MESSAGES=$T_DIR/refusals
: >"$REFUSAL_MESSAGES"
# refuses NAME TOKEN [USER] [LOG-ERE]: 28P01, and the log (new lines) says why.
refuses() {
  local name=$1 tok=$2 user=${3:-} ere=${4:-} out rc=0 before
  before=$(wc -l <"$MG_LOG")
  out=$(login "$tok" "$user" 2>&1) || rc=$?
  if grep -q '^ERROR 28P01 ' <<<"$out" && ! grep -q '^READY' <<<"$out"; then
    ok "refused with 28P01: $name"
    sed -n 's/^ERROR 28P01 //p' <<<"$out" | head -1 >>"$REFUSAL_MESSAGES"
  else
    fail "refused with 28P01: $name" "exit $rc" "$out"
  fi
  if [ -n "$ere" ]; then
    sleep 0.1
    local new; new=$(tail -n +"$((before + 1))" "$MG_LOG")
    if grep -Eiq -- "$ere" <<<"$new"; then ok "log says why: $name"
    else fail "log says why: $name" "new log lines do not match /$ere/" "$new"; fi
  fi
}

# ---- good tokens
accepts "HS256 from martgate token" "$MG_TOKEN"
accepts "RS256 from martgate token (kid rs1)" \
  "$(timeout 10 "$MARTGATE_BIN" token --key "$MG_RS_KEY" --alg RS256 --kid rs1 --iss "$MG_ISS" --aud "$MG_AUD" --sub "$MG_USER" --ttl 1h)"
CLAIMS="{\"sub\":\"$MG_USER\",\"iss\":\"$MG_ISS\",\"aud\":\"$MG_AUD\",\"groups\":[\"analysts\"]}"
accepts "HS256 made by hand (the test's own signer agrees)" "$(py_jwt --alg HS256 --key "$MG_HS_SECRET" --claims "$CLAIMS" --exp-in 600)"
accepts "RS256 made by hand, kid rs1" "$(py_jwt --alg RS256 --key "$MG_RS_KEY" --kid rs1 --claims "$CLAIMS" --exp-in 600)"
accepts "aud as an array that contains the audience" \
  "$(py_jwt --alg HS256 --key "$MG_HS_SECRET" --claims "{\"sub\":\"$MG_USER\",\"iss\":\"$MG_ISS\",\"aud\":[\"other\",\"$MG_AUD\"]}" --exp-in 600)"
accepts "expired 2 s ago, within the 5 s leeway" "$(py_jwt --alg HS256 --key "$MG_HS_SECRET" --claims "$CLAIMS" --exp-in -2)"
accepts "nbf 2 s ahead, within the 5 s leeway" "$(py_jwt --alg HS256 --key "$MG_HS_SECRET" --claims "$CLAIMS" --exp-in 600 --nbf-in 2)"

# ---- bad tokens
refuses "expired (martgate token --ttl -60)" "$(mg_token --sub "$MG_USER" --ttl -60)" "" 'exp'
refuses "expired an hour ago" "$(py_jwt --alg HS256 --key "$MG_HS_SECRET" --claims "$CLAIMS" --exp-in -3600)"
refuses "not yet valid (nbf in 60 s)" "$(py_jwt --alg HS256 --key "$MG_HS_SECRET" --claims "$CLAIMS" --exp-in 600 --nbf-in 60)" "" 'nbf|not yet|before'
refuses "wrong signature (another secret)" "$(py_jwt --alg HS256 --key "$MG_DIR/jwt-other.secret" --claims "$CLAIMS" --exp-in 600)" "" 'signature|verif'
good=$MG_TOKEN
evil_payload=$(python3 -c 'import base64,json,sys; c=json.loads(base64.urlsafe_b64decode(sys.argv[1]+"==")); c["groups"]=["admins"]; print(base64.urlsafe_b64encode(json.dumps(c).encode()).decode().rstrip("="))' "$(cut -d. -f2 <<<"$good")")
refuses "tampered payload, original signature" "$(cut -d. -f1 <<<"$good").$evil_payload.$(cut -d. -f3 <<<"$good")"
refuses "signature stripped" "$(cut -d. -f1,2 <<<"$good")."
refuses "alg none" "$(py_jwt --alg none --claims "$CLAIMS" --exp-in 600)" "" 'alg|none|unsigned|no signature'
refuses "alg none, kid rs1" "$(py_jwt --alg none --kid rs1 --claims "$CLAIMS" --exp-in 600)"
refuses "alg NONE spelled in capitals" "$(py_jwt --alg none --header '{"alg":"NONE"}' --claims "$CLAIMS" --exp-in 600)"
refuses "HS256 signed with the RS public key (kid rs1)" "$(py_jwt --alg HS256 --key "$MG_DIR/jwt-rs.pub.pem" --kid rs1 --claims "$CLAIMS" --exp-in 600)"
refuses "HS256 signed with the RS public key, trimmed (kid rs1)" "$(py_jwt --alg HS256 --key "$MG_DIR/jwt-rs.pub.pem" --strip-key --kid rs1 --claims "$CLAIMS" --exp-in 600)"
refuses "HS256 signed with the RS public key (no kid)" "$(py_jwt --alg HS256 --key "$MG_DIR/jwt-rs.pub.pem" --claims "$CLAIMS" --exp-in 600)"
refuses "HS512 with the HS256-only key" "$(py_jwt --alg HS512 --key "$MG_HS_SECRET" --claims "$CLAIMS" --exp-in 600)"
refuses "RS256 signed by another RSA key (kid rs1)" "$(py_jwt --alg RS256 --key "$MG_DIR/jwt-rs-other.key" --kid rs1 --claims "$CLAIMS" --exp-in 600)"
refuses "RS256 with an unknown kid" "$(py_jwt --alg RS256 --key "$MG_DIR/jwt-rs-other.key" --kid nope --claims "$CLAIMS" --exp-in 600)"
mint_hs() { timeout 10 "$MARTGATE_BIN" token --key "$MG_HS_SECRET" --alg HS256 --sub "$MG_USER" --ttl 1h "$@"; }
refuses "wrong iss" "$(mint_hs --iss https://evil.test --aud "$MG_AUD")" "" 'iss'
refuses "wrong aud" "$(mint_hs --iss "$MG_ISS" --aud someone-else)" "" 'aud'
refuses "aud array without our audience" "$(mint_hs --iss "$MG_ISS" --aud a --aud b)"
refuses "missing iss" "$(py_jwt --alg HS256 --key "$MG_HS_SECRET" --claims "{\"sub\":\"$MG_USER\",\"aud\":\"$MG_AUD\"}" --exp-in 600)"
refuses "missing aud" "$(py_jwt --alg HS256 --key "$MG_HS_SECRET" --claims "{\"sub\":\"$MG_USER\",\"iss\":\"$MG_ISS\"}" --exp-in 600)"
refuses "user does not match the sub claim" "$(mg_token --sub bob --ttl 1h)" "$MG_USER" 'user|sub|claim|match'
refuses "sub claim missing" "$(py_jwt --alg HS256 --key "$MG_HS_SECRET" --claims "{\"iss\":\"$MG_ISS\",\"aud\":\"$MG_AUD\"}" --exp-in 600)"
refuses "garbage" "not-a-jwt"
refuses "three garbage segments" "a.b.c"
refuses "empty password" ""
refuses "header is not JSON" "$(printf 'hello' | base64 | tr -d '=').$(cut -d. -f2,3 <<<"$good")"
python3 - "$T_DIR/big.token" <<'PY'
import base64, json, sys
pad = "x" * 1000000
h = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').decode().rstrip("=")
p = base64.urlsafe_b64encode(json.dumps({"sub": "alice", "pad": pad}).encode()).decode().rstrip("=")
tok = (h + "." + p + ".c2ln")[:1000000]
open(sys.argv[1], "w").write(tok)
PY
out=$(pgwire login --port "$MG_PORT" --tls "$MG_CA" --user "$MG_USER" --db $DB --password-file "$T_DIR/big.token" 2>&1 || true)
if grep -q '^ERROR 28P01 ' <<<"$out"; then ok "refused with 28P01: a 1 MB token"
else fail "refused with 28P01: a 1 MB token" "not refused with 28P01" "$out"; fi

# One message for every refusal: it must not tell which check failed.
n=$(sort -u "$REFUSAL_MESSAGES" | wc -l)
check_eq "all refusals carry the same message" 1 "$n"
if grep -qF "$(cut -d. -f3 <<<"$MG_TOKEN")" "$MG_LOG"; then fail "tokens are not logged" "a token's signature appears in the log"
else ok "tokens are not logged"; fi
if grep -qF "$MG_SVC_PASS" "$MG_LOG"; then fail "warehouse password is not logged" "it appears in the log"
else ok "warehouse password is not logged"; fi

# ---- plaintext when TLS is required: 28000, and no password asked in the clear
out=$(H_PW=$MG_TOKEN pgwire login --port "$MG_PORT" --user "$MG_USER" --db $DB --password-env H_PW 2>&1 || true)
check_match "plaintext refused with 28000" '^ERROR 28000 ' "$out"
out=$(PYT_TIMEOUT=20 pyt "$MG_PORT" "$MG_USER" $DB <<'PY'
import sys, pgwire
c = pgwire.Conn(port=int(sys.argv[1]))
c.startup(sys.argv[2], sys.argv[3])
try:
    t, p = c.read_msg()
    print("first answer:", t, pgwire.error_fields(p).get("C") if t == "E" else p[:4].hex())
except pgwire.Closed:
    print("first answer: closed")
PY
) || true
check_eq "plaintext: no password requested before refusing" "first answer: E 28000" "$out"
out=$(PGPASSWORD=$MG_TOKEN timeout 10 psql -X "host=127.0.0.1 port=$MG_PORT dbname=$DB user=$MG_USER sslmode=disable" -Atc "select 1" 2>&1 || true)
check_nomatch "psql sslmode=disable cannot log in" '^1$' "$out"
check_match "psql sslmode=disable gets a clear error" 'FATAL|SSL|TLS|encrypt' "$out"

# ---- earlier session untouched, new sessions fine
held_query "select 'held after';"
out=$(held_close)
check_eq "session opened before the bad logins still works" $'held before\nheld after' "$out"
accepts "a new login after all the refusals" "$MG_TOKEN"
if mg_alive; then ok "martgate still running"; else fail "martgate still running" "it exited" "$(mg_log_tail)"; fi

# ---- plaintext explicitly allowed
mg_stop
MG_CFG_ALLOW_PLAINTEXT=true mg_start $DB || h_die "martgate did not restart"
out=$(PGPASSWORD=$MG_TOKEN timeout 10 psql -X "host=127.0.0.1 port=$MG_PORT dbname=$DB user=$MG_USER sslmode=disable" -Atc "select 'plain ok'" 2>&1 || true)
check_eq "plaintext login works when allow_plaintext is true" "plain ok" "$out"
out=$(PGPASSWORD=$MG_TOKEN timeout 10 psql -X "$(tgt_conninfo $DB)" -Atc "select 'tls ok'" 2>&1 || true)
check_eq "TLS still works when plaintext is allowed" "tls ok" "$out"
h_done
