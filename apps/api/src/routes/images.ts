import { getImage, type Image } from "@garbage/db";
import { StorageError } from "@garbage/storage";
import { createRoute, z } from "@hono/zod-openapi";
import sharp from "sharp";
import { ApiError } from "../errors";
import { siteScope } from "../principal";
import { authResponses, BearerSecurity, createRouter, errorResponse } from "../router";
import type { RouteDeps } from "../types";

/** Long side of a thumbnail: enough for a gallery tile on a high-density screen. */
export const THUMBNAIL_PX = 256;

const ImageParam = z.object({ imageId: z.uuid().openapi({ param: { name: "imageId", in: "path" } }) });

const binary = (type: string, description: string) => ({
  description,
  content: { [type]: { schema: { type: "string" as const, format: "binary" } } },
});

const notFound = errorResponse(
  "No such image, its site is not one of this key's, or it was rejected at upload (no bytes stored)",
);

const originalRoute = createRoute({
  method: "get",
  path: "/v1/images/{imageId}",
  summary: "An uploaded image as it was sent",
  security: BearerSecurity,
  request: { params: ImageParam },
  responses: {
    200: binary("image/*", "The original bytes with their content type; Cache-Control: private"),
    400: errorResponse("Not a uuid"),
    ...authResponses,
    404: notFound,
  },
});

const thumbnailRoute = createRoute({
  method: "get",
  path: "/v1/images/{imageId}/thumbnail",
  summary: `A JPEG of the image, at most ${THUMBNAIL_PX} px on its long side`,
  security: BearerSecurity,
  request: { params: ImageParam },
  responses: {
    200: binary("image/jpeg", "The thumbnail, EXIF orientation applied; Cache-Control: private"),
    400: errorResponse("Not a uuid"),
    ...authResponses,
    404: notFound,
    422: errorResponse("The stored bytes cannot be decoded as an image: code undecodable"),
  },
});

/** The image and its stored bytes, or 404 whatever the reason it cannot be shown to this key. */
export async function readVisibleImage(
  deps: RouteDeps,
  imageId: string,
  sites: readonly string[] | null,
): Promise<{ image: Image; bytes: Buffer }> {
  const image = await getImage(deps.db, imageId, sites);
  if (!image?.storageKey) throw new ApiError(404, "not_found", "no such image");
  try {
    return { image, bytes: await deps.store.get(image.storageKey) };
  } catch (err) {
    if (err instanceof StorageError && err.code !== "too_large") {
      throw new ApiError(404, "not_found", "the image is no longer in storage");
    }
    throw err;
  }
}

export function imagesRoutes(deps: RouteDeps) {
  const app = createRouter();

  app.openapi(originalRoute, async (c) => {
    const { image, bytes } = await readVisibleImage(deps, c.req.valid("param").imageId, siteScope(c));
    return c.body(new Uint8Array(bytes), 200, {
      "Content-Type": image.contentType ?? "application/octet-stream",
      "Cache-Control": "private, max-age=3600",
      // Uploaded bytes must never be sniffed into something executable by a browser.
      "X-Content-Type-Options": "nosniff",
    });
  });

  app.openapi(thumbnailRoute, async (c) => {
    const { bytes } = await readVisibleImage(deps, c.req.valid("param").imageId, siteScope(c));
    let thumb: Buffer;
    try {
      thumb = await sharp(bytes, { limitInputPixels: deps.config.maxPixels })
        .rotate()
        .resize(THUMBNAIL_PX, THUMBNAIL_PX, { fit: "inside", withoutEnlargement: true })
        .jpeg({ quality: 80 })
        .toBuffer();
    } catch (err) {
      throw new ApiError(422, "undecodable", `the image cannot be decoded: ${(err as Error).message}`);
    }
    return c.body(new Uint8Array(thumb), 200, {
      "Content-Type": "image/jpeg",
      "Cache-Control": "private, max-age=3600",
    });
  });

  return app;
}
