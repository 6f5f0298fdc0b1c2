#!/usr/bin/env bash
# Creates .venv and installs every distribution of the repo (editable) with the pinned versions.
# Uses uv when it is on PATH or already in the venv, pip otherwise; always with -c constraints.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"

if command -v uv >/dev/null 2>&1; then
  UV=$(command -v uv)
elif [ -x "$VENV/bin/uv" ] || "$VENV/bin/pip" install --disable-pip-version-check -q -c constraints.txt uv; then
  # uv from PyPI into the venv: much faster than pip, and its cache keeps built wheels (llama-cpp-python).
  UV="$VENV/bin/uv"
else
  UV=""
fi

install() {
  if [ -n "$UV" ]; then
    "$UV" pip install --python "$VENV/bin/python" -c constraints.txt "$@"
  else
    "$VENV/bin/pip" install --disable-pip-version-check -c constraints.txt "$@"
  fi
}

editables=(-e shared -e cli)
for service in services/*/; do
  [ -f "${service}pyproject.toml" ] && editables+=(-e "${service%/}")
done

requirements=()
for file in requirements/*.txt; do
  [ "$file" = requirements/no-deps.txt ] || requirements+=(-r "$file")
done

install "${requirements[@]}" "${editables[@]}"
nodeps=$(grep -v '^\s*#' requirements/no-deps.txt | grep -v '^\s*$' || true)
if [ -n "$nodeps" ]; then
  # shellcheck disable=SC2086
  install --no-deps $nodeps
fi

# --- deployment checks: checkov in its own venv (its pins conflict with the services'; tests/deploy) ---
TOOLS_VENV=.venv-tools
[ -x "$TOOLS_VENV/bin/python" ] || "$PYTHON" -m venv "$TOOLS_VENV"
if [ -n "$UV" ]; then
  "$UV" pip install --python "$TOOLS_VENV/bin/python" -c deploy/tools/constraints.txt -r deploy/tools/requirements.txt
else
  "$TOOLS_VENV/bin/pip" install --disable-pip-version-check -c deploy/tools/constraints.txt \
    -r deploy/tools/requirements.txt
fi
# --- end of deployment checks ---

touch "$VENV/.installed"
