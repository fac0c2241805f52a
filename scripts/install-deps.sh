#!/usr/bin/env bash
# Installs what building and testing Baton needs on Debian.
#   scripts/install-deps.sh          build and run: SQLite headers (GRDB links the system SQLite), python3
#   scripts/install-deps.sh --test   also what the test suite drives for real: PostgreSQL (the store
#                                    tests run against a throwaway server too), headless Chromium with
#                                    Selenium, promtool, pytest, jsonschema, the Prometheus parser, and
#                                    venv and setuptools to pip-install the Python SDK
set -euo pipefail
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
packages=(libsqlite3-dev python3)
if [ "${1:-}" = "--test" ]; then
    packages+=(postgresql chromium chromium-driver python3-selenium python3-pytest python3-jsonschema
               python3-prometheus-client prometheus wrk procps python3-venv python3-setuptools)
fi
need=()
for package in "${packages[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || need+=("$package")
done
if [ ${#need[@]} -gt 0 ]; then
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${need[@]}"
fi
