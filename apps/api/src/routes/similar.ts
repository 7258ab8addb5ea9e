import { getImage, nearestReviewed } from "@garbage/db";
import { createRoute, z } from "@hono/zod-openapi";
import { ApiError } from "../errors";
import { siteScope } from "../principal";
import { authResponses, BearerSecurity, createRouter, errorResponse } from "../router";
import type { RouteDeps } from "../types";

const Similar = z
  .object({
    items: z.array(
      z.object({
        imageId: z.uuid(),
        batchId: z.uuid(),
        filename: z.string().nullable(),
        label: z.string().openapi({ description: "The label a person gave it" }),
        distance: z.number().openapi({ description: "Cosine distance of the model's embeddings, 0 = same" }),
      }),
    ),
  })
  .openapi("SimilarImages");

const route = createRoute({
  method: "get",
  path: "/v1/results/{imageId}/similar",
  summary: "The reviewed images nearest to this one by the model's embedding",
  description:
    "Evidence a person can check: the k reviewed images of this key's sites whose embeddings are closest, " +
    "among images classified by the same model version (another model's embeddings are not comparable). " +
    "Empty when the model has no embedding output or nothing is reviewed yet.",
  security: BearerSecurity,
  request: {
    params: z.object({ imageId: z.uuid().openapi({ param: { name: "imageId", in: "path" } }) }),
    query: z.object({ k: z.coerce.number().int().min(1).max(50).default(5) }),
  },
  responses: {
    200: { description: "Nearest first", content: { "application/json": { schema: Similar } } },
    400: errorResponse("Not a uuid, or k outside 1..50"),
    ...authResponses,
    404: errorResponse("No such image, or its site is not one of this API key's"),
  },
});

export function similarRoutes(deps: RouteDeps) {
  const app = createRouter();
  app.openapi(route, async (c) => {
    const { imageId } = c.req.valid("param");
    const sites = siteScope(c);
    if (!(await getImage(deps.db, imageId, sites))) throw new ApiError(404, "not_found", "no such image");
    const items = await nearestReviewed(deps.db, { imageId, sites, k: c.req.valid("query").k });
    return c.json({ items }, 200);
  });
  return app;
}
