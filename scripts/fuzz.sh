#!/usr/bin/env bash
# Fuzz the parsers with cargo-fuzz (libFuzzer): source answers, Cloudflare traces, URL
# templates and recipient rows, and the configuration loader.
# Usage: bash scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 60)
#
# cargo-fuzz needs nightly-only compiler flags; with only a stable toolchain at hand,
# RUSTC_BOOTSTRAP=1 lets stable rustc accept them. No sanitizer is used (that needs a
# nightly standard library); libFuzzer's coverage guidance and the targets' own assertions
# do the work.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1
cargo fuzz build -s none -O
mkdir -p fuzz/corpus fuzz/artifacts
status=0
for target in source_answer cloudflare_trace notice_inputs config; do
    echo "fuzz: $target for ${secs}s" >&2
    if ! cargo fuzz run -s none -O "$target" -- -max_total_time="$secs" -rss_limit_mb=4096 \
        > "fuzz/artifacts/$target.log" 2>&1; then
        echo "fuzz: $target FAILED" >&2
        tail -40 "fuzz/artifacts/$target.log" >&2
        status=1
    else
        runs=$(grep -oE "Done [0-9]+ runs" "fuzz/artifacts/$target.log" | tail -1)
        echo "fuzz: $target ok: ${runs:-?} in ${secs}s, 0 crashes" >&2
    fi
done
exit $status
