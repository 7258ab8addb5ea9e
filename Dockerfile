# Targets: `api` (default CPU image for the API), `worker` (CPU worker), `gpu` (CUDA worker), `agent` (the camera
# agent, `garbage agent`, for a computer at the line). Each runs the compiled JavaScript (`npm run build`,
# scripts/build.mjs) with `node`, production dependencies only, as the unprivileged `node` user, with a
# HEALTHCHECK on /healthz.
#
# NODE_IMAGE: any Debian-based Node 20+ image with npm and a `node` user (scripts/compose-test builds a
# stand-in without a registry). No `# syntax=` line: the builder's own Dockerfile frontend is enough, and an
# offline build cannot pull another one.
ARG NODE_IMAGE=node:22-bookworm-slim

# --- Workspace manifests: every workspace's package.json must be present before `npm ci`, or npm does not
# install that workspace's dependencies (and fails on a lockfile that names it). Keep this list in step with
# the "workspaces" of the root package.json (apps/*, packages/*, training).
FROM ${NODE_IMAGE} AS manifests
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
COPY apps/api/package.json apps/api/
COPY apps/cli/package.json apps/cli/
COPY apps/worker/package.json apps/worker/
COPY apps/web/package.json apps/web/
COPY packages/agent/package.json packages/agent/
COPY packages/bench/package.json packages/bench/
COPY packages/db/package.json packages/db/
COPY packages/inference/package.json packages/inference/
COPY packages/log/package.json packages/log/
COPY packages/models/package.json packages/models/
COPY packages/onnx/package.json packages/onnx/
COPY packages/queue/package.json packages/queue/
COPY packages/recovery/package.json packages/recovery/
COPY packages/stats/package.json packages/stats/
COPY packages/storage/package.json packages/storage/
COPY training/package.json training/

# --- Build: dev dependencies (esbuild, TypeScript sources) and `npm run build` -> apps/*/dist.
FROM manifests AS build
RUN npm ci && npm cache clean --force
COPY . .
RUN npm run build

# --- Runtime: production dependencies (onnxruntime-node and sharp are native and stay in node_modules; the
# @garbage/* packages are inside the bundles), the bundles, the models. No tsx, no sources, no dev tools.
FROM manifests AS runtime
# onnxruntime-node 1.29+ uploads usage telemetry to Microsoft from Linux too, unless this is set before it
# loads (seen in the compose test's logs: it tried, and found no CA bundle).
ENV NODE_ENV=production ORT_DISABLE_TELEMETRY=1
# onnxruntime-node ships its native library for every OS and CPU (about 290 MB); only this image's stays
# (-245 MB, measured). typescript and @types/pg are optional peers of production packages (valibot under Bull
# Board, drizzle-orm); the lock file marks them devOptional and `--omit=dev` still installs them.
RUN npm ci --omit=dev && npm cache clean --force \
  && keep="linux/$(node -p process.arch)" \
  && for dir in node_modules/onnxruntime-node/bin/napi-v*/*/*/; do \
       case "$dir" in */"$keep"/) ;; *) rm -rf "$dir" ;; esac; \
     done \
  && ls node_modules/onnxruntime-node/bin/napi-v*/"$keep"/onnxruntime_binding.node \
  && rm -rf node_modules/typescript node_modules/@types
COPY models/ models/
COPY scripts/healthcheck.mjs scripts/
COPY --from=build /app/apps/api/dist apps/api/dist
COPY --from=build /app/apps/worker/dist apps/worker/dist
COPY --from=build /app/apps/cli/dist apps/cli/dist
# The web UI the API serves at / and /docs (static files; its npm packages are bundled in).
COPY --from=build /app/apps/web/dist apps/web/dist
# Everything above is root-owned and read-only to the service; only the default file store is writable
# (STORAGE_URL=file://... default; compose uses postgres).
RUN mkdir -p data/images && chown -R node:node data
USER node

