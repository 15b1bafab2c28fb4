#!/usr/bin/env bash
# The Debian package (debian/, scripts/package.sh): built from this checkout
# (or the one build-deb/ holds for exactly these sources), inspected (files,
# conffiles, Depends found by dpkg-shlibdeps, version), installed with apt-get,
# then: the martgate user and its directories, /usr/bin/martgate --version,
# the shipped example config loads once its files exist, the installed binary
# run as user martgate against the test warehouse with an audit file in
# /var/log/martgate (psql logs in with a token), SIGHUP, a real rotation with
# the installed logrotate file and SIGUSR1, `systemd-analyze verify` and
# `logrotate -d` on the installed files, SIGTERM; finally `apt-get purge`
# removes the binary, the unit, the config and the user's files (the user and
# group stay, as Debian usually leaves system users). Runs once per suite: in
# the run for build/martgate, skipped for the sanitizer build. Needs root.
# The EXIT trap purges the package and removes the user when this test
# created it, whatever failed.
. "$(dirname "$0")/../lib/harness.sh"
h_init package

case $MARTGATE_BIN in
  */build/martgate) ;;
  *) skip "all" "MARTGATE_BIN=$MARTGATE_BIN: the package is built and tested once per suite, in the run for build/martgate"; h_done ;;
esac
if [ "$(id -u)" -ne 0 ]; then
  fail "root" "t_package installs and purges a Debian package and creates a system user: run it as root (CI does), e.g. sudo -E tests/integration/run.sh t_package"
  h_done
fi
for tool in dpkg-deb dpkg-query apt-get setpriv logrotate; do
  command -v "$tool" >/dev/null || { fail "tools" "$tool not found (run scripts/install-deps.sh)"; h_done; }
done

# One t_package at a time on this machine: it installs the system's martgate.
exec {PKG_LOCK}>/run/lock/martgate-t_package.lock
flock -w 120 "$PKG_LOCK" || h_die "another t_package holds /run/lock/martgate-t_package.lock"

if dpkg-query -W -f='${Status}' martgate 2>/dev/null | grep -q 'installed'; then
  fail "no martgate package installed before" "this machine has one ($(dpkg-query -W -f='${Version} ${Status}' martgate)); this test would replace and purge it, so it stops here"
  h_done
fi
PKG_USER_BEFORE=0; getent passwd martgate >/dev/null && PKG_USER_BEFORE=1
PKG_GROUP_BEFORE=0; getent group martgate >/dev/null && PKG_GROUP_BEFORE=1
PKG_INSTALLED=0
PKG_PIDS=()

# Whatever happens: stop our martgate, purge the package, remove the user and
# group if this test caused them, then the harness's own cleanup.
pkg_cleanup() {
  local pid
  for pid in "${PKG_PIDS[@]}"; do pid_alive "$pid" && stop_pid "$pid" 15; done
  if [ "$PKG_INSTALLED" -eq 1 ] || dpkg-query -W -f='${Status}' martgate 2>/dev/null | grep -Eq 'installed|config-files|half'; then
    DEBIAN_FRONTEND=noninteractive timeout 120 apt-get purge -y -q martgate >/dev/null 2>&1 ||
      timeout 60 dpkg --purge --force-remove-reinstreq martgate >/dev/null 2>&1
  fi
  if [ "$PKG_USER_BEFORE" -eq 0 ] && getent passwd martgate >/dev/null; then userdel martgate 2>/dev/null; fi
  if [ "$PKG_GROUP_BEFORE" -eq 0 ] && getent group martgate >/dev/null; then groupdel martgate 2>/dev/null; fi
  return 0
}
t_cleanup() { local rc=$?; set +e; trap - ERR; pkg_cleanup; (exit $rc); h_cleanup; }
trap t_cleanup EXIT

