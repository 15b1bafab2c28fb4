#!/usr/bin/env bash
# check-layers.sh: the build's second guard of the layers (the first is the
# include directories, CMakeLists.txt). Reads the symbols of each built layer
# archive and fails when one calls a function that only a layer or library it
# may not use defines: policy/ calling into proxy/, proxy/ calling PQexec.
# A symbol counts as another layer's when that layer's archive defines it,
# as a library's when the library exports it; a symbol that an allowed layer
# or library also defines is allowed.
#
#   check-layers.sh --base LIBFILE ... --ext NAME=LIBFILE ... \
#                   --layer NAME=ARCHIVE:ALLOWED,... ...
#
# --base libraries (the C library, libm) are everyone's: a symbol they export
# is allowed whoever else defines it (libpg_query carries its own strnlen).
# An argument @FILE stands for the lines of FILE, one argument each (the
# build writes them to build/layers/check-layers.args).
# ALLOWED names the layers and --ext libraries the layer may call. Prints one
# line per violation ("proxy/x.c.o calls PQexec of libpq: ..."), exits 1.
set -euo pipefail

if [ $# -eq 1 ] && [ "${1:0:1}" = "@" ]; then
  mapfile -t args < "${1:1}"
  set -- "${args[@]}"
fi
declare -A ext_files=()     # name -> space-separated library files
layers=()                    # layer names, in order
declare -A archive=() allowed=()
base_files=()
while [ $# -gt 0 ]; do
  case "$1" in
    --base) base_files+=("$2"); shift 2 ;;
    --ext) n=${2%%=*}; ext_files[$n]="${ext_files[$n]:-} ${2#*=}"; shift 2 ;;
    --layer) n=${2%%=*}; rest=${2#*=}; layers+=("$n"); archive[$n]=${rest%:*}; allowed[$n]=${rest##*:}; shift 2 ;;
    *) echo "check-layers: unknown argument $1" >&2; exit 2 ;;
  esac
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# defined symbols of every owner (layer or library), one file each
defined_of() { # FILE: global defined symbols, version suffixes dropped
  case "$1" in
    *.so|*.so.*) nm -D --defined-only "$1" ;;
    *) nm -g --defined-only "$1" 2>/dev/null ;;
  esac | awk 'NF >= 3 {sub(/@.*/, "", $3); print $3}'
}
for n in "${!ext_files[@]}"; do
  for f in ${ext_files[$n]}; do
    [ -e "$f" ] || { echo "check-layers: $n: $f not found" >&2; exit 2; }
    defined_of "$f"
  done | sort -u > "$tmp/def.$n"
done
for n in "${layers[@]}"; do
  [ -e "${archive[$n]}" ] || { echo "check-layers: layer $n: ${archive[$n]} not found" >&2; exit 2; }
  defined_of "${archive[$n]}" | sort -u > "$tmp/def.$n"
done
for f in "${base_files[@]+"${base_files[@]}"}"; do
  [ -e "$f" ] || { echo "check-layers: base library $f not found" >&2; exit 2; }
  defined_of "$f"
done | sort -u > "$tmp/base"
owners=("${layers[@]}" "${!ext_files[@]}")

status=0
for n in "${layers[@]}"; do
  # symbols the layer itself or anything it may use defines
  cat "$tmp/base" "$tmp/def.$n" > "$tmp/ok"
  IFS=, read -r -a may <<< "${allowed[$n]}"
  for m in "${may[@]}"; do
    [ -f "$tmp/def.$m" ] || { echo "check-layers: layer $n may use '$m', which is not a layer or --ext" >&2; exit 2; }
    cat "$tmp/def.$m" >> "$tmp/ok"
  done
  sort -u -o "$tmp/ok" "$tmp/ok"
  # each object's undefined symbols, as "object symbol"
  nm -A -u "${archive[$n]}" 2>/dev/null |
    awk '{obj=$1; sub(/:$/, "", obj); sub(/.*:/, "", obj); print obj, $NF}' |
    sort -k2,2 > "$tmp/undef"
  # those that an owner it may not use defines, and nothing it may use does
  for o in "${owners[@]}"; do
    [ "$o" = "$n" ] && continue
    case ",${allowed[$n]}," in *",$o,"*) continue ;; esac
    join -1 2 -2 1 -o 1.1,1.2 "$tmp/undef" "$tmp/def.$o" |
      join -1 2 -2 1 -v 1 -o 1.1,1.2 - "$tmp/ok" > "$tmp/bad" || true
    while read -r obj sym; do
      what=$o
      [ -n "${ext_files[$o]:-}" ] || what="the $o layer"
      echo "check-layers: $n/${obj%.o} calls $sym of $what: layer $n may use only ${allowed[$n]}" >&2
      status=1
    done < "$tmp/bad"
  done
done
[ $status -eq 0 ] && echo "check-layers: ${layers[*]}: no call crosses a layer rule"
exit $status
