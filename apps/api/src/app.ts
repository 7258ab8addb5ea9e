import { createLogger } from "@garbage/log";
import { OpenAPIHono } from "@hono/zod-openapi";
import { requestId } from "hono/request-id";
import { Registry } from "prom-client";
import { apiKeyAuth, principalStillValid } from "./auth";
import { limitBodies } from "./body-limit";
import { deliverRejections } from "./deliver-rejections";
import { downloadTokenAuth } from "./download-token";
import { createErrorHandler, notFound, retryAfterOn503, validationHook } from "./errors";
import { createApiMetrics } from "./metrics";
import { rateLimit } from "./rate-limit";
import { requestLog } from "./request-log";
import { batchesRoutes } from "./routes/batches";
import { classifyRoutes } from "./routes/classify";
import { downloadLinkRoutes } from "./routes/download-links";
import { downloadRoutes } from "./routes/downloads";
import { exportRoutes } from "./routes/export";
import { healthRoutes } from "./routes/health";
import { imagesRoutes } from "./routes/images";
import { meRoutes } from "./routes/me";
import { metricsRoutes } from "./routes/metrics";
import { modelRoutes } from "./routes/model";
import { modelsRoutes } from "./routes/models";
import { queuesRoutes } from "./routes/queues";
import { resultsIngestRoutes } from "./routes/results-ingest";
import { reviewRoutes } from "./routes/review";
import { similarRoutes } from "./routes/similar";
import { statsRoutes } from "./routes/stats";
import { webRoutes } from "./routes/web";
import type { AppDeps, AppEnv, RouteDeps } from "./types";

export type { AppConfig } from "./config";
export { ApiError } from "./errors";
export type { AppDeps, Classifier, Logger } from "./types";

/** Builds the HTTP app from explicit dependencies; nothing here reads the environment. */
export function createApp(deps: AppDeps) {
  const registry = deps.registry ?? new Registry();
  const logger = deps.logger ?? createLogger({ service: "api" });
  const metrics = createApiMetrics(registry, deps.queue);
  const routeDeps: RouteDeps = { ...deps, registry, logger, metrics };

  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  app.use(requestId());
  app.use(requestLog(logger));
  app.use(async (c, next) => {
    const stop = metrics.requestDuration.startTimer();
    await next();
    stop({ method: c.req.method, route: c.req.routePath, status: String(c.res.status) });
  });
  app.use(deliverRejections());
  app.use(retryAfterOn503);
  app.use(limitBodies(deps.config.maxBodyBytes));
  const keyAuth = apiKeyAuth({
    envKeys: deps.config.apiKeys,
    db: deps.db,
    cacheMs: deps.config.apiKeyCacheMs,
  });
  const tokenAuth = downloadTokenAuth(
    deps.config.downloadSecret,
    principalStillValid({ envKeys: deps.config.apiKeys, db: deps.db }),
  );
  // A `?token=` (a signed download link) decides alone: it never falls back to, or adds to, a key.
  app.use("/v1/*", (c, next) => (c.req.query("token") === undefined ? keyAuth(c, next) : tokenAuth(c, next)));
  app.use("/v1/*", rateLimit(deps.config.rateLimit));

  app.route("/", healthRoutes(routeDeps));
  app.route("/", metricsRoutes(routeDeps));
  app.route("/", batchesRoutes(routeDeps));
  app.route("/", downloadRoutes(routeDeps));
  app.route("/", downloadLinkRoutes(routeDeps));
  app.route("/", classifyRoutes(routeDeps));
  app.route("/", statsRoutes(routeDeps));
  app.route("/", meRoutes(routeDeps));
  app.route("/", imagesRoutes(routeDeps));
  app.route("/", resultsIngestRoutes(routeDeps));
  app.route("/", reviewRoutes(routeDeps));
  app.route("/", exportRoutes(routeDeps));
  app.route("/", modelRoutes(routeDeps));
  app.route("/", modelsRoutes(routeDeps));
  app.route("/", similarRoutes(routeDeps));
  app.route("/", webRoutes(deps.config.webDir));
  app.route("/", queuesRoutes(routeDeps));

  app.openAPIRegistry.registerComponent("securitySchemes", "bearer", { type: "http", scheme: "bearer" });
  app.openAPIRegistry.registerComponent("securitySchemes", "downloadToken", {
    type: "apiKey",
    in: "query",
    name: "token",
    description: "A signed download link's token from POST /v1/downloads: one path and query, about a minute",
  });
  app.doc31("/openapi.json", {
    openapi: "3.1.0",
    info: {
      title: "garbage-sort API",
      version: "1.0.0",
      description: "Waste-photo classification: batch uploads, results and composition statistics.",
    },
  });

  app.onError(createErrorHandler(logger));
  app.notFound(notFound);
  return app;
}

export type App = ReturnType<typeof createApp>;
