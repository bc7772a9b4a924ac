#!/usr/bin/env bash
# The whole test suite: every crate, every feature, doc tests included, with a throwaway
# PostgreSQL on 127.0.0.1 for the PostgreSQL tests. Installs missing system packages first.
# Usage: bash scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec bash scripts/with-postgres.sh cargo test --workspace --all-features "$@"
