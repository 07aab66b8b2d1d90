#!/usr/bin/env bash
# Runs Spot Optimizer on its embedded default: SQLite under ./spot-data, the simulated cloud,
# a demo organization (login printed at start) and the web UI at http://127.0.0.1:8080.
# Extra arguments go to `spot-optimizer serve` (e.g. --listen 127.0.0.1:9000).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/spot-optimizer/target}"

command -v cargo >/dev/null || { echo "cargo is required (https://rustup.rs)"; exit 1; }
command -v npm >/dev/null || { echo "npm (Node.js 20+) is required to build the web app"; exit 1; }

if [ ! -f web/node_modules/.package-lock.json ] || [ web/package-lock.json -nt web/node_modules/.package-lock.json ]; then
  (cd web && npm ci --no-audit --no-fund)
fi
if [ ! -f web/dist/index.html ] || [ -n "$(find web/src web/index.html -newer web/dist/index.html -print -quit)" ]; then
  (cd web && npm run build)
fi
# The same build as the test command (one feature set for everything): building the binary
# alone would unify features differently and recompile the AWS SDK crates a second time.
cargo test --workspace --no-run
exec "$CARGO_TARGET_DIR/debug/spot-optimizer" serve --demo "$@"
