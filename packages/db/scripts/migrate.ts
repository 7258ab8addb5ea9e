import { createDb } from "../src/client";
import { migrate } from "../src/migrate";

const url = process.env.DATABASE_URL;
if (!url) {
  console.error("DATABASE_URL is not set");
  process.exit(1);
}
const handle = createDb(url, { max: 2 });
try {
  await migrate(handle.db);
  console.log("migrations applied");
} finally {
  await handle.close();
}
