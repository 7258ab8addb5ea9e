import { createRoute, z } from "@hono/zod-openapi";
import { createRouter } from "../router";
import type { RouteDeps } from "../types";

const route = createRoute({
  method: "get",
  path: "/metrics",
  summary: "Prometheus metrics of this API process",
  responses: {
    200: { description: "Prometheus text format", content: { "text/plain": { schema: z.string() } } },
  },
});

export function metricsRoutes(deps: RouteDeps) {
  const app = createRouter();
  app.openapi(route, async (c) => {
    const text = await deps.registry.metrics();
    return c.text(text, 200, { "Content-Type": deps.registry.contentType });
  });
  return app;
}
