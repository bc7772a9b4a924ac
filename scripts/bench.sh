#!/usr/bin/env bash
# Every benchmark: the criterion check bench, the outbox load bench on SQLite and a throwaway
# PostgreSQL, and the SMTP fan-out beside Postfix's smtp-source — through the release binary
# and the library, on SQLite and on PostgreSQL fsync-off and durable (two throwaway servers).
# Installs what is missing (Debian's postfix brings smtp-sink and smtp-source; its daemon is
# not left running).
# Usage: bash scripts/bench.sh [--bench NAME]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if ! command -v smtp-sink >/dev/null 2>&1 && ! [ -x /usr/sbin/smtp-sink ]; then
    sudo_=""
    [ "$(id -u)" = 0 ] || sudo_="sudo"
    echo "bench: installing postfix for smtp-sink and smtp-source" >&2
    DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq postfix >/dev/null
    $sudo_ postfix stop >/dev/null 2>&1 || true
fi
export PATH="$PATH:/usr/sbin"
cargo build --release -p ip-monitor-standalone
export IP_MONITOR_BIN="$PWD/target/release/ip-monitor"
IP_MONITOR_PG_DURABLE=1 exec bash scripts/with-postgres.sh \
    bash scripts/with-postgres.sh cargo bench -p ip-monitor-benches "$@"
