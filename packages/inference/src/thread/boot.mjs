// Worker-thread entry. Node 20 does not apply `--import tsx` hooks to a worker's own entry file, so the
// thread registers tsx itself before loading the TypeScript module (harmless when tsx is already active).
import { register } from "tsx/esm/api";

register();
await import("./thread.ts");
