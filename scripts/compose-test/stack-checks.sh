# Checks on the images and the containers of the compose test (sourced by run.sh; uses its log/die/compose).

# The Dockerfile copies every workspace's package.json before `npm ci` (a missing one fails the build late).
check_dockerfile_workspaces() {
  local manifest dir missing=()
  for manifest in "$ROOT"/apps/*/package.json "$ROOT"/packages/*/package.json "$ROOT"/training/package.json; do
    dir="${manifest#"$ROOT"/}"
    dir="${dir%/package.json}"
    grep -q "^COPY $dir/package.json $dir/" "$ROOT/Dockerfile" || missing+=("$dir")
  done
  ((${#missing[@]} == 0)) || die "the Dockerfile's manifests stage lacks COPY <dir>/package.json for: ${missing[*]}"
}

# The runtime image: not root, a HEALTHCHECK, production dependencies only, no sources or tests, a model.
check_images() {
  local image user
  for image in "$API_IMAGE" "$WORKER_IMAGE"; do
    user="$("$DOCKER" image inspect --format '{{.Config.User}}' "$image")"
    [[ -n "$user" && "$user" != root && "$user" != 0 ]] || die "$image runs as '${user:-root}'"
    "$DOCKER" image inspect --format '{{json .Config.Healthcheck}}' "$image" | grep -q healthcheck.mjs ||
      die "$image has no HEALTHCHECK"
    "$DOCKER" run --rm --entrypoint sh "$image" -c '
      set -e
      [ "$(id -u)" != 0 ] || { echo "runs as root"; exit 1; }
      for dev in tsx esbuild vitest typescript @biomejs turbo; do
        [ ! -e "node_modules/$dev" ] || { echo "dev dependency node_modules/$dev is installed"; exit 1; }
      done
      for absent in apps/api/src apps/worker/src packages/db/src apps/api/test .git; do
        [ ! -e "$absent" ] || { echo "$absent is in the image"; exit 1; }
      done
      ls models/*.onnx >/dev/null
      [ -f apps/api/dist/index.js ] && [ -f apps/worker/dist/index.js ] && [ -f apps/api/dist/migrate.js ]
      ! touch models/x 2>/dev/null || { echo "models/ is writable by the service user"; exit 1; }
    ' >"$TMP/image-check.log" 2>&1 || { cat "$TMP/image-check.log" >&2; die "$image failed its content checks"; }
  done
  log "images: non-root user, HEALTHCHECK, production dependencies only, no sources or tests"
}

container_of() { compose ps --quiet "$1"; }

# Waits for the Docker health status of each service to be healthy (its own HEALTHCHECK, as compose sets it).
wait_healthy() {
  local service id status deadline=$((SECONDS + 240))
  for service in "$@"; do
    id="$(container_of "$service")"
    [[ -n "$id" ]] || die "no container for $service"
    while :; do
      status="$("$DOCKER" inspect --format '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' "$id")"
      [[ "$status" == "running healthy" ]] && break
      [[ "$status" == running* ]] || die "$service is $status"
      ((SECONDS < deadline)) || die "$service not healthy after 240 s ($status)"
      sleep 2
    done
  done
  log "healthy: $*"
}

# The one-shot migrate service ran once and succeeded, and every migration file is recorded exactly once.
check_migrate_once() {
  local ids exit_code applied files
  ids="$(compose ps --all --quiet migrate 2>/dev/null || compose ps --quiet migrate)"
  [[ "$(wc -w <<<"$ids")" == 1 ]] || die "expected one migrate container, found: $ids"
  exit_code="$("$DOCKER" inspect --format '{{.State.Status}} {{.State.ExitCode}}' "$ids")"
  [[ "$exit_code" == "exited 0" ]] || die "migrate is '$exit_code', expected 'exited 0'"
  applied="$(compose exec -T postgres psql -U postgres -d "$POSTGRES_DB" -tAc \
    'select count(*), count(distinct hash) from drizzle.__drizzle_migrations')"
  files="$(find "$ROOT/packages/db/drizzle" -maxdepth 1 -name '*.sql' | wc -l)"
  [[ "$applied" == "$files|$files" ]] || die "migrations recorded (count|distinct): $applied, files: $files"
  log "migrate exited 0 once; $files migrations recorded once each"
}

# SIGTERM (docker stop) drains and exits 0: node is PID 1 and handles it itself.
check_graceful_stop() {
  local service id state
  log "stopping $* with SIGTERM"
  compose stop --timeout 60 "$@" >"$TMP/stop.log" 2>&1 || { cat "$TMP/stop.log" >&2; die "compose stop failed"; }
  for service in "$@"; do
    id="$(container_of "$service")"
    state="$("$DOCKER" inspect --format '{{.State.Status}} {{.State.ExitCode}}' "$id")"
    [[ "$state" == "exited 0" ]] || die "$service stopped as '$state', expected 'exited 0'"
  done
  log "stopped cleanly (exit 0): $*"
}

# onnxruntime's telemetry stays off (ORT_DISABLE_TELEMETRY in the image): with it on, onnxruntime logs that it
# starts its uploader (and, in these images without a system CA bundle, that it found none).
check_no_telemetry() {
  if compose logs --no-color "$@" 2>&1 | grep -i "telemetry"; then
    die "onnxruntime telemetry is active in $* (lines above)"
  fi
  log "no onnxruntime telemetry in the logs of $*"
}
