#!/usr/bin/env bash
# make-dev-certs.sh OUTDIR: a development CA and a server certificate for
# martgate (and for the test warehouse), valid for localhost, 127.0.0.1 and ::1.
#
#   OUTDIR/ca.crt       CA certificate: give it to clients (sslrootcert=...)
#   OUTDIR/ca.key       CA private key (0600)
#   OUTDIR/server.crt   server certificate signed by the CA
#   OUTDIR/server.key   server private key (0600)
#
# For development and tests only. Idempotent: files that exist and are still
# valid are kept; a missing or expiring server certificate is re-issued from the
# existing CA; a missing or expiring CA re-makes everything. Private keys are
# never meant for Git: when OUTDIR is inside a Git work tree, the script puts a
# .gitignore ("*") in it. Extra names: MARTGATE_CERT_SANS="DNS:db.test,IP:10.0.0.5".
set -euo pipefail

usage() { echo "usage: $0 OUTDIR" >&2; exit 2; }
[ $# -eq 1 ] || usage
out=$1
command -v openssl >/dev/null || { echo "make-dev-certs: openssl not found" >&2; exit 1; }

umask 077
mkdir -p "$out"
out=$(cd "$out" && pwd)

# Never let keys land in Git by accident.
if git -C "$out" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  top=$(git -C "$out" rev-parse --show-toplevel)
  if [ "$top" = "$out" ]; then
    echo "make-dev-certs: refusing to write keys into the top of the Git work tree $top; pick a subdirectory" >&2
    exit 1
  fi
  if [ ! -e "$out/.gitignore" ]; then
    printf '*\n' >"$out/.gitignore"
    chmod 0644 "$out/.gitignore"
    echo "made    $out/.gitignore (keeps these files out of Git)"
  fi
fi

sans="DNS:localhost,IP:127.0.0.1,IP:::1${MARTGATE_CERT_SANS:+,$MARTGATE_CERT_SANS}"
min_valid=$((7 * 24 * 3600))      # re-issue what expires within a week

valid_for_a_while() { # cert
  [ -s "$1" ] && openssl x509 -in "$1" -noout -checkend "$min_valid" >/dev/null 2>&1
}
key_matches_cert() { # key cert
  [ -s "$1" ] && [ -s "$2" ] || return 1
  local a b
  a=$(openssl pkey -in "$1" -pubout 2>/dev/null | openssl sha256) || return 1
  b=$(openssl x509 -in "$2" -noout -pubkey 2>/dev/null | openssl sha256) || return 1
  [ "$a" = "$b" ]
}
server_has_sans() {
  local text
  text=$(openssl x509 -in "$out/server.crt" -noout -ext subjectAltName 2>/dev/null) || return 1
  local want
  IFS=',' read -r -a want <<<"$sans"
  for s in "${want[@]}"; do
    case $s in
      IP:*) s="IP Address:${s#IP:}" ;;
    esac
    # openssl prints ::1 as 0:0:0:0:0:0:0:1
    [ "$s" = "IP Address:::1" ] && s="IP Address:0:0:0:0:0:0:0:1"
    grep -qF "$s" <<<"$text" || return 1
  done
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

made_ca=0
if valid_for_a_while "$out/ca.crt" && key_matches_cert "$out/ca.key" "$out/ca.crt"; then
  echo "kept    $out/ca.crt (development CA: $(openssl x509 -in "$out/ca.crt" -noout -enddate))"
else
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/ca.key" 2>/dev/null
  cat >"$tmp/ca.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
x509_extensions = v3_ca
[dn]
CN = martgate development CA
O = martgate (development only)
[v3_ca]
basicConstraints = critical, CA:true, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
EOF
  openssl req -new -x509 -key "$tmp/ca.key" -config "$tmp/ca.cnf" -days 3650 -sha256 \
    -set_serial "0x$(openssl rand -hex 12)" -out "$tmp/ca.crt"
  install -m 0600 "$tmp/ca.key" "$out/ca.key"
  install -m 0644 "$tmp/ca.crt" "$out/ca.crt"
  made_ca=1
  echo "made    $out/ca.key (CA private key, mode 0600)"
  echo "made    $out/ca.crt (development CA, 10 years)"
fi

if [ "$made_ca" -eq 0 ] && valid_for_a_while "$out/server.crt" \
   && key_matches_cert "$out/server.key" "$out/server.crt" \
   && openssl verify -CAfile "$out/ca.crt" "$out/server.crt" >/dev/null 2>&1 \
   && server_has_sans; then
  echo "kept    $out/server.crt ($(openssl x509 -in "$out/server.crt" -noout -ext subjectAltName | tail -n +2 | sed 's/^ *//'))"
else
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/server.key" 2>/dev/null
  cat >"$tmp/server.cnf" <<EOF
[req]
distinguished_name = dn
prompt = no
[dn]
CN = localhost
O = martgate (development only)
[v3_server]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, keyAgreement
extendedKeyUsage = serverAuth
subjectAltName = $sans
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EOF
  openssl req -new -key "$tmp/server.key" -config "$tmp/server.cnf" -out "$tmp/server.csr"
  openssl x509 -req -in "$tmp/server.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" \
    -set_serial "0x$(openssl rand -hex 12)" -days 825 -sha256 \
    -extfile "$tmp/server.cnf" -extensions v3_server -out "$tmp/server.crt" 2>/dev/null
  openssl verify -CAfile "$out/ca.crt" "$tmp/server.crt" >/dev/null
  install -m 0600 "$tmp/server.key" "$out/server.key"
  install -m 0644 "$tmp/server.crt" "$out/server.crt"
  echo "made    $out/server.key (server private key, mode 0600)"
  echo "made    $out/server.crt (signed by the CA; SAN $sans; 825 days)"
fi
# Keys stay private even if an earlier run or a copy loosened them.
chmod 0600 "$out/ca.key" "$out/server.key"
