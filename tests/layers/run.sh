#!/usr/bin/env bash
# tests/layers/run.sh BUILD_DIR: the layer rules fail the build when crossed.
# Each probe is a small C file compiled with the exact command the build uses
# for a file of that layer (BUILD_DIR/compile_commands.json), and, for the
# symbol rule, added to a copy of that layer's archive and given to
# scripts/check-layers.sh with the build's own arguments. Every rule has a
# control probe that must build, so a probe that fails for another reason
# (a broken command, a missing header) fails the test instead of passing it.
# Ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
build=$(cd "${1:-build}" && pwd) || { echo "layers: no build directory"; echo "0 passed, 1 failed"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   - $1"; }
bad() { fail=$((fail + 1)); echo "FAIL - $1"; [ -n "${2:-}" ] && sed 's/^/       /' <<< "$2"; }

# the compile command of one source of the layer (its objects go to
# CMakeFiles/martgate_LAYER.dir/), as a bash array literal
compile_cmd() { # LAYER
  python3 - "$build/compile_commands.json" "martgate_$1.dir/" <<'EOF'
import json, shlex, sys
entries = json.load(open(sys.argv[1]))
for e in entries:
    cmd = shlex.split(e["command"]) if "command" in e else e["arguments"]
    if any(sys.argv[2] in a for a in cmd) and e["file"].endswith(".c"):
        out = []
        skip = False
        for a in cmd:
            if skip:
                skip = False
                continue
            if a in ("-o", "-c", "-MF", "-MT", "-MQ"):
                skip = True
                continue
            if a == e["file"] or a in ("-MD", "-MMD"):
                continue
            out.append(a)
        print(" ".join(shlex.quote(a) for a in out))
        break
EOF
}

# compile SOURCE as if it were a file of LAYER (it is written into the layer's
# folder's place in the include search: the probe's own folder is tmp)
probe_compile() { # LAYER NAME SOURCE-TEXT -> 0 when it compiled; output in $tmp/NAME.log
  local layer=$1 name=$2 text=$3 cmd
  cmd=$(compile_cmd "$layer")
  [ -n "$cmd" ] || { echo "no compile command for $layer" > "$tmp/$name.log"; return 2; }
  printf '%s\n' "$text" > "$tmp/$name.c"
  eval "$cmd -c $tmp/$name.c -o $tmp/$name.o" > "$tmp/$name.log" 2>&1
}

expect_compile() { # LAYER NAME TEXT WHAT
  if probe_compile "$1" "$2" "$3"; then ok "$4"; else bad "$4" "$(cat "$tmp/$2.log")"; fi
}
expect_refused() { # LAYER NAME TEXT WHAT GREP
  if probe_compile "$1" "$2" "$3"; then
    bad "$4 (it compiled)"
  elif grep -q -- "$5" "$tmp/$2.log"; then
    ok "$4"
  else
    bad "$4 (failed, but not for the expected reason: $5)" "$(cat "$tmp/$2.log")"
  fi
}

# LAYER NAME HEADER WHAT: a file of LAYER that includes HEADER ("x/y.h", or
# <y.h> for a system one) does not compile, for that reason
include_refused() {
  local inc=$3 line
  case $inc in '<'*) line="#include $inc" ;; *) line="#include \"$inc\"" ;; esac
  inc=${inc#<}
  expect_refused "$1" "$2" "$line
int probe(void) { return 0; }" "$4" "${inc%>}: No such file"
}

# ---- include rules ------------------------------------------------------------
expect_compile common c_ok '#include "common/log.h"
int probe(void) { return 0; }' "common/ compiles with common/ headers (control)"
include_refused common c_policy 'policy/policy.h' "common/ cannot include policy/"
expect_compile policy p_ok '#include "common/json_doc.h"
#include "policy/decide.h"
int probe(void) { return 0; }' "policy/ compiles with common/ and policy/ headers (control)"
include_refused policy p_proxy 'proxy/session.h' "policy/ cannot include proxy/"
include_refused policy p_adapters 'adapters/catalog.h' "policy/ cannot include adapters/"
include_refused policy p_libpq '<libpq-fe.h>' "policy/ cannot include libpq"
# (libevent's and OpenSSL's headers are in /usr/include, which every
# compiler searches: for those the symbol rules below are the guard)
expect_compile adapters a_ok '#include <libpq-fe.h>
#include "adapters/postgres.h"
#include "common/log.h"
int probe(void) { return 0; }' "adapters/ compiles with libpq and its headers (control)"
include_refused adapters a_proxy 'proxy/session.h' "adapters/ cannot include proxy/"
include_refused adapters a_policy 'policy/policy.h' "adapters/ cannot include policy/"
expect_compile proxy x_ok '#include "adapters/postgres.h"
#include "policy/decide.h"
#include "proxy/session.h"
int probe(void) { return 0; }' "proxy/ compiles with every layer's headers (control)"
expect_compile proxy_state t_ok '#include "policy/decide.h"
#include "proxy/guard.h"
#include "proxy/relay_queue.h"
int probe(void) { return 0; }' "proxy_state compiles with its own, common/ and policy/ headers (control)"
include_refused proxy_state t_session 'proxy/session.h' "proxy_state (the guard, the relay queue) cannot include proxy/session.h"
include_refused proxy_state t_trail 'proxy/audit_trail.h' "proxy_state cannot include proxy/audit_trail.h"
include_refused proxy x_libpq '<libpq-fe.h>' "proxy/ cannot include libpq (only adapters/ may)"

