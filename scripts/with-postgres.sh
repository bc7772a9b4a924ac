#!/usr/bin/env bash
# Start a throwaway PostgreSQL on 127.0.0.1 (a free port, a temporary directory, trust auth,
# no fsync), export its URL as IP_MONITOR_TEST_PG_URL, run the given command, then stop the
# server and remove the directory. Installs Debian's postgresql when it is missing.
# With IP_MONITOR_PG_DURABLE=1 the server keeps PostgreSQL's durable defaults (fsync,
# synchronous_commit, full_page_writes) and its URL goes to IP_MONITOR_BENCH_PG_DURABLE_URL.
# Usage: bash scripts/with-postgres.sh COMMAND [ARGS...]
set -euo pipefail

find_bin() {
    local d
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        [ -x "$d/initdb" ] && { echo "$d"; return; }
    done
    command -v initdb >/dev/null 2>&1 && dirname "$(command -v initdb)"
}

PG_BIN=$(find_bin || true)
if [ -z "$PG_BIN" ]; then
    echo "with-postgres: installing postgresql" >&2
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    else
        sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    fi
    PG_BIN=$(find_bin)
fi

# initdb refuses to run as root: run the server as the postgres user then.
run_pg() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

dir=$(mktemp -d /tmp/ip-monitor-pg.XXXXXX)
[ "$(id -u)" = 0 ] && chown postgres: "$dir"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

cleanup() {
    run_pg "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap cleanup EXIT

if [ "${IP_MONITOR_PG_DURABLE:-}" = 1 ]; then
    relaxed=""
else
    relaxed="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
fi
# TLS with the testkit's certificate for 127.0.0.1 (signed by testkit/fixtures/ca.pem), so
# tests can connect with sslmode=verify-full; plain connections are accepted too.
fixtures="$(cd "$(dirname "$0")/.." && pwd)/testkit/fixtures"
install -m 0600 "$fixtures/cert.pem" "$dir/server.crt"
install -m 0600 "$fixtures/key.pem" "$dir/server.key"
[ "$(id -u)" = 0 ] && chown postgres: "$dir/server.crt" "$dir/server.key"
tls="-c ssl=on -c ssl_cert_file=$dir/server.crt -c ssl_key_file=$dir/server.key"

run_pg "$PG_BIN/initdb" -D "$dir/data" -U postgres -A trust --no-sync -E UTF8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
run_pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir $relaxed -c max_connections=200 $tls" \
    start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }

url="postgres://postgres@127.0.0.1:$port/postgres"
if [ "${IP_MONITOR_PG_DURABLE:-}" = 1 ]; then
    unset IP_MONITOR_PG_DURABLE
    export IP_MONITOR_BENCH_PG_DURABLE_URL="$url"
    echo "with-postgres: durable PostgreSQL on 127.0.0.1:$port" >&2
else
    export IP_MONITOR_TEST_PG_URL="$url"
    # The same server over its Unix socket: reachable from a test's own network namespace.
    export IP_MONITOR_TEST_PG_SOCKET="$dir:$port"
    echo "with-postgres: PostgreSQL on 127.0.0.1:$port" >&2
fi
"$@"
