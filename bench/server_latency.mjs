// Server latency of `comfycpp serve`: (1) start to ready: spawn to the first 200 on /system_stats,
// best and median of N starts over a fresh base directory; (2) a fully cached re-run: one WebSocket
// client, the same tiny prompt (EmptyImage -> ImageInvert -> SaveImage) POSTed again and again, the
// time from sending POST /prompt to receiving that prompt's `execution_success`, p50/p99 (and the
// POST answer alone). Prints a summary and, with --json FILE, writes the numbers.
//
//   node bench/server_latency.mjs [--binary build/comfycpp] [--starts 5] [--runs 200] [--json FILE]
//   node bench/server_latency.mjs --url http://127.0.0.1:8188 [--runs 200]   (a running server, e.g.
//        the real ComfyUI: no start-up figure)
// No npm packages. Node 20 needs --experimental-websocket; the script re-runs itself with it.
import { spawn } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

function parseArgs() {
  const out = {};
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    if (!argv[i].startsWith("--")) continue;
    const next = argv[i + 1];
    out[argv[i].slice(2)] = next === undefined || next.startsWith("--") ? true : argv[++i];
  }
  return out;
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

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function percentile(sorted, p) {
  if (!sorted.length) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

function stats(values) {
  const s = [...values].sort((a, b) => a - b);
  const round = (v) => (v == null ? null : Math.round(v * 1000) / 1000);
  return { n: s.length, min: round(s[0]), p50: round(percentile(s, 50)), p99: round(percentile(s, 99)),
           max: round(s[s.length - 1]) };
}

// Starts the server; resolves once /system_stats answers 200, with the time that took.
async function startServer(binary, baseDir) {
  const port = await freePort();
  const t0 = performance.now();
  const child = spawn(binary, ["serve", "--base-directory", baseDir, "--port", String(port), "--dont-print-server"], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let log = "";
  child.stderr.on("data", (d) => (log += d));
  let exited = false;
  child.on("exit", () => (exited = true));
  const url = `http://127.0.0.1:${port}`;
  for (;;) {
    if (exited) throw new Error(`comfycpp exited before it was ready:\n${log}`);
    try {
      const res = await fetch(`${url}/system_stats`);
      await res.arrayBuffer();
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    if (performance.now() - t0 > 60000) throw new Error(`comfycpp not ready in 60 s:\n${log}`);
    await sleep(1);
  }
  const readyMs = performance.now() - t0;
  const stop = async () => {
    if (exited) return;
    const done = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    await done;
  };
  return { url, readyMs, stop };
}

function invertPrompt() {
  const node = (class_type, inputs) => ({ class_type, inputs });
  return {
    1: node("EmptyImage", { width: 8, height: 8, batch_size: 1, color: 0 }),
    2: node("ImageInvert", { image: ["1", 0] }),
    3: node("SaveImage", { filename_prefix: "latency", images: ["2", 0] }),
  };
}

async function cachedRuns(url, runs) {
  const clientId = crypto.randomUUID().replaceAll("-", "");
  const ws = new WebSocket(`${url.replace(/^http/, "ws")}/ws?clientId=${clientId}`);
  const waiting = new Map();  // prompt_id -> resolve
  const done = new Map();     // prompt_id -> time (events that came before anyone waited)
  ws.addEventListener("message", (ev) => {
    if (typeof ev.data !== "string") return;
    const msg = JSON.parse(ev.data);
    if (msg.type !== "execution_success" && msg.type !== "execution_error") return;
    const id = msg.data?.prompt_id;
    const t = performance.now();
    if (waiting.has(id)) waiting.get(id)({ t, type: msg.type });
    else done.set(id, { t, type: msg.type });
  });
  await new Promise((resolve, reject) => {
    ws.addEventListener("open", resolve, { once: true });
    ws.addEventListener("error", () => reject(new Error(`WebSocket to ${url} failed`)), { once: true });
  });
  const prompt = invertPrompt();
  const total = [], post = [];
  for (let i = 0; i < runs + 1; i++) {  // the first run computes; the others are fully cached
    const id = crypto.randomUUID();
    const finished = new Promise((resolve) => {
      if (done.has(id)) resolve(done.get(id));
      else waiting.set(id, resolve);
    });
    const t0 = performance.now();
    const res = await fetch(`${url}/prompt`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ prompt, client_id: clientId, prompt_id: id }),
    });
    const answer = await res.json();
    const tPost = performance.now();
    if (res.status !== 200) throw new Error(`POST /prompt: ${res.status} ${JSON.stringify(answer)}`);
    const end = done.has(id) ? done.get(id) : await Promise.race([finished, sleep(30000).then(() => null)]);
    if (!end) throw new Error(`prompt ${id}: no execution_success in 30 s`);
    if (end.type !== "execution_success") throw new Error(`prompt ${id}: ${end.type}`);
    waiting.delete(id);
    done.delete(id);
    if (i > 0) {
      total.push(end.t - t0);
      post.push(tPost - t0);
    }
  }
  ws.close();
  return { post_to_execution_success_ms: stats(total), post_answer_ms: stats(post) };
}

async function main() {
  const args = parseArgs();
  const here = path.dirname(fileURLToPath(import.meta.url));
  const binary = args.binary ?? path.join(here, "..", "build", "comfycpp");
  const starts = Number(args.starts ?? 5), runs = Number(args.runs ?? 200);
  const result = { server: args.url ?? binary, host: os.hostname(), cpus: os.cpus().length, runs };

  if (args.url) {
    Object.assign(result, await cachedRuns(args.url, runs));
  } else {
    const ready = [];
    for (let i = 0; i < starts; i++) {
      const base = fs.mkdtempSync(path.join(os.tmpdir(), "comfycpp-latency-"));
      const srv = await startServer(binary, base);
      ready.push(srv.readyMs);
      if (i === starts - 1) Object.assign(result, await cachedRuns(srv.url, runs));
      await srv.stop();
      fs.rmSync(base, { recursive: true, force: true });
    }
    const s = [...ready].sort((a, b) => a - b);
    result.start_to_ready_ms = { best: Math.round(s[0] * 10) / 10, median: Math.round(percentile(s, 50) * 10) / 10,
                                 all: ready.map((v) => Math.round(v * 10) / 10) };
  }

  if (result.start_to_ready_ms)
    console.log(`start to ready (spawn -> first 200 on /system_stats): best ${result.start_to_ready_ms.best} ms, ` +
                `median ${result.start_to_ready_ms.median} ms over ${starts}`);
  const t = result.post_to_execution_success_ms, p = result.post_answer_ms;
  console.log(`cached re-run, POST /prompt -> execution_success: p50 ${t.p50} ms, p99 ${t.p99} ms ` +
              `(min ${t.min}, max ${t.max}, n ${t.n})`);
  console.log(`POST /prompt answer alone: p50 ${p.p50} ms, p99 ${p.p99} ms`);
  if (args.json && args.json !== true) fs.writeFileSync(args.json, JSON.stringify(result, null, 2) + "\n");
}

if (typeof globalThis.WebSocket === "undefined") {
  const child = spawn(process.execPath, ["--experimental-websocket", "--no-warnings", ...process.argv.slice(1)], {
    stdio: "inherit",
  });
  child.on("exit", (code) => process.exit(code ?? 1));
} else {
  await main();
}
