import { pingDb } from "@garbage/db";
import { pingRedis } from "@garbage/queue";
import { createRoute, z } from "@hono/zod-openapi";
import { createRouter } from "../router";
import type { RouteDeps } from "../types";

const Check = z.enum(["ok", "failed", "not_loaded", "not_required"]);
const Readiness = z
  .object({
    status: z.enum(["ready", "not_ready"]),
    checks: z.object({ database: Check, redis: Check, storage: Check, model: Check }),
    model: z.object({ name: z.string(), version: z.string() }).nullable(),
  })
  .openapi("Readiness");

const healthz = createRoute({
  method: "get",
  path: "/healthz",
  summary: "Liveness: the process answers",
  responses: {
    200: {
      description: "Alive",
      content: { "application/json": { schema: z.object({ status: z.literal("ok") }) } },
    },
  },
});

const readyz = createRoute({
  method: "get",
  path: "/readyz",
  summary: "Readiness: database, Redis, storage and model reachable",
  responses: {
    200: { description: "Ready", content: { "application/json": { schema: Readiness } } },
    503: { description: "A dependency is down", content: { "application/json": { schema: Readiness } } },
  },
});

export function healthRoutes(deps: RouteDeps) {
  const app = createRouter();
  app.openapi(healthz, (c) => c.json({ status: "ok" as const }, 200));
  app.openapi(readyz, async (c) => {
    const [database, redis, storage] = await Promise.all([
      pingDb(deps.db, 1_000),
      pingRedis(deps.redis, 1_000),
      deps.store.healthy().catch(() => false),
    ]);
    const model = deps.classifier ? "ok" : deps.config.requireModel ? "not_loaded" : "not_required";
    const checks = {
      database: database ? "ok" : "failed",
      redis: redis ? "ok" : "failed",
      storage: storage ? "ok" : "failed",
      model,
    } as const;
    const ready = database && redis && storage && model !== "not_loaded";
    const body = {
      status: ready ? ("ready" as const) : ("not_ready" as const),
      checks,
      model: deps.classifier
        ? { name: deps.classifier.manifest.name, version: deps.classifier.manifest.version }
        : null,
    };
    return ready ? c.json(body, 200) : c.json(body, 503);
  });
  return app;
}
