#!/usr/bin/env bash
# Builds the Debian package from this checkout and prints the path of the .deb.
#
#   scripts/package.sh [--out DIR] [--reuse]
#
# The sources (tracked files and untracked ones git does not ignore, as they
# are in the working tree) are copied to DIR/src (default build-deb/, which
# .gitignore covers) and built there with `dpkg-buildpackage -us -uc -b`, so
# the checkout itself is never written to. The packages land in DIR:
# martgate_VERSION_amd64.deb (and its -dbgsym). VERSION is debian/changelog's,
# which must equal CMakeLists.txt's project version.
# --reuse: when DIR already holds a .deb built from exactly these sources
# (DIR/source.sha256), print it and build nothing.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out=$repo/build-deb
reuse=0
while [ $# -gt 0 ]; do
  case $1 in
    --out) out=$2; shift 2 ;;
    --reuse) reuse=1; shift ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "package.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
for tool in dpkg-buildpackage dh dpkg-parsechangelog fakeroot git; do
  command -v "$tool" >/dev/null || { echo "package.sh: $tool not found (run scripts/install-deps.sh)" >&2; exit 1; }
done
cd "$repo"
git rev-parse --git-dir >/dev/null 2>&1 || { echo "package.sh: $repo is not a git checkout (the file list comes from git)" >&2; exit 1; }
version=$(dpkg-parsechangelog -l debian/changelog -S Version)
cmake_version=$(sed -n 's/^project(martgate VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
if [ "$version" != "$cmake_version" ]; then
  echo "package.sh: debian/changelog says $version but CMakeLists.txt says $cmake_version (dch -v $cmake_version)" >&2
  exit 1
fi
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
deb=$out/martgate_${version}_${arch}.deb

# What gets built: every file git would commit, with its contents now.
mapfile -d '' files < <(git ls-files -z --cached --others --exclude-standard)
present=()
for f in "${files[@]}"; do [ -e "$f" ] && present+=("$f"); done   # a deleted, unstaged file is gone
sum=$(printf '%s\0' "${present[@]}" | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
if [ $reuse -eq 1 ] && [ -f "$deb" ] && [ "$(cat "$out/source.sha256" 2>/dev/null)" = "$sum" ]; then
  echo "package.sh: $deb is built from these sources already" >&2
  echo "$deb"
  exit 0
fi

mkdir -p "$out"
out=$(cd "$out" && pwd); deb=$out/martgate_${version}_${arch}.deb
rm -rf "$out/src" "$out/source.sha256" "$out"/martgate_* "$out"/martgate-dbgsym_*
src=$out/src/martgate-$version
mkdir -p "$src"
printf '%s\0' "${present[@]}" | tar --null -T - -cf - | tar -xf - -C "$src"
jobs=${PACKAGE_JOBS:-$(nproc)}
echo "package.sh: building martgate $version in $src (-j$jobs)" >&2
if ! (cd "$src" && DEB_BUILD_OPTIONS="parallel=$jobs ${DEB_BUILD_OPTIONS:-}" \
        dpkg-buildpackage -us -uc -b >"$out/build.log" 2>&1); then
  tail -40 "$out/build.log" >&2
  echo "package.sh: dpkg-buildpackage failed; the whole log is $out/build.log" >&2
  exit 1
fi
# dpkg-buildpackage writes next to the source directory: bring them to $out
mv "$out/src"/martgate*.deb "$out/src"/martgate_*.buildinfo "$out/src"/martgate_*.changes "$out/" 2>/dev/null || true
rm -rf "$out/src"
[ -f "$deb" ] || { echo "package.sh: $deb was not produced (see $out/build.log)" >&2; exit 1; }
echo "$sum" >"$out/source.sha256"
echo "$deb"
