#!/usr/bin/env bash
# The whole test suite: every crate, every feature, doc tests included.
# Usage: bash scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --all-features "$@"
