import { visibleSites } from "@garbage/db";
import { createRoute, z } from "@hono/zod-openapi";
import { principalOf } from "../principal";
import { authResponses, BearerSecurity, createRouter } from "../router";
import type { RouteDeps } from "../types";

const Me = z
  .object({
    name: z.string().nullable().openapi({ description: "The API key's name; null for env keys or no keys" }),
    sites: z.array(z.string()).nullable().openapi({ description: "The key's sites; null is every site" }),
    visibleSites: z
      .array(z.string())
      .openapi({ description: "Sites that have batches and that this key may see, sorted" }),
    classes: z.array(z.string()).openapi({ description: "The serving model's classes; empty without one" }),
  })
  .openapi("Me");

const route = createRoute({
  method: "get",
  path: "/v1/me",
  summary: "Who this API key is and what it can see",
  security: BearerSecurity,
  responses: {
    200: { description: "The caller", content: { "application/json": { schema: Me } } },
    ...authResponses,
  },
});

export function meRoutes(deps: RouteDeps) {
  const app = createRouter();
  app.openapi(route, async (c) => {
    const p = principalOf(c);
    return c.json(
      {
        name: p.name,
        sites: p.sites,
        visibleSites: await visibleSites(deps.db, p.sites),
        classes: deps.model?.classes ?? [],
      },
      200,
    );
  });
  return app;
}
