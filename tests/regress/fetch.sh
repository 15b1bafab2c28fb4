#!/usr/bin/env bash
# Fetches PostgreSQL's regression SQL from Debian's postgresql-15 source
# package and prints the directory holding src/test/regress (sql/, data/).
# apt does the fetching and checks the archive's signatures: a private apt
# configuration with one deb-src entry (bookworm's main suite, the point
# release's version: the security suite's newer sources are not always on the
# mirror), its lists under the cache, `apt-get source --download-only`. Only
# src/test/regress is unpacked, once, into the cache:
#   MG_REGRESS_CACHE (default ${XDG_CACHE_HOME:-$HOME/.cache}/martgate-test/regress)
# Nothing of PostgreSQL's source is kept in the checkout. The SQL's minor
# version need not be the server's: the test compares the server with itself.
set -euo pipefail
cache=${MG_REGRESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/martgate-test/regress}
mirror=${MG_DEBIAN_MIRROR:-http://deb.debian.org/debian}
mkdir -p "$cache"
done_mark=$(ls -d "$cache"/postgresql-15-*/src/test/regress/.unpacked 2>/dev/null | head -1 || true)
if [ -n "$done_mark" ]; then dirname "$done_mark"; exit 0; fi
apt_dir=$cache/apt
mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial"
cat >"$apt_dir/sources.list" <<SRC
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror bookworm main
SRC
apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
          -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache::Archives=$apt_dir/archives"
          -o "APT::Sandbox::User=root" -q)
apt-get "${apt_opts[@]}" update >&2
(cd "$cache" && apt-get "${apt_opts[@]}" source --download-only postgresql-15 >&2)
tarball=$(ls "$cache"/postgresql-15_*.orig.tar.bz2 | sort -V | tail -1)
[ -f "$tarball" ] || { echo "fetch.sh: no postgresql-15 orig tarball in $cache" >&2; exit 1; }
version=$(basename "$tarball" | sed 's/^postgresql-15_\(.*\)\.orig\.tar\.bz2$/\1/')
tar -xjf "$tarball" -C "$cache" "postgresql-$version/src/test/regress/sql" "postgresql-$version/src/test/regress/data" \
  "postgresql-$version/src/test/regress/parallel_schedule"
mv "$cache/postgresql-$version" "$cache/postgresql-15-$version"
chmod -R a+rX "$cache/postgresql-15-$version"
touch "$cache/postgresql-15-$version/src/test/regress/.unpacked"
echo "$cache/postgresql-15-$version/src/test/regress"
