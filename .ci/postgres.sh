# Sourced by .ci/run: install and start a local PostgreSQL and set
# COVENANT_TEST_POSTGRES_URL. Returns non-zero if it cannot.
pg_start() {
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) \
      >/tmp/covenant-pg-install.log 2>&1 || return 1
  fi
  local version
  version=$(ls /usr/lib/postgresql | sort -V | tail -n1)
  pg_ctlcluster "$version" main start >/dev/null 2>&1 || service postgresql start >/dev/null 2>&1 || return 1
  su postgres -c "psql -qc \"DROP DATABASE IF EXISTS covenant_test\"" >/dev/null 2>&1 || return 1
  su postgres -c "psql -qc \"DO \\\$\\\$ BEGIN CREATE ROLE covenant LOGIN PASSWORD 'covenant'; EXCEPTION WHEN duplicate_object THEN NULL; END \\\$\\\$\"" >/dev/null || return 1
  su postgres -c "psql -qc \"CREATE DATABASE covenant_test OWNER covenant\"" >/dev/null || return 1
  COVENANT_TEST_POSTGRES_URL="postgresql+psycopg://covenant:covenant@127.0.0.1:5432/covenant_test"
}
pg_start