# ---- build (or reuse) the package
t0=$(now_ms)
deb=$(bash "$H_REPO/scripts/package.sh" --reuse --out "$H_REPO/build-deb" 2>"$T_DIR/package.err") && rc=0 || rc=$?
h_log "scripts/package.sh: $(( ($(now_ms) - t0) / 1000 )) s ($(tail -1 "$T_DIR/package.err"))"
if [ $rc -ne 0 ] || [ ! -f "$deb" ]; then
  fail "scripts/package.sh builds the .deb" "exit $rc" "$(tail -25 "$T_DIR/package.err")"
  h_done
fi
ok "scripts/package.sh builds the .deb"
version=$(sed -n 's/^project(martgate VERSION \([0-9.]*\).*/\1/p' "$H_REPO/CMakeLists.txt")
check_eq "the file is martgate_VERSION_amd64.deb (VERSION from CMake)" "martgate_${version}_amd64.deb" "$(basename "$deb")"
check_eq "its Version field is the CMake project version" "$version" "$(dpkg-deb -f "$deb" Version)"
h_log "$(basename "$deb"): $(stat -c %s "$deb") bytes, Installed-Size $(dpkg-deb -f "$deb" Installed-Size) KiB"

# ---- inspect
contents=$(dpkg-deb -c "$deb")
for f in ./usr/bin/martgate ./etc/martgate/martgate.json ./etc/logrotate.d/martgate; do
  check_match "dpkg-deb -c lists $f" " ${f//./\\.}\$" "$contents"
done
check_match "dpkg-deb -c lists the systemd unit" ' \./(usr/)?lib/systemd/system/martgate\.service$' "$contents"
check_match "/usr/bin/martgate is root-owned and 0755" '^-rwxr-xr-x root/root .* \./usr/bin/martgate$' "$contents"
unexpected=$(awk '$1 !~ /^d/ {print $6}' <<<"$contents" | grep -Ev '^\./(usr/bin/martgate|etc/martgate/martgate\.json|etc/logrotate\.d/martgate|(usr/)?lib/systemd/system/martgate\.service|usr/share/doc/martgate/.*)$' || true)
check_eq "nothing else is installed (no library, test or benchmark program)" "" "$unexpected"
check_eq "conffiles: the config and the logrotate file" $'/etc/logrotate.d/martgate\n/etc/martgate/martgate.json' \
  "$(dpkg-deb -I "$deb" conffiles 2>&1 | sort)"
depends=$(dpkg-deb -f "$deb" Depends)
h_log "Depends: $depends"
for lib in libevent-core libevent-extra libssl3 libpq5 libjansson4 libjwt libpg-query zlib1g libc6; do
  check_match "Depends (dpkg-shlibdeps) names $lib" "(^|, )$lib" "$depends"
done
check_match "debian/control's Depends is shlibs and misc (plus adduser for the postinst), no hand list" \
  '^Depends: \$\{shlibs:Depends\}, \$\{misc:Depends\}, adduser$' "$(grep '^Depends:' "$H_REPO/debian/control")"

# ---- install
out=$(DEBIAN_FRONTEND=noninteractive timeout 180 apt-get install -y -q "$deb" 2>&1) && rc=0 || rc=$?
PKG_INSTALLED=1
if [ $rc -ne 0 ]; then fail "apt-get install -y ./$(basename "$deb")" "exit $rc" "$(tail -20 <<<"$out")"; h_done; fi
ok "apt-get install -y ./$(basename "$deb")"
check_eq "dpkg says it is installed" "install ok installed $version" "$(dpkg-query -W -f='${Status} ${Version}' martgate)"

pw=$(getent passwd martgate || true)
IFS=: read -r _ _ uid gid _ home shell <<<"$pw"
if [ -n "$pw" ] && [ "$uid" -lt 1000 ]; then ok "postinst made martgate a system user (uid $uid)"
else fail "postinst made martgate a system user" "getent passwd: [$pw]"; fi
check_eq "its home is /var/lib/martgate" /var/lib/martgate "${home:-}"
check_match "its shell is nologin" 'nologin$' "${shell:-}"
check_eq "its primary group is the group martgate" "martgate" "$(getent group "${gid:-x}" | cut -d: -f1)"
for d in /var/log/martgate /var/lib/martgate; do
  check_eq "$d is martgate:martgate 750" "martgate:martgate 750" "$(stat -c '%U:%G %a' "$d" 2>&1)"
