import { promoteModelVersion, rollbackSites, setShadow } from "@garbage/db";
import { checkPromotion, publishModel } from "@garbage/models";
import { createRoute, z } from "@hono/zod-openapi";
import { ApiError } from "../errors";
import { assertMayChangeModels, toApiError, visibleVersion } from "../model-access";
import {
  ModelVersion,
  ModelVersionDetail,
  PromoteResult,
  PromotionRefused,
  RollbackResult,
  toModelVersion,
  toModelVersionDetail,
  VersionParam,
} from "../model-schemas";
import { receiveModel } from "../model-upload";
import { reviewerOf } from "../principal";
import { authResponses, BearerSecurity, createRouter, errorResponse, json, multipartBody } from "../router";
import { plainText } from "../text";
import type { RouteDeps } from "../types";

const Sites = z.array(plainText().min(1)).min(1);
const body = <T extends z.ZodType>(schema: T) => ({
  required: true,
  content: { "application/json": { schema } },
});
const forbidden = {
  403: errorResponse("Only a key for every site may change model versions: code forbidden_site"),
};

const uploadRoute = createRoute({
  method: "post",
  path: "/v1/models",
  summary: "Register a model version (a candidate) from its files",
  description:
    "multipart/form-data: `model` (the float .onnx) and `manifest` (its .json), optional `int8` + `int8Manifest` " +
    "(its int8 twin) and `reference` (the reference embeddings the manifests name), and an optional `sites` " +
    "field (comma-separated; `*` = every site; default: the manifest's `site.sites`, else every site). At most " +
    "MODEL_MAX_BYTES in all. The files are checked against the manifests' sha256s and stored in STORAGE_URL.",
  security: BearerSecurity,
  request: {
    body: multipartBody({
      type: "object",
      required: ["model", "manifest"],
      properties: {
        model: { type: "string", format: "binary" },
        manifest: { type: "string", format: "binary" },
        int8: { type: "string", format: "binary" },
        int8Manifest: { type: "string", format: "binary" },
        reference: { type: "string", format: "binary" },
        sites: { type: "string" },
      },
    }),
  },
  responses: {
    201: json("Registered", ModelVersionDetail),
    400: errorResponse("A part is missing or does not match its manifest (invalid_model, checksum_mismatch)"),
    ...authResponses,
    ...forbidden,
    409: errorResponse(
      "name@version (or the same float model) is already registered: code duplicate_version",
    ),
    413: errorResponse("The upload exceeds MODEL_MAX_BYTES"),
    415: errorResponse("Not multipart/form-data"),
  },
});

const shadowRoute = createRoute({
  method: "post",
  path: "/v1/models/{id}/shadow",
  summary: "Shadow a candidate on its scope's live images (and reviewed backfill), or stop",
  security: BearerSecurity,
  request: { params: VersionParam, body: body(z.object({ on: z.boolean().default(true) })) },
  responses: {
    200: json("The version", ModelVersion),
    ...authResponses,
    ...forbidden,
    404: errorResponse("No such version"),
    409: errorResponse("The version is active: code invalid_state"),
  },
});

const promoteRoute = createRoute({
  method: "post",
  path: "/v1/models/{id}/promote",
  summary: "Serve the version on sites (default: its scope; ['*'] = every site without its own)",
  description:
    "Refused with 409 `candidate_worse` when it is less accurate than the active version on reviewed images it " +
    "never trained on (see /compare; one site: that site, else its scope), or `no_evidence` when there are " +
    "none, unless `force` is true.",
  security: BearerSecurity,
  request: {
    params: VersionParam,
    body: body(z.object({ sites: Sites.optional(), force: z.boolean().default(false) })),
  },
  responses: {
    200: json("Promoted", PromoteResult),
    ...authResponses,
    ...forbidden,
    404: errorResponse("No such version"),
    409: {
      description: "candidate_worse, no_evidence, out_of_scope",
      content: { "application/json": { schema: PromotionRefused } },
    },
  },
});

const rollbackRoute = createRoute({
  method: "post",
  path: "/v1/models/rollback",
  summary: "Undo the last promotion of sites ('*' for the every-site assignment)",
  security: BearerSecurity,
  request: { body: body(z.object({ sites: Sites })) },
  responses: {
    200: json("Rolled back", RollbackResult),
    ...authResponses,
    ...forbidden,
    409: errorResponse("A site has no assignment to roll back: code not_assigned"),
  },
});

/** The writes of /v1/models: registered by routes/models.ts before its /v1/models/{id} routes. */
export function modelChangeRoutes(deps: RouteDeps) {
  const app = createRouter();
  const maxBytes = deps.config.modelMaxBytes;

  app.openapi(uploadRoute, async (c) => {
    const p = assertMayChangeModels(c);
    const upload = await receiveModel(c.req.raw, maxBytes);
    try {
      const raw = upload.fields.sites
        ?.split(",")
        .map((s) => s.trim())
        .filter(Boolean);
      const sites = raw === undefined || raw.length === 0 ? undefined : raw;
      const row = await publishModel({
        db: deps.db,
        store: deps.store,
        modelPath: upload.modelPath,
        sites,
        by: reviewerOf(p),
      });
      return c.json(toModelVersionDetail(row), 201);
    } catch (err) {
      throw toApiError(err);
    } finally {
      await upload.cleanup();
    }
  });

  app.openapi(shadowRoute, async (c) => {
    assertMayChangeModels(c);
    const v = await visibleVersion(c, deps, c.req.valid("param").id);
    const row = await setShadow(deps.db, v.id, c.req.valid("json").on).catch((err) =>
      Promise.reject(toApiError(err)),
    );
    return c.json(toModelVersion(row), 200);
  });

  app.openapi(promoteRoute, async (c) => {
    const p = assertMayChangeModels(c);
    const v = await visibleVersion(c, deps, c.req.valid("param").id);
    const { sites, force } = c.req.valid("json");
    const check = await checkPromotion(deps.db, v, { sites });
    if (check.refusal && !force) {
      throw new ApiError(
        409,
        check.refusal.code,
        `${check.refusal.message}; send force: true to promote anyway`,
        {
          comparison: check.comparison,
        },
      );
    }
    const outcome = await promoteModelVersion(deps.db, v.id, { sites, by: reviewerOf(p) }).catch((err) =>
      Promise.reject(toApiError(err)),
    );
    const version = toModelVersion(outcome.version);
    return c.json({ ...outcome, version, comparison: check.comparison, forced: check.refusal !== null }, 200);
  });

  app.openapi(rollbackRoute, async (c) => {
    const p = assertMayChangeModels(c);
    const outcome = await rollbackSites(deps.db, {
      sites: c.req.valid("json").sites,
      by: reviewerOf(p),
    }).catch((err) => Promise.reject(toApiError(err)));
    return c.json(outcome, 200);
  });

  return app;
}
