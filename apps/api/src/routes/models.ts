import { compareVersions, getSiteThresholds, listAssignments, listModelVersions } from "@garbage/db";
import { createRoute, z } from "@hono/zod-openapi";
import { ApiError } from "../errors";
import { defaultVersionOf, maySeeSite, maySeeVersion, visibleVersion } from "../model-access";
import {
  Assignment,
  Comparison,
  ModelVersion,
  ModelVersionDetail,
  Threshold,
  toModelVersion,
  toModelVersionDetail,
  VersionParam,
} from "../model-schemas";
import { principalOf, statsScope } from "../principal";
import { authResponses, BearerSecurity, createRouter, errorResponse, json } from "../router";
import { plainText } from "../text";
import type { RouteDeps } from "../types";
import { modelChangeRoutes } from "./model-changes";

const listRoute = createRoute({
  method: "get",
  path: "/v1/models",
  summary: "Registered model versions, which one serves which site, and the shipped default",
  description:
    "A key for some sites sees the versions for every site or one of its sites, and their assignments.",
  security: BearerSecurity,
  responses: {
    200: json(
      "Versions (newest first) and assignments",
      z
        .object({
          default: z.string().nullable().openapi({
            description:
              "`name@version` of the shipped model: what serves a site with no assignment (nor '*')",
          }),
          versions: z.array(ModelVersion),
          assignments: z.array(Assignment),
        })
        .openapi("ModelRegistry"),
    ),
    ...authResponses,
  },
});

const thresholdsRoute = createRoute({
  method: "get",
  path: "/v1/models/thresholds",
  summary: "Per-site review thresholds and the estimated accuracy of what they leave unflagged",
  security: BearerSecurity,
  request: { query: z.object({ site: plainText().optional() }) },
  responses: {
    200: json("Thresholds by site and model version", z.object({ thresholds: z.array(Threshold) })),
    ...authResponses,
    403: errorResponse("The key may not read this site: code forbidden_site"),
  },
});

const getRoute = createRoute({
  method: "get",
  path: "/v1/models/{id}",
  summary: "One model version with its manifests",
  security: BearerSecurity,
  request: { params: VersionParam },
  responses: {
    200: json("The version", ModelVersionDetail),
    ...authResponses,
    404: errorResponse("No such version (or not one of the key's sites')"),
  },
});

const compareRoute = createRoute({
  method: "get",
  path: "/v1/models/{id}/compare",
  summary: "A candidate against the version active for each image's site",
  description:
    "`reviewed`: images in the candidate's scope reviewed after its data cut-off that both versions labelled " +
    "(shadow backfill or served results); `live`: images it shadowed. Without `site`, the whole scope (a key " +
    "for one site: that site).",
  security: BearerSecurity,
  request: { params: VersionParam, query: z.object({ site: plainText().optional() }) },
  responses: {
    200: json(
      "The comparison",
      Comparison.extend({ candidate: z.string(), site: z.string().nullable() }).openapi("ModelCompareResult"),
    ),
    400: errorResponse("A key for several sites must name one: code site_required"),
    ...authResponses,
    403: errorResponse("The key may not read this site: code forbidden_site"),
    404: errorResponse("No such version"),
  },
});

export function modelsRoutes(deps: RouteDeps) {
  const app = createRouter();

  app.openapi(listRoute, async (c) => {
    const p = principalOf(c);
    const versions = (await listModelVersions(deps.db)).filter((v) => maySeeVersion(p, v));
    const names = new Map(versions.map((v) => [v.id, v.modelVersion]));
    const assignments = (await listAssignments(deps.db))
      .filter((a) => maySeeSite(p, a.site))
      .map((a) => ({
        ...a,
        modelVersion: names.get(a.versionId) ?? "",
        assignedAt: a.assignedAt.toISOString(),
      }));
    return c.json(
      { default: defaultVersionOf(deps) ?? null, versions: versions.map(toModelVersion), assignments },
      200,
    );
  });

  // Before /v1/models/{id}, which would otherwise take "thresholds" for an id.
  app.openapi(thresholdsRoute, async (c) => {
    const scope = statsScope(principalOf(c), c.req.valid("query").site);
    const rows = await getSiteThresholds(
      deps.db,
      scope.site ? { sites: [scope.site] } : { sites: scope.sites ?? undefined },
    );
    const thresholds = rows.map((r) => ({ ...r, computedAt: r.computedAt.toISOString() }));
    return c.json({ thresholds }, 200);
  });

  app.route("/", modelChangeRoutes(deps));

  app.openapi(getRoute, async (c) => {
    const v = await visibleVersion(c, deps, c.req.valid("param").id);
    return c.json(toModelVersionDetail(v), 200);
  });

  app.openapi(compareRoute, async (c) => {
    const v = await visibleVersion(c, deps, c.req.valid("param").id);
    const p = principalOf(c);
    let site = c.req.valid("query").site ?? null;
    if (site !== null) statsScope(p, site);
    else if (p.sites?.length === 1) site = p.sites[0] ?? null;
    else if (p.sites !== null) {
      throw new ApiError(400, "site_required", `name one of the key's sites: ${p.sites.join(", ")}`);
    }
    // No defaultVersion: workers serve the default as int8 or fp32 by their hardware, so the API's own
    // manifest may not be what labelled a site's results; unregistered versions' results stand for it.
    const comparison = await compareVersions(deps.db, {
      candidateId: v.id,
      ...(site === null ? {} : { site }),
    });
    return c.json({ ...comparison, candidate: v.modelVersion, site }, 200);
  });

  return app;
}