done
check_eq "/etc/martgate/martgate.json is root:root 644" "root:root 644" "$(stat -c '%U:%G %a' /etc/martgate/martgate.json 2>&1)"
check_eq "/usr/bin/martgate --version" "martgate $version" "$(timeout 10 /usr/bin/martgate --version 2>&1)"
wants=$(find /etc/systemd/system -name martgate.service 2>/dev/null || true)
check_eq "the unit is not enabled on install (the example config is not real yet)" "" "$wants"
unit=/lib/systemd/system/martgate.service
[ -f "$unit" ] || unit=/usr/lib/systemd/system/martgate.service
check_match "the unit runs /usr/bin/martgate serve --config /etc/martgate/martgate.json as martgate" \
  '^ExecStart=/usr/bin/martgate serve --config /etc/martgate/martgate.json$' "$(grep '^ExecStart=' "$unit")"
check_eq "ExecReload checks the file, then sends SIGHUP" \
  $'ExecReload=/usr/bin/martgate serve --config /etc/martgate/martgate.json --check\nExecReload=/bin/kill -HUP $MAINPID' \
  "$(grep '^ExecReload=' "$unit")"

# ---- the installed files pass their own tools
if command -v systemd-analyze >/dev/null; then
  out=$(timeout 60 systemd-analyze verify "$unit" 2>&1) && rc=0 || rc=$?
  if [ $rc -eq 0 ] && ! grep -q 'martgate' <<<"$out"; then ok "systemd-analyze verify $unit"
  else fail "systemd-analyze verify $unit" "exit $rc" "$out"; fi
else
  skip "systemd-analyze verify" "systemd-analyze not installed (scripts/install-deps.sh installs systemd)"
fi
out=$(timeout 30 logrotate -d -s "$T_DIR/logrotate-debug.state" /etc/logrotate.d/martgate 2>&1) && rc=0 || rc=$?
if [ $rc -eq 0 ] && grep -q 'pattern: /var/log/martgate/\*\.jsonl' <<<"$out" && grep -q 'pattern: /var/log/martgate/\*\.log' <<<"$out" &&
   ! grep -Eqi '^error' <<<"$out"; then ok "logrotate -d /etc/logrotate.d/martgate (*.jsonl and *.log, no error)"
else fail "logrotate -d /etc/logrotate.d/martgate" "exit $rc" "$out"; fi

# ---- the shipped example: strict loader errors name a missing file under
# /etc/martgate, and it loads once its files exist (paths moved to a test dir)
out=$(cd / && timeout 10 setpriv --reuid=martgate --regid=martgate --init-groups -- \
      /usr/bin/martgate serve --config /etc/martgate/martgate.json --check 2>&1) && rc=0 || rc=$?
if [ $rc -ne 0 ] && grep -q '/etc/martgate/' <<<"$out" && ! grep -Eqi 'unknown key|expected' <<<"$out"; then
  ok "the example config as shipped: --check names the missing file under /etc/martgate ($(head -c 120 <<<"$out"))"
else fail "the example config as shipped: --check names a missing file" "exit $rc" "$out"; fi

mg_setup_keys
EX=$T_DIR/example
mkdir -p "$EX/etc/tls" "$EX/etc/jwt" "$EX/etc/secrets" "$EX/etc/policy" "$EX/log"
cp "$MG_CERTS/server.crt" "$MG_CERTS/server.key" "$EX/etc/tls/"
cp "$MG_DIR/jwt-rs.pub.pem" "$EX/etc/jwt/idp.pub.pem"
cp "$MG_DIR/svc.pass" "$EX/etc/secrets/warehouse.pass"
cp "$MG_DIR/hash-mask.key" "$EX/etc/secrets/hash-mask.key"
cat >"$EX/etc/policy/all.json" <<'JSON'
{"datasets": {"everything": {"schemas": ["*"]}},
 "rules": [{"id": "readers", "subjects": {"groups": ["analysts"]}, "objects": {"datasets": ["everything"]}, "access": "read"}]}
