# One image for the API and the CPU worker; the GPU worker builds the `gpu` target.
FROM node:20-bookworm-slim AS base
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json .npmrc ./
COPY apps/api/package.json apps/api/
COPY apps/worker/package.json apps/worker/
COPY apps/cli/package.json apps/cli/
COPY training/package.json training/
COPY packages/ packages/
RUN npm ci --include=dev && npm cache clean --force
COPY . .

FROM base AS api
EXPOSE 3000
CMD ["npx", "tsx", "apps/api/src/index.ts"]

FROM base AS worker
EXPOSE 9464
CMD ["npx", "tsx", "apps/worker/src/index.ts"]

# CUDA 12 + cuDNN 9 runtime, and onnxruntime-node's CUDA provider libraries, which .npmrc skips for CPU
# installs. Untested here (no Docker engine, no GPU on the build machine): see README "GPU workers".
FROM nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04 AS gpu
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
  && curl -fsSL https://deb.nodesource.com/setup_20.x | bash - && apt-get install -y nodejs \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=base /app /app
RUN cd node_modules/onnxruntime-node && ONNXRUNTIME_NODE_INSTALL=cuda12 npm_config_onnxruntime_node_install=cuda12 node ./script/install
ENV WORKER_PROVIDER=cuda
CMD ["npx", "tsx", "apps/worker/src/index.ts"]
