import { pgTable, text, timestamp, uuid } from "drizzle-orm/pg-core";
import { modelVersions } from "./model-versions";

/**
 * Which version serves which site ('*' = every site without its own row; no row at all = the shipped default).
 * `previous_version_id` keeps one step of history so a rollback is a single update.
 */
export const modelAssignments = pgTable("model_assignments", {
  site: text("site").primaryKey(),
  versionId: uuid("version_id")
    .notNull()
    .references(() => modelVersions.id),
  /** What served this site before this assignment; null = the '*' assignment or the shipped default. */
  previousVersionId: uuid("previous_version_id").references(() => modelVersions.id),
  assignedAt: timestamp("assigned_at", { withTimezone: true }).notNull().defaultNow(),
  assignedBy: text("assigned_by"),
});
