#!/usr/bin/env bash
# Builds Baton and runs it on the bundled example pipelines with the embedded SQLite store.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build -c release --product baton
mkdir -p examples/var
exec .build/release/baton up --pipelines examples/pipelines --db examples/var/baton.db --pool warehouse=1 "$@"
