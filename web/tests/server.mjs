// Starts a comfycpp server for a test: a free port, a temporary base directory whose
// models/checkpoints holds the fixture checkpoint, the built web UI as the front end.
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, "../..");

export function comfycppBinary() {
  return process.env.COMFYCPP_BIN || path.join(repoRoot, "build/comfycpp");
}
export function fixturesDir() {
  return process.env.COMFYCPP_FIXTURES || path.join(repoRoot, "tests/fixtures");
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// `files`: extra files for the base directory ({"models/checkpoints/x.safetensors": "bytes"}; folders are made).
// `env`: extra environment variables for comfycpp.
export async function startServer({ bin = comfycppBinary(), fixtures = fixturesDir(), frontEnd, extraArgs = [], files = {}, env = {} } = {}) {
  if (!fs.existsSync(bin)) throw new Error(`comfycpp binary not found at ${bin} (set COMFYCPP_BIN)`);
  const base = fs.mkdtempSync(path.join(os.tmpdir(), "comfycpp-web-"));
  fs.mkdirSync(path.join(base, "models/checkpoints"), { recursive: true });
  fs.symlinkSync(path.join(fixtures, "models/checkpoints/tiny_sd15.safetensors"),
    path.join(base, "models/checkpoints/tiny_sd15.safetensors"));
  for (const [rel, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(base, rel)), { recursive: true });
    fs.writeFileSync(path.join(base, rel), content);
  }
  const port = await freePort();
  const args = ["serve", "--port", String(port), "--base-directory", base, "--cpu", ...extraArgs];
  if (frontEnd) args.push("--front-end-root", frontEnd);
  const child = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
  let log = "";
  child.stdout.on("data", (d) => (log += d));
  child.stderr.on("data", (d) => (log += d));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`comfycpp exited (${child.exitCode}):\n${log}`);
    try {
      const r = await fetch(`${url}/api/system_stats`);
      if (r.ok) break;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) { child.kill("SIGKILL"); throw new Error(`comfycpp did not start:\n${log}`); }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url, base, log: () => log,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await Promise.race([exited, new Promise((r) => setTimeout(r, 10000))]);
        if (child.exitCode === null) child.kill("SIGKILL");
      }
      fs.rmSync(base, { recursive: true, force: true });
    },
  };
}
