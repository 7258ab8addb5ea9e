#!/usr/bin/env bash
# `npm run test:compose`: runs docker-compose.yml for real on this machine, with images built here without
# any registry of images (images.sh), on host networking and ports of its own (compose.test.yml): Postgres,
# Redis, the one-shot migrate, the API and two CPU workers; submits a batch (check-stack.mjs), checks the
# containers (health, non-root, production-only, migrations once, SIGTERM drains to exit 0), and tears
# everything down: containers, network, volumes, the images it made (unless --keep-images) and dockerd if it
# started it. Exits non-zero on any failure. Needs root (dockerd, debootstrap), docker.io, docker-compose,
# debootstrap (first run only), node and npm.
#
#   npm run test:compose [-- --keep-images] [-- --images-per-class N]
#
# Ports (override with the variables): Postgres TEST_PG_PORT=5450, Redis TEST_REDIS_PORT=6450, API
# TEST_API_PORT=8450, worker metrics TEST_METRICS_PORT_1=9450 and TEST_METRICS_PORT_2=9451.
set -Eeuo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CACHE="$ROOT/.cache/compose-test"
KEEP_IMAGES=0
IMAGES_PER_CLASS="${IMAGES_PER_CLASS:-8}"
while (($#)); do
  case "$1" in
    --keep-images) KEEP_IMAGES=1 ;;
    --images-per-class) IMAGES_PER_CLASS="${2:?--images-per-class needs a number}" && shift ;;
    -h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' && exit 0 ;;
    *) echo "test:compose: unknown argument $1 (see --help)" >&2 && exit 2 ;;
  esac
  shift
done

export TEST_PG_PORT="${TEST_PG_PORT:-5450}" TEST_REDIS_PORT="${TEST_REDIS_PORT:-6450}"
export TEST_API_PORT="${TEST_API_PORT:-8450}"
export TEST_METRICS_PORT_1="${TEST_METRICS_PORT_1:-9450}" TEST_METRICS_PORT_2="${TEST_METRICS_PORT_2:-9451}"
PREFIX=garbage-compose-test
export BASE_IMAGE="$PREFIX/debian:bookworm-minbase" NODE_IMAGE="$PREFIX/node:22"
export POSTGRES_IMAGE="$PREFIX/postgres:15" REDIS_IMAGE="$PREFIX/redis:7"
export API_IMAGE="$PREFIX/api:test" WORKER_IMAGE="$PREFIX/worker:test"
# Fresh secrets per run, never written to the repository.
POSTGRES_PASSWORD="$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
API_KEY="$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
export POSTGRES_PASSWORD POSTGRES_DB=garbage API_KEYS="$API_KEY"

TMP="$(mktemp -d -t garbage-compose-test.XXXXXX)"
DOCKER="${DOCKER:-}"
STARTED_DOCKERD=0
DOCKERD_PID=""
CREATED_IMAGES=()
COMPOSE_UP=0
T0=$SECONDS

log() { printf '[test:compose %4ds] %s\n' "$((SECONDS - T0))" "$*"; }
die() {
  printf '[test:compose %4ds] FAILED: %s\n' "$((SECONDS - T0))" "$*" >&2
  exit 1
}
compose() {
  # An empty env file: a developer's .env never leaks into the test (every variable is exported above).
  local files=(-f "$ROOT/docker-compose.yml" -f "$HERE/compose.test.yml")
  [[ -f "$TMP/compose.yml" ]] && files=(-f "$TMP/compose.yml")
  docker-compose --project-name "$PREFIX" --project-directory "$ROOT" --env-file "$TMP/empty.env" "${files[@]}" "$@"
}

# docker-compose.yml with compose.test.yml, merged by compose itself, less the API's published port: Docker
# refuses port bindings on host networking, and an overlay cannot remove a list entry.
render_compose() {
  compose config >"$TMP/merged.yml" || die "docker-compose config failed"
  /usr/bin/python3 - "$TMP/merged.yml" "$TMP/compose.yml" <<'PY' || die "could not rewrite the merged compose file"
import sys, yaml
config = yaml.safe_load(open(sys.argv[1]))
for service in config["services"].values():
    if service.get("network_mode") == "host":
        service.pop("ports", None)
yaml.safe_dump(config, open(sys.argv[2], "w"), sort_keys=False)
PY
}

