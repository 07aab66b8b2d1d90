#!/usr/bin/env bash
# Regenerates web/openapi.json from the server and the typed web client from it.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/spot-optimizer/target}"
cargo run -q --bin spot-optimizer -- openapi > web/openapi.json
(cd web && npm run -s gen:api)