JSON
sed -e "s#/etc/martgate/#$EX/etc/#g" -e "s#/var/log/martgate/#$EX/log/#g" /etc/martgate/martgate.json >"$EX/etc/martgate.json"
chown -R martgate:martgate "$EX"; chmod -R go-rwx "$EX"
out=$(cd / && timeout 10 setpriv --reuid=martgate --regid=martgate --init-groups -- \
      /usr/bin/martgate serve --config "$EX/etc/martgate.json" --check 2>&1) && rc=0 || rc=$?
if [ $rc -eq 0 ]; then ok "the example config loads once its files exist (--check as martgate: $out)"
else fail "the example config loads once its files exist" "exit $rc" "$out"; fi

# ---- the installed binary, as user martgate, against the test warehouse
MARTGATE_BIN=/usr/bin/martgate      # mg_token and everything after: the installed binary
export MARTGATE_BIN
DB=t_package
pg_createdb $DB
RUN=$T_DIR/run
mkdir -p "$RUN"
cp "$MG_DIR/jwt.secret" "$MG_DIR/jwt-rs.pub.pem" "$MG_DIR/svc.pass" "$MG_DIR/hash-mask.key" "$RUN/"
cp "$MG_CERTS/server.crt" "$MG_CERTS/server.key" "$RUN/"
MG_PORT=$(free_port)
MG_CONFIG=$RUN/martgate.json
MG_LOG=$T_DIR/martgate-package.log
AUDIT=/var/log/martgate/audit.jsonl
MG_CFG_CERT=$RUN/server.crt MG_CFG_KEY=$RUN/server.key \
MG_CFG_EXTRA="\"audit\": {\"file\": \"$AUDIT\"}" mg_write_config "$MG_CONFIG" $DB
chown -R martgate:martgate "$RUN"; chmod -R go-rwx "$RUN"
# exec_as_service CMD...: exec CMD as the unit runs it: user martgate, its
# environment (HOME, where libpq looks for ~/.postgresql and ~/.pgpass),
# UMask, working directory. It replaces the shell: run it with & only.
exec_as_service() {
  cd /var/lib/martgate
  umask 0027
  exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/var/lib/martgate USER=martgate LOGNAME=martgate \
    SHELL=/usr/sbin/nologin LANG=C.UTF-8 setpriv --reuid=martgate --regid=martgate --init-groups -- "$@"
}
exec_as_service /usr/bin/martgate serve --config "$MG_CONFIG" 2>>"$MG_LOG" &
MG_PID=$!
PKG_PIDS+=("$MG_PID"); H_MG_PIDS+=("$MG_PID")
if wait_until 10 mg_ready; then ok "the installed martgate starts as user martgate and listens"
else fail "the installed martgate starts as user martgate and listens" "not listening on $MG_PORT" "$(mg_log_tail)"; h_done; fi
check_eq "its process runs as martgate" "martgate" "$(ps -o user= -p "$MG_PID" | tr -d ' ')"

login_as() { # USER: a token for USER, then psql through martgate
  MG_USER=$1
  MG_TOKEN=$(mg_token --sub "$1" --groups analysts --ttl 1h)
  tgt_psql $DB -Atc "select 'logged in as ' || '$1'" 2>&1
}
audit_count() { # FILE USER: session_start records of USER in FILE
  python3 -c '
import json, sys
n = 0
for line in open(sys.argv[1]):
    r = json.loads(line)
    n += r.get("event") == "session_start" and r.get("user") == sys.argv[2]
print(n)' "$1" "$2" 2>&1
}
out=$(login_as pkg-before) || true
if [ "$out" = "logged in as pkg-before" ]; then ok "psql logs in through it with a token (verify-full TLS)"
else fail "psql logs in through it with a token (verify-full TLS)" "got [$out]" "$(mg_log_tail 8)"; fi
check_eq "martgate (as martgate) writes its audit file in /var/log/martgate, 640 under the unit's UMask" \
  "martgate:martgate 640" "$(stat -c '%U:%G %a' "$AUDIT" 2>&1)"
