#!/usr/bin/env bash
# Regenerates constraints.txt: == pins of every package in .venv except the repo's own distributions.
set -euo pipefail
cd "$(dirname "$0")/.."
{
  echo "# Pins for every direct and transitive dependency. Regenerate with scripts/freeze-constraints.sh."
  .venv/bin/python -m pip freeze --exclude-editable --all 2>/dev/null \
    | grep -v -E '^(switchboard-|-e |#)' | grep -v ' @ ' | grep -v -E '^(pip|setuptools|wheel)==' | sort -f
} > constraints.txt

if [ -x .venv-tools/bin/python ]; then
  {
    echo "# Pins of the deployment-check tools venv (.venv-tools). Regenerate with scripts/freeze-constraints.sh."
    .venv-tools/bin/python -m pip freeze --all 2>/dev/null | grep -v -E '^(pip|setuptools|wheel)==' | grep -v ' @ ' | sort -f
  } > deploy/tools/constraints.txt
fi
