import { OpenAPIHono, type RouteConfig, z } from "@hono/zod-openapi";
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

/** A JSON response: `json("The version", ModelVersion)`. */
export const json = <T extends z.ZodType>(description: string, schema: T) => ({
  description,
  content: { "application/json": { schema } },
});

type RequestContent = NonNullable<NonNullable<RouteConfig["request"]>["body"]>["content"];
type MediaType = Exclude<NonNullable<RequestContent[string]>, { $ref: string }>;
type PlainSchema = Exclude<NonNullable<MediaType["schema"]>, z.ZodType>;

/**
 * A required multipart/form-data body (and any other media types the route takes, after it), described by a
 * plain OpenAPI schema, not zod: a zod body would make the validator buffer the whole upload.
 */
export const multipartBody = <S extends PlainSchema, M extends RequestContent = Record<never, never>>(
  schema: S,
  more?: M,
) => ({
  required: true,
  content: { "multipart/form-data": { schema }, ...(more as M) },
});

/** The `Idempotency-Key` of an upload a client may retry: a retry with the same key answers the first one. */
export const IdempotencyKey = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[\x21-\x7e]+$/, "printable ASCII without spaces");

/** Every /v1 route answers these two the same way (auth.ts, rate-limit.ts). */
export const authResponses = {
  401: errorResponse("Missing or wrong API key"),
  429: errorResponse("This API key's rate limit is exhausted; Retry-After says when to retry"),
};

export const BearerSecurity = [{ bearer: [] as string[] }];

/** The downloads: the API key, or instead a signed link's `?token=` (POST /v1/downloads). */
export const DownloadSecurity: Record<string, string[]>[] = [{ bearer: [] }, { downloadToken: [] }];
