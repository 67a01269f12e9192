#!/usr/bin/env bash
# Every system package the test suite needs. Used by .ci/run and usable by a developer on a fresh machine.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  postgresql-15 postgresql-client-15 \
  mariadb-server mariadb-client \
  pgbouncer haproxy sysbench openssl \
  chromium >/dev/null
# pg_dump/pg_restore/psql 17 (Debian 13's, under a private prefix): a PostgreSQL 17 source needs pg_dump 17.
bash "$(dirname "$0")/install-pg-client-17.sh" >/dev/null
