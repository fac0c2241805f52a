#!/usr/bin/env bash
# Installs what building and testing Baton needs on Debian.
#   scripts/install-deps.sh          build and run: SQLite headers (GRDB links the system SQLite), python3
#   scripts/install-deps.sh --test   also what the test suite drives for real: PostgreSQL (the store
#                                    tests run against a throwaway server too), headless Chromium with
#                                    Selenium, promtool, pytest, jsonschema, the Prometheus parser, and
#                                    venv and setuptools to pip-install the Python SDK, wrk, and the
#                                    official mlflow client pinned in scripts/mlflow-requirements.txt
#                                    in .venv-mlflow/ (the MLflow-compatibility tests and benchmark)
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

if [ "${1:-}" = "--test" ]; then
    # The official mlflow client (the full package: loading a pyfunc model needs pandas) in a venv
    # at the repository root; kept when it already has the pinned version.
    root="$(cd "$(dirname "$0")/.." && pwd)"
    venv="$root/.venv-mlflow"
    requirement="$(grep -v '^#' "$root/scripts/mlflow-requirements.txt" | head -n 1)"
    version="${requirement#mlflow==}"
    if ! ls -d "$venv"/lib/python3*/site-packages/mlflow-"$version".dist-info >/dev/null 2>&1 \
        || ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
        rm -rf "$venv"
        /usr/bin/python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$root/scripts/mlflow-requirements.txt"
    fi
fi
