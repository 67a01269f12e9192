#!/usr/bin/env bash
# pg_dump, pg_restore and psql 17 for a Debian 12 machine, which ships only the 15 client: pg_dump refuses servers
# newer than itself, so moving a PostgreSQL 17 source needs them. Debian 13 (trixie) packages them; they need
# trixie's glibc (2.38+), so the packages and their library closure are unpacked under one private prefix and each
# program runs through that prefix's own dynamic loader. Nothing of the system is replaced; apt does not see it.
# Wrappers go to /usr/lib/postgresql/17/bin, where Debian keeps a 17 client and where cutover looks first.
set -euo pipefail
PREFIX=${PREFIX:-/opt/cutover/pg-client-17}
BIN=${BIN:-/usr/lib/postgresql/17/bin}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
if [ -x "$BIN/pg_dump" ] && "$BIN/pg_dump" --version | grep -q ' 17\.'; then
  echo "pg_dump 17 already at $BIN"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
curl -fsS -o "$work/Packages.xz" "$MIRROR/dists/trixie/main/binary-amd64/Packages.xz"
xz -dc "$work/Packages.xz" >"$work/Packages"
# The dependency closure of the three programs' packages, as "name filename" lines (alternatives: the first).
python3 - "$work/Packages" postgresql-client-17 libc6 >"$work/closure" <<'PY'
import re, sys
packages = {}
for block in open(sys.argv[1], encoding='utf-8').read().split('\n\n'):
    f = dict(re.findall(r'^([A-Za-z-]+): (.*)$', block, re.M))
    if 'Package' in f:
        packages[f['Package']] = f
# Provided by the system or not needed to run the libraries: scripts, configuration, the C library's tools.
skip = {'postgresql-client-common', 'sensible-utils', 'debconf', 'readline-common', 'libpam-modules', 'libpam-runtime', 'libsasl2-modules-db', 'libldap-common', 'krb5-locales', 'libgcc-s1', 'gcc-14-base'}
seen, todo = set(), list(sys.argv[2:]) + ['libgcc-s1']
while todo:
    name = todo.pop()
    if name in seen or name not in packages:
        continue
    seen.add(name)
    for dep in re.split(r',\s*', packages[name].get('Depends', '') + (', ' + packages[name]['Pre-Depends'] if 'Pre-Depends' in packages[name] else '')):
        first = dep.split('|')[0].strip().split(' ')[0].split(':')[0]
        if first and first not in skip:
            todo.append(first)
for name in sorted(seen):
    print(name, packages[name]['Filename'])
PY
mkdir -p "$PREFIX"
while read -r name file; do
  curl -fsS -o "$work/$name.deb" "$MIRROR/$file"
  dpkg-deb -x "$work/$name.deb" "$PREFIX"
done <"$work/closure"
libs="$PREFIX/usr/lib/x86_64-linux-gnu:$PREFIX/lib/x86_64-linux-gnu"
loader="$PREFIX/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
[ -x "$loader" ] || loader="$PREFIX/lib64/ld-linux-x86-64.so.2"
mkdir -p "$BIN"
for prog in pg_dump pg_restore psql; do
  cat >"$BIN/$prog" <<SH
#!/bin/sh
# PostgreSQL 17 $prog from Debian trixie, run with its own C library (scripts/ci/install-pg-client-17.sh).
exec "$loader" --library-path "$libs" "$PREFIX/usr/lib/postgresql/17/bin/$prog" "\$@"
SH
  chmod 0755 "$BIN/$prog"
done
"$BIN/pg_dump" --version
