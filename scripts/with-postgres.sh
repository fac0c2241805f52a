#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL server on 127.0.0.1 and BATON_TEST_POSTGRES_URL
# pointing at it; the server and its folder are removed when the command ends, fails or is
# interrupted. Needs Debian's postgresql (scripts/install-deps.sh --test installs it).
#   scripts/with-postgres.sh swift test --skip-build --filter BatonStoreTests
# With BATON_TEST_POSTGRES_URL already set, the command runs against that server instead.
set -euo pipefail
if [ -n "${BATON_TEST_POSTGRES_URL:-}" ]; then
    exec "$@"
fi
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
    echo "with-postgres: no PostgreSQL server under /usr/lib/postgresql; run scripts/install-deps.sh --test" >&2
    exit 1
fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/baton-postgres.XXXXXX")
# PostgreSQL refuses to run as root: as root the server runs as the postgres user.
as_server() {
    if [ "$(id -u)" = "0" ]; then su postgres -s /bin/sh -c "$1"; else sh -c "$1"; fi
}
if [ "$(id -u)" = "0" ]; then chown postgres "$dir"; fi
stop() {
    as_server "'$bin/pg_ctl' -D '$dir/data' -m immediate stop" >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_server "'$bin/initdb' -D '$dir/data' -A trust -U postgres -E UTF8 --no-sync" >"$dir/initdb.log" 2>&1 || {
    cat "$dir/initdb.log" >&2
    exit 1
}
# Test data only: fsync off makes the many databases the tests create quick to set up.
options="-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off"
as_server "'$bin/pg_ctl' -D '$dir/data' -o '$options' -l '$dir/server.log' -w -t 60 start" >/dev/null || {
    cat "$dir/server.log" >&2
    exit 1
}
export BATON_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
echo "with-postgres: PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (removed at exit)"
status=0
"$@" || status=$?
exit "$status"
