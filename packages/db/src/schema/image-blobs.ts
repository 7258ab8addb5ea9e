import { bigint, customType, pgTable, text, timestamp } from "drizzle-orm/pg-core";

const bytea = customType<{ data: Buffer; driverData: Buffer }>({
  dataType: () => "bytea",
});

/** Backing table of the Postgres ImageStore (@garbage/storage), for deployments with several API hosts. */
export const imageBlobs = pgTable("image_blobs", {
  key: text("key").primaryKey(),
  data: bytea("data").notNull(),
  bytes: bigint("bytes", { mode: "number" }).notNull(),
  sha256: text("sha256").notNull(),
  createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
});
