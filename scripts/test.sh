#!/usr/bin/env bash
# The whole test suite: installs what the tests need, builds, and runs the Swift tests (the store
# tests on SQLite and on PostgreSQL) and the Python SDK's tests, and the end-to-end Python tests
# (API conformance, metrics exposition, browser, Python pipelines, the official mlflow client)
# against the real binary.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
# The rest runs beside a throwaway PostgreSQL on 127.0.0.1 (BATON_TEST_POSTGRES_URL), which
# with-postgres.sh stops and removes when the tests end, pass or fail.
[ -n "${BATON_TEST_POSTGRES_URL:-}" ] || exec scripts/with-postgres.sh "$0" "$@"
swift build --build-tests
swift test --skip-build
# Debian's Selenium, pytest and jsonschema live in the system interpreter.
/usr/bin/python3 -m pytest -q sdk/python/tests
BATON_BINARY="$PWD/.build/debug/baton" /usr/bin/python3 -m pytest -q Tests/e2e
