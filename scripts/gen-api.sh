#!/usr/bin/env bash
# Regenerates web/openapi.json from the server and the typed web client from it.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/spot-optimizer/target}"
# The test build produces the binary too; building only the binary would unify features
# differently and rebuild much of the tree.
cargo test --workspace --no-run -q
"$CARGO_TARGET_DIR/debug/spot-optimizer" openapi > web/openapi.json
(cd web && npm run -s gen:api)
