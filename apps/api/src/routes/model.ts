import { createRoute, z } from "@hono/zod-openapi";
import { ApiError } from "../errors";
import { latestReport, reportFile } from "../eval-report";
import { authResponses, BearerSecurity, createRouter, errorResponse } from "../router";
import type { RouteDeps } from "../types";

const Report = z
  .object({
    generatedAt: z.iso.datetime().openapi({ description: "When metrics.json was written" }),
    metrics: z.record(z.string(), z.unknown()).openapi({ description: "metrics.json of the report" }),
    confusion: z.object({
      labels: z.array(z.string()),
      matrix: z.array(z.array(z.number())).openapi({ description: "matrix[true][predicted]" }),
    }),
    misclassified: z.array(
      z.object({
        file: z.string(),
        truth: z.string(),
        predicted: z.string(),
        confidence: z.number(),
        thumbnail: z.string().openapi({ description: "URL path of its thumbnail under /v1/model/report/" }),
      }),
    ),
  })
  .openapi("EvalReport");

const Model = z
  .object({
    name: z.string(),
    version: z.string(),
    classes: z.array(z.string()),
    review: z
      .record(z.string(), z.unknown())
      .nullable()
      .openapi({ description: "The manifest's review section" }),
    metrics: z.array(z.record(z.string(), z.unknown())).openapi({ description: "The manifest's metrics" }),
    embedding: z
      .boolean()
      .openapi({ description: "The model has an embedding output (similar images work)" }),
    report: Report.nullable().openapi({ description: "The latest eval report in EVAL_REPORT_DIR, if any" }),
  })
  .openapi("Model");

const modelRoute = createRoute({
  method: "get",
  path: "/v1/model",
  summary: "The serving model, its manifest metrics and the latest eval report",
  security: BearerSecurity,
  responses: {
    200: { description: "The model", content: { "application/json": { schema: Model } } },
    ...authResponses,
    503: errorResponse("The API has no model manifest: code model_unavailable"),
  },
});

export function modelRoutes(deps: RouteDeps) {
  const app = createRouter();

  app.openapi(modelRoute, async (c) => {
    const m = deps.model;
    if (!m) throw new ApiError(503, "model_unavailable", "no model manifest is loaded");
    const report = await latestReport(deps.config.evalReportDir);
    const { reference: _reference, ...review } = m.review ?? {};
    return c.json(
      {
        name: m.name,
        version: m.version,
        classes: m.classes,
        review: m.review ? review : null,
        metrics: m.metrics,
        embedding: m.output.embedding !== undefined,
        report: report && {
          generatedAt: report.generatedAt,
          metrics: report.metrics,
          confusion: report.confusion,
          misclassified: report.misclassified.map((w) => ({
            ...w,
            thumbnail: `/v1/model/report/${w.thumbnail}`,
          })),
        },
      },
      200,
    );
  });

  // A plain route: OpenAPI paths cannot say "the rest of the path", so it is registered by hand below.
  app.get("/v1/model/report/:path{.+}", async (c) => {
    const report = await latestReport(deps.config.evalReportDir);
    const file = report && (await reportFile(report.dir, c.req.param("path")));
    if (!file) throw new ApiError(404, "not_found", "no such report file");
    return c.body(new Uint8Array(file.bytes), 200, {
      "Content-Type": file.type,
      "Cache-Control": "private, max-age=60",
      // The report's HTML is served from the API's origin: it may show, never script.
      "Content-Security-Policy": "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'",
      "X-Content-Type-Options": "nosniff",
    });
  });
  app.openAPIRegistry.registerPath({
    method: "get",
    path: "/v1/model/report/{path}",
    summary: "A file of the latest eval report (thumbnails, PNG charts, CSV, JSON, HTML)",
    description: "`path` is relative to the report folder and may contain `/` (e.g. `thumbs/0.jpg`).",
    security: BearerSecurity,
    request: { params: z.object({ path: z.string().openapi({ param: { name: "path", in: "path" } }) }) },
    responses: {
      200: {
        description: "The file",
        content: { "application/octet-stream": { schema: { type: "string", format: "binary" } } },
      },
      ...authResponses,
      404: errorResponse("No report, or no such file in it (or a path leaving the folder)"),
    },
  });

  return app;
}
