#!/usr/bin/env bash
# Creates the virtual environment the feature benchmark runs Feast from (PyPI's feast 0.67,
# whose SQLite online store is the comparison), in .build/feast-venv unless FEAST_VENV is set.
#   benchmarks/feast/setup.sh && .build/release/baton-bench features
set -euo pipefail
venv=${FEAST_VENV:-.build/feast-venv}
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import feast' 2>/dev/null; then
    echo "feast already installed in $venv: $("$venv/bin/python" -c 'import feast; print(feast.__version__)')"
    exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
"$venv/bin/pip" install --quiet 'feast==0.67.*'
echo "feast installed in $venv: $("$venv/bin/python" -c 'import feast; print(feast.__version__)')"
