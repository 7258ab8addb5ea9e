import { execFileSync, spawn } from "node:child_process";
import path from "node:path";

/** Debian's interpreter, where python3-torch is installed (a venv's python3 may lack it). */
export const PYTHON = "/usr/bin/python3";
export const PYTHON_DIR = path.resolve(import.meta.dirname, "../python");

export function torchAvailable(): boolean {
  try {
    execFileSync(PYTHON, ["-c", "import torch, onnx, scipy, PIL"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** Runs training/python/<script> with its output streamed through, rejecting on a non-zero exit. */
export function runPython(script: string, args: string[], opts: { quiet?: boolean } = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, [path.join(PYTHON_DIR, script), ...args], {
      stdio: ["ignore", opts.quiet ? "ignore" : "inherit", "pipe"],
    });
    let tail = "";
    child.stderr.on("data", (chunk: Buffer) => {
      if (!opts.quiet) process.stderr.write(chunk);
      tail = (tail + chunk.toString()).slice(-4000);
    });
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0) resolve();
      else reject(new Error(`${script} exited with ${code}:\n${tail}`));
    });
  });
}
