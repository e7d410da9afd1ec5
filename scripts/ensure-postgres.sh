#!/usr/bin/env bash
# Tests run on SQLite and on PostgreSQL (127.0.0.1:5432, trust auth, database 'test').
# Start the local cluster if it is installed but not running; under CI, absence fails.
set -u
ready() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
ready && exit 0
if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start >/dev/null 2>&1 || true
  for _ in $(seq 1 20); do ready && exit 0; sleep 0.5; done
fi
if [ "${CI:-}" = "true" ]; then
  echo "CI: PostgreSQL is not reachable at 127.0.0.1:5432." >&2
  exit 1
fi
echo "NOTE: PostgreSQL not reachable at 127.0.0.1:5432; PostgreSQL tests will be skipped." >&2
exit 0