teardown() {
  local rc=$?
  set +e
  if ((COMPOSE_UP)); then
    if ((rc != 0)); then
      log "logs of the failed run (last 40 lines per service):"
      compose logs --no-color --tail 40 >&2
    fi
    log "compose down (containers, network, volumes)"
    compose down --volumes --remove-orphans --timeout 30 >"$TMP/down.log" 2>&1 || cat "$TMP/down.log" >&2
  fi
  if ((!KEEP_IMAGES)) && ((${#CREATED_IMAGES[@]})); then
    log "removing the images this run made"
    "$DOCKER" image rm --force "${CREATED_IMAGES[@]}" >/dev/null 2>&1
    # BuildKit's cache of this run's builds (npm ci layers and downloads), kept with --keep-images.
    "$DOCKER" builder prune --force >/dev/null 2>&1
    # The multi-stage builds' intermediate stages, left untagged: only those that were not there before.
    local dangling=""
    [[ -f "$TMP/dangling-before" ]] && dangling="$(comm -13 "$TMP/dangling-before" <("$DOCKER" images --quiet --filter dangling=true | sort -u))"
    [[ -z "$dangling" ]] || "$DOCKER" image rm --force $dangling >/dev/null 2>&1
  fi
  if ((STARTED_DOCKERD)); then
    log "stopping the dockerd this run started (pid $DOCKERD_PID)"
    kill "$DOCKERD_PID" 2>/dev/null
    for _ in $(seq 1 60); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 1; done
  fi
  # --one-file-system: never into anything an interrupted debootstrap left mounted (proc, sys) in its root.
  rm -rf --one-file-system "$TMP"
  if ((rc == 0)); then log "passed in $((SECONDS - T0)) s"; else log "failed (exit $rc) after $((SECONDS - T0)) s"; fi
  exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT TERM

source "$HERE/images.sh"
source "$HERE/stack-checks.sh"

# --- Prerequisites -------------------------------------------------------------------------------------------
[[ $(id -u) == 0 ]] || die "run as root (it starts dockerd and runs debootstrap)"
pick_docker
for tool in docker-compose node npm; do
  command -v "$tool" >/dev/null || die "$tool is missing (apt-get install docker.io docker-compose debootstrap)"
done
: >"$TMP/empty.env"
check_dockerfile_workspaces
mkdir -p "$CACHE"

if ! "$DOCKER" info >/dev/null 2>&1; then
  log "starting dockerd (log: $TMP/dockerd.log; stopped again at the end)"
  # In a session of its own: a Ctrl-C to this test must not stop the daemon before the teardown has used it.
  setsid dockerd >"$TMP/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  STARTED_DOCKERD=1
  for _ in $(seq 1 60); do "$DOCKER" info >/dev/null 2>&1 && break; sleep 1; done
  "$DOCKER" info >/dev/null 2>&1 || { tail -20 "$TMP/dockerd.log" >&2; die "dockerd did not start"; }
fi
"$DOCKER" images --quiet --filter dangling=true | sort -u >"$TMP/dangling-before"
# A stack left behind by an interrupted run would hold the ports and the volumes.
compose down --volumes --remove-orphans --timeout 10 >/dev/null 2>&1 || true
for port in "$TEST_PG_PORT" "$TEST_REDIS_PORT" "$TEST_API_PORT" "$TEST_METRICS_PORT_1" "$TEST_METRICS_PORT_2"; do
  if (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then die "port $port is already in use (set TEST_*_PORT)"; fi
done
# The images, their build cache and the volumes took 5.2 GB of /var/lib/docker at the peak (measured).
free_kb="$(df --output=avail -k /var/lib/docker "$CACHE" 2>/dev/null | tail -n +2 | sort -n | head -1)"
((free_kb > 8 * 1024 * 1024)) || die "less than 8 GB free for Docker and $CACHE ($((free_kb / 1024)) MB)"
log "disk: $((free_kb / 1024 / 1024)) GB free"

# --- Images --------------------------------------------------------------------------------------------------
build_base_image
build_node_image
build_service_images
build_app_images
check_images

# --- The stack -----------------------------------------------------------------------------------------------
log "compose up: postgres, redis, migrate, api, worker, worker-2"
render_compose
COMPOSE_UP=1
compose up --detach --no-build >"$TMP/up.log" 2>&1 || { cat "$TMP/up.log" >&2; die "compose up failed"; }
wait_healthy api worker worker-2
check_migrate_once

log "submitting a batch"
API_URL="http://127.0.0.1:$TEST_API_PORT" API_KEY="$API_KEY" IMAGES_PER_CLASS="$IMAGES_PER_CLASS" \
  METRICS_URLS="http://127.0.0.1:$TEST_METRICS_PORT_1,http://127.0.0.1:$TEST_METRICS_PORT_2" \
  DATASET="${DATASET:-$ROOT/../shared/datasets/trashnet/val}" \
  node "$HERE/check-stack.mjs" || die "the batch checks failed"

check_no_telemetry api worker worker-2
check_graceful_stop api worker worker-2
