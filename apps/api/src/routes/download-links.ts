import { getBatch } from "@garbage/db";
import { createRoute, z } from "@hono/zod-openapi";
import { isDownloadPath, signDownloadToken } from "../download-token";
import { ApiError } from "../errors";
import { principalOf, siteScope } from "../principal";
import { authResponses, BearerSecurity, createRouter, errorResponse } from "../router";
import type { RouteDeps } from "../types";
import { checkStatsQuery } from "./stats";

/** Long enough to start a download after asking, short enough that a leaked link is soon worthless. */
export const LINK_TTL_MS = 60_000;

const BATCH_ID = /^\/v1\/batches\/([^/]+)\/results\.(csv|json)$/;

const route = createRoute({
  method: "post",
  path: "/v1/downloads",
  summary: "A short-lived signed link for one download",
  description:
    "For a browser, which cannot send the Authorization header when it follows a link: answers a URL with " +
    "`?token=` that is good for about a minute, for exactly this path and query, reading with this key's " +
    "sites. Allowed paths: `/v1/batches/{id}/results.csv`, `/v1/batches/{id}/results.json`, " +
    "`/v1/stats.csv?...` and `/v1/review/export?...`. An expired, altered or misplaced token is 401.",
  security: BearerSecurity,
  request: {
    body: {
      required: true,
      content: {
        "application/json": {
          schema: z
            .object({
              path: z.string().max(2_000).openapi({ example: "/v1/stats.csv?site=plant-north&bucket=day" }),
            })
            .openapi("DownloadLinkRequest"),
        },
      },
    },
  },
  responses: {
    200: {
      description: "The link to navigate to",
      content: {
        "application/json": {
          schema: z
            .object({
              url: z.string().openapi({ description: "The path and query with `token` added; same origin" }),
              expiresAt: z.iso.datetime(),
            })
            .openapi("DownloadLink"),
        },
      },
    },
    400: errorResponse("Not a download path, not in canonical form, or a stats query /v1/stats.csv refuses"),
    ...authResponses,
    403: errorResponse("`site` of a stats export is not one of this API key's sites: code forbidden_site"),
    404: errorResponse("No such batch, or it belongs to a site this API key cannot see"),
  },
});

/** The path as the GET will see it: parsed and re-serialised must give it back unchanged. */
function canonical(path: string): URL {
  let url: URL;
  try {
    url = new URL(path, "http://localhost");
  } catch {
    throw new ApiError(400, "validation_error", "path: not a URL path");
  }
  const ok =
    path.startsWith("/") &&
    !path.startsWith("//") &&
    url.origin === "http://localhost" &&
    `${url.pathname}${url.search}` === path &&
    isDownloadPath(url.pathname) &&
    !url.searchParams.has("token");
  if (!ok) {
    throw new ApiError(
      400,
      "validation_error",
      "path: one of /v1/batches/{id}/results.csv|json, /v1/stats.csv?..., /v1/review/export?..., " +
        "percent-encoded, without a fragment or token",
    );
  }
  return url;
}

export function downloadLinkRoutes(deps: RouteDeps) {
  const app = createRouter();
  app.openapi(route, async (c) => {
    const { path } = c.req.valid("json");
    const url = canonical(path);
    const principal = principalOf(c);
    // What the download itself would refuse is said now, while the page can still show it in words.
    const batchId = BATCH_ID.exec(url.pathname)?.[1];
    if (batchId && !(await getBatch(deps.db, batchId, siteScope(c)))) {
      throw new ApiError(404, "not_found", "no such batch");
    }
    if (url.pathname === "/v1/stats.csv") checkStatsQuery(deps, principal, url.searchParams);
    const expiresAt = Date.now() + LINK_TTL_MS;
    const token = signDownloadToken(deps.config.downloadSecret, path, principal, expiresAt);
    const sep = url.search ? "&" : "?";
    return c.json({ url: `${path}${sep}token=${token}`, expiresAt: new Date(expiresAt).toISOString() }, 200);
  });
  return app;
}