# ---- symbol rules -----------------------------------------------------------
args_file=$build/layers/check-layers.args
check_with() { # LAYER PROBE-OBJECT -> runs check-layers.sh with that layer's archive + the object
  local layer=$1 obj=$2 a
  local -a args=()
  mapfile -t args < "$args_file"
  for i in "${!args[@]}"; do
    a=${args[$i]}
    if [ "${a%%=*}" = "$layer" ] && [ "${args[$((i - 1))]}" = "--layer" ]; then
      local spec=${a#*=} lib
      lib=${spec%:*}
      cp "$lib" "$tmp/$layer.a"
      ar rs "$tmp/$layer.a" "$obj" >/dev/null 2>&1
      args[$i]="$layer=$tmp/$layer.a:${spec##*:}"
    fi
  done
  bash scripts/check-layers.sh "${args[@]}" > "$tmp/check.log" 2>&1
}
expect_symbols() { # LAYER NAME TEXT WHAT [GREP: refused with this message]
  local layer=$1 name=$2 text=$3 what=$4 want=${5:-}
  if ! probe_compile "$layer" "$name" "$text"; then bad "$what (the probe did not compile)" "$(cat "$tmp/$name.log")"; return; fi
  if check_with "$layer" "$tmp/$name.o"; then
    if [ -z "$want" ]; then ok "$what"; else bad "$what (check-layers accepted it)" "$(cat "$tmp/check.log")"; fi
  elif [ -n "$want" ] && grep -q -- "$want" "$tmp/check.log"; then
    ok "$what"
  else
    bad "$what" "$(cat "$tmp/check.log")"
  fi
}
if [ ! -f "$args_file" ]; then
  bad "the build wrote $args_file"
else
  expect_symbols proxy s_ok '#include "adapters/postgres.h"
int probe(void) { return backend_fd(0); }' "proxy/ may call adapters/ (control)"
  expect_symbols proxy s_pqexec 'void *PQexec(void *conn, const char *query);
void *probe(void) { return PQexec(0, "select 1"); }' "proxy/ calling PQexec itself fails the check" "calls PQexec of libpq"
  expect_symbols policy s_session 'void session_flush(void *s);
void probe(void) { session_flush(0); }' "policy/ calling into proxy/ fails the check" "calls session_flush of the proxy layer"
  expect_symbols policy s_event 'void *event_base_new(void);
void *probe(void) { return event_base_new(); }' "policy/ calling libevent fails the check" "calls event_base_new of libevent"
  expect_symbols adapters s_session 'void session_flush(void *s);
void probe(void) { session_flush(0); }' "adapters/ calling into proxy/ fails the check" "of the proxy layer"
  expect_symbols proxy_state s_state_ok '#include "proxy/schema_list.h"
void probe(void) { schema_list_clear(0); }' "proxy_state may call itself (control)"
  expect_symbols proxy_state s_relay 'void relay_free(void *r);
void probe(void) { relay_free(0); }' "the guard calling into the relay fails the check" "calls relay_free of the proxy layer"
  expect_symbols proxy_state s_trail 'void trail_finish(void *s, void *r);
void probe(void) { trail_finish(0, 0); }' "the relay queue calling the audit trail fails the check" "calls trail_finish of the proxy layer"
  expect_symbols proxy_state s_close 'void session_close(void *s, const void *e);
void probe(void) { session_close(0, 0); }' "the guard ending the session itself fails the check" "calls session_close of the proxy layer"
  expect_symbols common s_decide 'int decide(void *a, void *b, void *c);
int probe(void) { return decide(0, 0, 0); }' "common/ calling into policy/ fails the check" "calls decide of the policy layer"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
