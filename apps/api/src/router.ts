import { OpenAPIHono, z } from "@hono/zod-openapi";
import { validationHook } from "./errors";
import type { AppEnv } from "./types";

/** Every route module builds its router here so validation failures share one shape. */
export function createRouter() {
  return new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
}

export const ErrorSchema = z
  .object({
    code: z.string().openapi({ example: "validation_error" }),
    message: z.string(),
    requestId: z.string(),
    details: z.unknown().optional(),
  })
  .openapi("Error");

export const errorResponse = (description: string) => ({
  description,
  content: { "application/json": { schema: ErrorSchema } },
});

/** Every /v1 route answers these two the same way (auth.ts, rate-limit.ts). */
export const authResponses = {
  401: errorResponse("Missing or wrong API key"),
  429: errorResponse("This API key's rate limit is exhausted; Retry-After says when to retry"),
};

export const BearerSecurity = [{ bearer: [] as string[] }];

/** The downloads: the API key, or instead a signed link's `?token=` (POST /v1/downloads). */
export const DownloadSecurity: Record<string, string[]>[] = [{ bearer: [] }, { downloadToken: [] }];
