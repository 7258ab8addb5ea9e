import { customType, integer, pgTable, uuid } from "drizzle-orm/pg-core";
import { results } from "./results";

const bytea = customType<{ data: Buffer; driverData: Buffer }>({ dataType: () => "bytea" });

/**
 * The model's pooled feature vector per ok result (little-endian float32), written by the worker only when the
 * model has an embedding output. Kept out of `results` so result scans never drag kilobytes of floats along.
 */
export const resultEmbeddings = pgTable("result_embeddings", {
  imageId: uuid("image_id")
    .primaryKey()
    .references(() => results.imageId, { onDelete: "cascade" }),
  dims: integer("dims").notNull(),
  data: bytea("data").notNull(),
});
