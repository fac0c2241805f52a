#!/usr/bin/env bash
# The whole test suite: installs what the tests need, builds, and runs the Swift tests and the
# Python SDK's tests, and the end-to-end Python tests (API conformance, metrics exposition, browser,
# Python pipelines) against the real binary.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
swift build --build-tests
swift test --skip-build
# Debian's Selenium, pytest and jsonschema live in the system interpreter.
/usr/bin/python3 -m pytest -q sdk/python/tests
BATON_BINARY="$PWD/.build/debug/baton" /usr/bin/python3 -m pytest -q Tests/e2e
