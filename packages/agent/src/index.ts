export { AgentUsageError, agentHelp, agentMain, runAgent } from "./agent";
export { type AgentConfig, parseAgentArgs } from "./config";
export { auditSampleWantsImage, imageIdFor, type LocalResult } from "./local";
export { compilePattern, exifCapturedAt, looksComplete } from "./metadata";
export { batchKey } from "./sender";
export { identityHash, Spool } from "./spool";
