import { defineConfig } from "drizzle-kit";

// Generation only needs the schema; migrations are applied by src/migrate.ts, never by `drizzle-kit push`.
export default defineConfig({
  dialect: "postgresql",
  schema: "./src/schema/index.ts",
  out: "./drizzle",
});
