#!/usr/bin/env bash
# Find the tools the build and the tests need, by their commands, and install what is missing
# where Debian's apt-get can (as root, or with sudo that needs no password). Elsewhere, say
# what to install and stop.
#
#   cc, perl, make   build SQLite, libpq and OpenSSL, which are compiled into the binary
#   python3          the test scripts
#   initdb, pg_ctl   the throwaway PostgreSQL server of the PostgreSQL tests
#   chromium         renders the email and the status page in the browser tests
#   named            BIND, the DNS server of the RFC 2136 update tests
#   spamassassin     SpamAssassin and rspamd score the notices offline in the filter tests
#   rspamd
#   openssl, dkimpy  make DKIM keys and verify the signatures independently (python3-dkim,
#                    python3-nacl for Debian's /usr/bin/python3)
#   postfix          a private Postfix with anvil limits: the throttling relay of the
#                    pacing tests (its own instance; the system's is not started)
#   ip, unshare      network namespaces with veth pairs for the interface tests (iproute2,
#                    util-linux; creating a namespace needs root)
#   natpmpc, upnpc   libnatpmp's and miniupnpc's clients: they check the fake router and
#                    the fake UPnP gateway of the router-source tests independently
set -euo pipefail

# "command-or-alternatives|debian-package|why"
wanted=(
    "cc|gcc|a C compiler, to build SQLite, libpq and OpenSSL into the binary"
    "perl|perl|OpenSSL's build"
    "make|make|OpenSSL's build"
    "python3|python3|the test and bench scripts"
    "initdb|postgresql|the throwaway PostgreSQL server of the PostgreSQL tests"
    "chromium chromium-browser google-chrome|chromium|the browser tests (skipped without it)|optional"
    "named|bind9|the DNS update tests against BIND (skipped without it)|optional"
    "postfix|postfix|the throttling-relay tests (skipped without it)|optional"
    "spamassassin|spamassassin|the spam-filter tests (skipped without it)|optional"
    "rspamd|rspamd|the spam-filter tests (skipped without it)|optional"
    "openssl|openssl|the DKIM tests (skipped without it)|optional"
    "dkimpy|python3-dkim|the DKIM tests' verifier (skipped without it)|optional"
    "nacl|python3-nacl|the DKIM tests' Ed25519 verifier (skipped without it)|optional"
    "ip|iproute2|the interface tests' veth pairs (skipped without it)|optional"
    "unshare|util-linux|the interface tests' network namespaces (skipped without it)|optional"
    "natpmpc|natpmpc|the check of the fake NAT-PMP router (skipped without it)|optional"
    "upnpc|miniupnpc|the check of the fake UPnP gateway (skipped without it)|optional"
)

found() {
    local c
    for c in $1; do
        command -v "$c" >/dev/null 2>&1 && return 0
        # Debian keeps PostgreSQL's server programs out of PATH, and named in /usr/sbin.
        [ "$c" = initdb ] && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && return 0
        [ "$c" = named ] && [ -x /usr/sbin/named ] && return 0
        [ "$c" = ip ] && [ -x /usr/sbin/ip ] && return 0
        [ "$c" = postfix ] && [ -x /usr/sbin/postfix ] && return 0
        [ "$c" = dkimpy ] && /usr/bin/python3 -c "import dkim" 2>/dev/null && return 0
        [ "$c" = nacl ] && /usr/bin/python3 -c "import nacl" 2>/dev/null && return 0
    done
    return 1
}

missing=()
why=()
required=0
for entry in "${wanted[@]}"; do
    IFS='|' read -r cmds pkg reason optional <<<"$entry"
    if ! found "$cmds"; then
        missing+=("$pkg")
        why+=("  ${cmds%% *}: $reason (Debian package: $pkg)")
        [ -n "$optional" ] || required=1
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo_=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo_="sudo"
    else
        sudo_="none"
    fi
fi
if ! command -v apt-get >/dev/null 2>&1 || [ "$sudo_" = none ]; then
    echo "setup: missing, and this script cannot install them here:" >&2
    printf '%s\n' "${why[@]}" >&2
    echo "setup: install them with your system's package manager, then run this again" >&2
    exit "$required"
fi
echo "setup: installing ${missing[*]}" >&2
$sudo_ apt-get update -qq
# Postfix's package asks how to configure the system's mail; the tests run their own.
echo "postfix postfix/main_mailer_type select No configuration" | $sudo_ debconf-set-selections 2>/dev/null || true
DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq "${missing[@]}" >/dev/null
