#!/usr/bin/env bash
# README's quick start: on a fresh Debian/Ubuntu machine, install exactly what `cutover rehearse` needs, build,
# and run it. Arguments go to `cutover rehearse` (e.g. --engine mariadb, --report out.html).
# Packages already present are not installed again, so a prepared machine needs neither root nor apt.
set -euo pipefail
cd "$(dirname "$0")/.."

engine=postgres
for ((i = 1; i <= $#; i++)); do
  case "${!i}" in
    --engine) j=$((i + 1)); engine="${!j:-postgres}" ;;
    --engine=*) engine="${!i#--engine=}" ;;
  esac
done

# What the rehearsal's sandboxes start: a Debian PostgreSQL 15 source (its pg_dump/psql serve the embedded
# target too) behind PgBouncer, or two MariaDB servers behind HAProxy.
need=()
if [ "$engine" = mariadb ]; then
  command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || need+=(mariadb-server)
  command -v mariadb-dump >/dev/null 2>&1 || need+=(mariadb-client)
  [ -x /usr/sbin/haproxy ] || need+=(haproxy)
else
  [ -x /usr/lib/postgresql/15/bin/initdb ] || need+=(postgresql-15)
  [ -x /usr/lib/postgresql/15/bin/pg_dump ] || need+=(postgresql-client-15)
  [ -x /usr/sbin/pgbouncer ] || need+=(pgbouncer)
fi

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "quickstart: missing ${need[*]}; run as root (or: sudo apt-get install -y ${need[*]}) and try again" >&2
    exit 2
  fi
  echo "quickstart: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

[ -d node_modules ] || npm ci --no-audit --no-fund   # its prepare step builds dist/
[ -f dist/src/cli/main.js ] || npm run build --silent
exec node dist/src/cli/main.js rehearse "$@"
