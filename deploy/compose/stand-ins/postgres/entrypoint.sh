#!/bin/sh
# First start: a cluster owned by $POSTGRES_USER with $POSTGRES_PASSWORD, database $POSTGRES_DB, then the
# init scripts; every start: the server on all interfaces, password authentication over TCP.
set -eu
user=${POSTGRES_USER:-postgres}
db=${POSTGRES_DB:-$user}
# A first start cut short (the container restarted half-way) starts over: the marker comes last.
if [ ! -f "$PGDATA/.initialized" ]; then
  find "$PGDATA" -mindepth 1 -delete
  pwfile=$(mktemp)
  printf '%s' "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is required}" >"$pwfile"
  initdb -D "$PGDATA" -U "$user" --pwfile="$pwfile" -E UTF8 --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  if [ "$db" != postgres ]; then
    psql -v ON_ERROR_STOP=1 -U "$user" -d postgres -c "CREATE DATABASE \"$db\"" >/dev/null
  fi
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sql) psql -v ON_ERROR_STOP=1 -U "$user" -d "$db" -f "$f" >/dev/null ;;
      *.sh) . "$f" ;;
    esac
  done
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  touch "$PGDATA/.initialized"
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' "$@"