wait_until 5 grep -q pkg-before "$AUDIT" || true
check_eq "the audit file holds that login" 1 "$(audit_count "$AUDIT" pkg-before)"

n=$(grep -c 'configuration reloaded' "$MG_LOG" || true)
kill -HUP "$MG_PID"
if wait_until 10 mg_reloaded_since "$n"; then ok "SIGHUP (the unit's ExecReload) reloads it"
else fail "SIGHUP reloads it" "no 'configuration reloaded' line" "$(mg_log_tail 5)"; fi

# A real rotation with the installed file (our own state file, not the
# system's): the postrotate's systemctl cannot reach a service manager here
# and must not fail logrotate; then SIGUSR1 as the postrotate would send it.
out=$(timeout 30 logrotate -f -s "$T_DIR/logrotate.state" /etc/logrotate.d/martgate 2>&1) && rc=0 || rc=$?
rotated=$(ls /var/log/martgate/audit.jsonl-* 2>/dev/null | head -1 || true)
if [ $rc -eq 0 ] && [ -n "$rotated" ]; then ok "logrotate -f rotates the audit log (postrotate tolerant of no running service): $(basename "$rotated")"
else fail "logrotate -f rotates the audit log" "exit $rc, rotated [$rotated]" "$out" "$(ls -la /var/log/martgate)"; fi
check_eq "the new audit file is created martgate:martgate 640" "martgate:martgate 640" "$(stat -c '%U:%G %a' "$AUDIT" 2>&1)"
kill -USR1 "$MG_PID"
wait_until 5 grep -q 'audit: reopened' "$MG_LOG" || true
check_match "SIGUSR1 reopens the audit file" 'audit: reopened /var/log/martgate/audit.jsonl' "$(cat "$MG_LOG")"
check_eq "psql logs in again after the rotation" "logged in as pkg-after" "$(login_as pkg-after)"
wait_until 5 grep -q pkg-after "$AUDIT" || true
check_eq "the new login is in the new audit file" 1 "$(audit_count "$AUDIT" pkg-after)"
[ -n "$rotated" ] && check_eq "and not in the rotated one" 0 "$(audit_count "$rotated" pkg-after)"

mg_stop 20
check_eq "SIGTERM stops it, exit 0" 0 "$MG_EXIT"

# ---- purge
out=$(DEBIAN_FRONTEND=noninteractive timeout 120 apt-get purge -y -q martgate 2>&1) && rc=0 || rc=$?
if [ $rc -eq 0 ]; then ok "apt-get purge -y martgate"; PKG_INSTALLED=0
else fail "apt-get purge -y martgate" "exit $rc" "$(tail -20 <<<"$out")"; fi
check_eq "dpkg knows no martgate any more" "" "$(dpkg-query -W -f='${Status}' martgate 2>/dev/null | grep -v '^unknown ok not-installed$' || true)"
for p in /usr/bin/martgate "$unit" /etc/martgate /etc/logrotate.d/martgate /var/log/martgate /var/lib/martgate \
         /usr/share/doc/martgate /var/lib/systemd/deb-systemd-helper-enabled/martgate.service.dsh-also; do
  if [ -e "$p" ]; then fail "purge removed $p" "still there" "$(ls -la "$p" 2>&1 | head -5)"; else ok "purge removed $p"; fi
done
if getent passwd martgate >/dev/null && getent group martgate >/dev/null; then
  ok "the martgate user and group stay after purge (Debian's usual choice; this test removes them itself when it created them)"
else fail "the martgate user and group stay after purge" "gone: [$(getent passwd martgate)] [$(getent group martgate)]"; fi
check_eq "no file on the system belongs to martgate any more" "" \
  "$(find /etc /var /usr /opt /srv /home /root /run -xdev -user martgate -print 2>/dev/null | head -5 || true)"
h_done
