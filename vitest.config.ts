import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["{apps,packages}/*/test/**/*.test.ts", "training/test/**/*.test.ts"],
    // Integration tests share one Postgres database and one Redis; files run one at a time on this 2-core box.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
