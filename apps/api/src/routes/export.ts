import { reviewedEntries } from "@garbage/storage";
import { createRoute, z } from "@hono/zod-openapi";
import tar from "tar-stream";
import { siteScope } from "../principal";
import { authResponses, createRouter, DownloadSecurity, errorResponse } from "../router";
import { plainText } from "../text";
import type { RouteDeps } from "../types";

const route = createRoute({
  method: "get",
  path: "/v1/review/export",
  summary: "Reviewed images as training data (tar)",
  description:
    "Every reviewed image (confirmed or corrected) this key can see, as `<class>/<imageId>.<ext>` under its " +
    "reviewed label: extract it and pass the folder to `npm run train`. Streamed; the same layout as " +
    "`garbage export-reviewed --out <dir>`.",
  security: DownloadSecurity,
  request: { query: z.object({ site: plainText().optional() }) },
  responses: {
    200: {
      description: "A tar stream; Content-Disposition: attachment",
      content: { "application/x-tar": { schema: { type: "string", format: "binary" } } },
    },
    400: errorResponse("Bad site"),
    ...authResponses,
  },
});

export function exportRoutes(deps: RouteDeps) {
  const app = createRouter();
  app.openapi(route, async (c) => {
    const entries = reviewedEntries(deps.db, deps.store, {
      sites: siteScope(c),
      site: c.req.valid("query").site ?? null,
    });
    const pack = tar.pack();
    let finished = false;
    // One image per pull: the web stream asks for more only when the client has read what was packed, so a
    // slow download never holds more than an image or two in memory.
    const body = new ReadableStream<Uint8Array>(
      {
        start(controller) {
          pack.on("data", (chunk) => controller.enqueue(new Uint8Array(chunk as Buffer)));
          pack.on("end", () => controller.close());
          pack.on("error", (err: Error) => controller.error(err));
        },
        async pull() {
          if (finished) return;
          const next = await entries.next();
          if (next.done) {
            finished = true;
            pack.finalize();
            return;
          }
          const { path, bytes } = next.value;
          await new Promise<void>((resolve, reject) =>
            pack.entry({ name: path, size: bytes.length, mode: 0o644 }, bytes, (err) =>
              err ? reject(err) : resolve(),
            ),
          );
        },
        async cancel() {
          finished = true;
          pack.destroy();
          await entries.return(undefined);
        },
      },
      { highWaterMark: 1 },
    );
    return c.body(body, 200, {
      "Content-Type": "application/x-tar",
      "Content-Disposition": 'attachment; filename="reviewed-images.tar"',
      "Cache-Control": "private, no-store",
    });
  });
  return app;
}
