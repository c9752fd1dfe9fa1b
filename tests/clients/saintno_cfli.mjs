// @saintno/comfyui-sdk's command line `cfli`: runs a workflow file against comfycpp, downloads the
// images (-d -o) and reports JSON; then `cfli queue` and `cfli list checkpoints`.
// Usage: node saintno_cfli.mjs PATH/TO/comfycpp
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { assert, checkPng, invertWorkflow, runTest, txt2imgWorkflow } from "./harness.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const cfli = path.join(here, "node_modules", "@saintno", "comfyui-sdk", "dist", "cli.js");

function run(server, args) {
  const r = spawnSync(process.execPath, [cfli, ...args, "-H", server.url], {
    encoding: "utf8",
    timeout: 120000,
    env: { ...process.env, CI: "true", NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  if (r.status !== 0) throw new Error(`cfli ${args.join(" ")} exited ${r.status ?? r.signal}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

// The JSON object cfli prints (the last line that parses).
function lastJson(text) {
  const lines = text.trim().split("\n").reverse();
  for (const line of lines) {
    try {
      return JSON.parse(line);
    } catch {}
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`no JSON in cfli output:\n${text}`);
  }
}

function pngsUnder(dir) {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { recursive: true }).filter((f) => f.endsWith(".png")).map((f) => path.join(dir, f));
}

await runTest("saintno_cfli", async (server) => {
  const work = path.join(server.baseDir, "cfli");
  fs.mkdirSync(work);
  for (const [name, workflow, w, h] of [
    ["t2i", txt2imgWorkflow("cfli_t2i"), 64, 64],
    ["invert", invertWorkflow("cfli_invert"), 40, 24],
  ]) {
    const file = path.join(work, `${name}.json`);
    fs.writeFileSync(file, JSON.stringify(workflow));
    const out = path.join(work, `out_${name}`);
    const result = lastJson(run(server, ["run", "-f", file, "--json", "-q", "-d", "--no-tui", "-o", out]));
    const pngs = pngsUnder(out);
    assert(pngs.length === 1, `${name}: one downloaded PNG expected under ${out}, got ${pngs}; cfli said ${JSON.stringify(result)}`);
    checkPng(fs.readFileSync(pngs[0]), w, h, `${name} (${pngs[0]})`);
  }
  const queue = run(server, ["queue", "--json"]);
  assert(queue.length > 0, "cfli queue printed nothing");
  const list = run(server, ["list", "checkpoints", "--json"]);
  assert(list.includes("tiny_sd15.safetensors"), `cfli list checkpoints: ${list}`);
});
