// Load and soak benchmark for `comfycpp serve` (or the real ComfyUI): hundreds of WebSocket
// clients, a burst of queued prompts with random interrupts and deletes, repeated uploads and
// views. Prints requests/s, p50/p99 latency, peak RSS of the server process, and checks that
// every prompt ended either in history or deleted, none twice.
//
//   node --experimental-websocket bench/server_load.mjs --url http://127.0.0.1:8188 --pid PID \
//        [--clients 200] [--prompts 300] [--uploads 200]
// Node 20 needs --experimental-websocket (Node 22 has WebSocket built in). No npm packages.
import fs from "node:fs";

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => {
  if (a.startsWith("--")) acc.push([a.slice(2), all[i + 1]]);
  return acc;
}, []));
const url = args.url ?? "http://127.0.0.1:8188";
const pid = args.pid ? Number(args.pid) : null;
const nClients = Number(args.clients ?? 200), nPrompts = Number(args.prompts ?? 300), nUploads = Number(args.uploads ?? 200);
const wsUrl = url.replace(/^http/, "ws");

const latencies = [];
let requests = 0, failures = 0;
async function timed(path, init) {
  const t0 = performance.now();
  const res = await fetch(url + path, init);
  const body = await res.arrayBuffer();
  latencies.push(performance.now() - t0);
  requests++;
  if (res.status >= 500) failures++;
  return { status: res.status, body };
}

function peakRss() {
  if (!pid) return null;
  const s = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  const m = s.match(/VmHWM:\s+(\d+) kB/);
  return m ? Number(m[1]) / 1024 : null;
}

const workflow = (seed) => ({
  "1": { class_type: "EmptyImage", inputs: { width: 64, height: 64, batch_size: 1, color: seed % 16777215 } },
  "2": { class_type: "ImageInvert", inputs: { image: ["1", 0] } },
  "3": { class_type: "SaveImage", inputs: { images: ["2", 0], filename_prefix: "bench" } },
});

// A 1x1 PNG.
const png = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==", "base64");

const start = performance.now();
// 1. WebSocket clients.
const sockets = [];
let wsMessages = 0;
await Promise.all(Array.from({ length: nClients }, (_, i) => new Promise((resolve) => {
  const ws = new WebSocket(`${wsUrl}/ws?clientId=bench${i}`);
  ws.onmessage = () => { wsMessages++; };
  ws.onopen = () => resolve();
  ws.onerror = () => { failures++; resolve(); };
  sockets.push(ws);
})));
const wsReady = performance.now();

// 2. A burst of prompts, with random deletes and interrupts while they run.
const ids = [];
await Promise.all(Array.from({ length: nPrompts }, async (_, i) => {
  const r = await timed("/prompt", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ prompt: workflow(i), client_id: `bench${i % nClients}` }) });
  if (r.status === 200) ids.push(JSON.parse(Buffer.from(r.body).toString()).prompt_id);
}));
const deleted = new Set();
for (const id of ids) if (Math.random() < 0.1) deleted.add(id);
await timed("/queue", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ delete: [...deleted] }) });
for (let i = 0; i < 5; i++) await timed("/interrupt", { method: "POST", body: "" });

// 3. Uploads and views, concurrently with the queue draining.
await Promise.all(Array.from({ length: nUploads }, async (_, i) => {
  const form = new FormData();
  form.append("image", new Blob([png]), `bench_${i % 20}.png`);
  form.append("overwrite", "true");
  const r = await timed("/upload/image", { method: "POST", body: form });
  if (r.status === 200) await timed(`/view?filename=bench_${i % 20}.png&type=input`);
}));

// 4. Wait for the queue to drain (bounded), then check every prompt.
const deadline = performance.now() + 120000;
while (performance.now() < deadline) {
  const q = JSON.parse(Buffer.from((await timed("/queue")).body).toString());
  if (q.queue_running.length === 0 && q.queue_pending.length === 0) break;
  await new Promise((r) => setTimeout(r, 100));
}
const elapsed = (performance.now() - start) / 1000;
const history = JSON.parse(Buffer.from((await timed("/history")).body).toString());
let inHistory = 0, missing = 0, both = 0;
for (const id of ids) {
  const h = id in history, d = deleted.has(id);
  if (h && d) both++;  // deleted too late (it was running): allowed, counted
  if (h) inHistory++;
  else if (!d) missing++;
}
const entries = Object.keys(history).length;
const unique = new Set(Object.keys(history)).size;
for (const ws of sockets) ws.close();
latencies.sort((a, b) => a - b);
const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))].toFixed(2);
console.log(JSON.stringify({
  url, clients: nClients, ws_connect_s: ((wsReady - start) / 1000).toFixed(3), prompts: ids.length, deleted: deleted.size,
  in_history: inHistory, deleted_but_ran: both, missing, history_entries: entries, duplicate_entries: entries - unique,
  requests, failures_5xx: failures, requests_per_s: (requests / elapsed).toFixed(1), p50_ms: pct(0.5), p99_ms: pct(0.99),
  ws_messages: wsMessages, peak_rss_mb: peakRss(), elapsed_s: elapsed.toFixed(2),
}, null, 1));
process.exit(missing === 0 ? 0 : 1);