FROM runtime AS worker
ENV METRICS_PORT=9464
EXPOSE 9464
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "scripts/healthcheck.mjs", "METRICS_PORT", "9464"]
# node is PID 1 and installs its own SIGTERM/SIGINT handlers (drain, then exit 0); docker stop's SIGKILL after
# the grace period (compose: stop_grace_period) is what cuts a drain short.
CMD ["node", "--enable-source-maps", "apps/worker/dist/index.js"]

# CUDA 12 + cuDNN 9 runtime, and onnxruntime-node's CUDA provider libraries, which .npmrc skips for CPU
# installs. Never built here (no GPU, and no registry for the CUDA image; `npm run test:compose` builds and
# runs the api and worker targets): see README "GPU workers".
FROM nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04 AS gpu
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
  && curl -fsSL https://deb.nodesource.com/setup_22.x | bash - && apt-get install -y nodejs \
  && apt-get purge -y curl && apt-get autoremove -y && rm -rf /var/lib/apt/lists/* \
  && useradd --system --create-home --shell /usr/sbin/nologin node
WORKDIR /app
ENV NODE_ENV=production
COPY --from=runtime /app /app
RUN cd node_modules/onnxruntime-node \
  && ONNXRUNTIME_NODE_INSTALL=cuda12 npm_config_onnxruntime_node_install=cuda12 node ./script/install \
  && chown -R node:node /app/data
USER node
ENV WORKER_PROVIDER=cuda METRICS_PORT=9464
EXPOSE 9464
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
  CMD ["node", "scripts/healthcheck.mjs", "METRICS_PORT", "9464"]
CMD ["node", "--enable-source-maps", "apps/worker/dist/index.js"]

# The camera agent (`garbage agent`): its own bundle (apps/cli/dist/agent.js, no Postgres or storage packages),
# the model thread and the int8 model for --local, and only @garbage/agent's production dependencies
# (onnxruntime-node, sharp, mqtt, exifr, pino, prom-client, zod). The spool is a volume: it must outlive the
# container. Arguments after the image name are the agent's flags, e.g.
#   docker run -v spool:/var/lib/garbage-agent -v /srv/camera:/inbox IMAGE --watch /inbox --api http://api:8080 --site S
FROM manifests AS agent
ENV NODE_ENV=production ORT_DISABLE_TELEMETRY=1
RUN npm ci --omit=dev --workspace=@garbage/agent && npm cache clean --force \
  && keep="linux/$(node -p process.arch)" \
  && for dir in node_modules/onnxruntime-node/bin/napi-v*/*/*/; do \
       case "$dir" in */"$keep"/) ;; *) rm -rf "$dir" ;; esac; \
     done \
  && rm -rf node_modules/typescript node_modules/@types
COPY models/garbage-resnet50-int8.onnx models/garbage-resnet50-int8.json models/garbage-resnet50.ref.bin models/
COPY scripts/healthcheck.mjs scripts/
COPY --from=build /app/apps/cli/dist/agent.js /app/apps/cli/dist/inference-thread.js apps/cli/dist/
RUN mkdir -p /var/lib/garbage-agent && chown node:node /var/lib/garbage-agent
USER node
VOLUME ["/var/lib/garbage-agent"]
ENV METRICS_PORT=9465
EXPOSE 9465
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "scripts/healthcheck.mjs", "METRICS_PORT", "9465"]
# node is PID 1: SIGTERM (docker stop) stops taking photos, lets the send in flight finish, exits 0.
ENTRYPOINT ["node", "--enable-source-maps", "apps/cli/dist/agent.js", "--spool", "/var/lib/garbage-agent", \
  "--metrics-host", "0.0.0.0", "--metrics-port", "9465"]
CMD ["--help"]

# Last, so that a plain `docker build .` gives the API image.
FROM runtime AS api
ENV PORT=8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "scripts/healthcheck.mjs", "PORT", "8080"]
CMD ["node", "--enable-source-maps", "apps/api/dist/index.js"]
