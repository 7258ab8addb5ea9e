import { sql } from "drizzle-orm";
import { check, jsonb, pgEnum, pgTable, text, timestamp, unique, uuid } from "drizzle-orm/pg-core";

export const modelState = pgEnum("model_state", ["candidate", "shadow", "active", "retired"]);
export type ModelState = (typeof modelState.enumValues)[number];

export const MODEL_FILE_ROLES = ["fp32", "int8", "reference", "manifest", "int8-manifest"] as const;
export type ModelFileRole = (typeof MODEL_FILE_ROLES)[number];

/** One file of a version in the storage backend (`models/<sha256 of the float onnx>/<basename>`). */
export interface ModelFile {
  role: ModelFileRole;
  key: string;
  sha256: string;
  bytes: number;
}

/** Where a version's training images came from (the manifest's `site` block, written by `npm run adapt`). */
export interface TrainedOn {
  sites: string[] | null;
  images: number;
  perClass: Record<string, number>;
  source: string;
}

/**
 * A registered model version. Its identity is the float manifest's `name@version`, the string results record;
 * the shipped file in `models/` is the implicit default and has no row.
 */
export const modelVersions = pgTable(
  "model_versions",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    name: text("name").notNull(),
    version: text("version").notNull(),
    /** sha256 of the float onnx; also the storage prefix of the version's files. */
    sha256: text("sha256").notNull(),
    state: modelState("state").notNull().default("candidate"),
    /** The sites the version is meant for (its scope); null = every site. */
    sites: text("sites").array(),
    manifest: jsonb("manifest").$type<unknown>().notNull(),
    int8Manifest: jsonb("int8_manifest").$type<unknown>(),
    files: jsonb("files").$type<ModelFile[]>().notNull(),
    trainedOn: jsonb("trained_on").$type<TrainedOn>(),
    /** Latest review time of any image it trained on: reviews after it are images the version never saw. */
    dataUntil: timestamp("data_until", { withTimezone: true }),
    metrics: jsonb("metrics").$type<unknown>(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
    createdBy: text("created_by"),
  },
  (t) => [
    unique("model_versions_name_version_unique").on(t.name, t.version),
    // An empty scope would be a version for no site, which is never what was meant.
    check("model_versions_sites_check", sql`${t.sites} is null or cardinality(${t.sites}) > 0`),
  ],
);
