#!/usr/bin/env bash
# Installs what building and testing Baton needs on Debian: the system SQLite headers that
# GRDB links against, and python3 for the example pipelines and tests.
set -euo pipefail
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
need=()
dpkg -s libsqlite3-dev >/dev/null 2>&1 || need+=(libsqlite3-dev)
command -v python3 >/dev/null 2>&1 || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
    $SUDO apt-get update
    $SUDO apt-get install -y "${need[@]}"
fi
