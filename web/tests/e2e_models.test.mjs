// End to end, the model library and the missing-models dialog, as a user does them in Debian's
// chromium (headless, playwright-core) against a fresh comfycpp: open the library with `m`, read
// a checkpoint's and a kohya LoRA's metadata, add loaders by button and by dragging, refresh after
// a file appears; load a workflow whose `models` list names a file that only a local HTTP server
// (started here) has, download it from the dialog with progress, see it in the loader's combo and
// queue the workflow; cancel a throttled download.
// Usage: node --test tests/e2e_models.test.mjs   (COMFYCPP_BIN, COMFYCPP_FIXTURES, CHROMIUM as in e2e.test.mjs)
import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { after, before, test } from "node:test";
import { fixturesDir, repoRoot, startServer } from "./server.mjs";
import { artifacts, frontEnd, openEditor } from "./browser.mjs";

// A safetensors file: the header (with __metadata__) and zero-filled F32 tensors.
function safetensors(tensors, metadata) {
  const header = { __metadata__: metadata };
  let offset = 0;
  for (const [name, shape] of Object.entries(tensors)) {
    const n = shape.reduce((a, b) => a * b, 1) * 4;
    header[name] = { dtype: "F32", shape, data_offsets: [offset, offset + n] };
    offset += n;
  }
  let json = Buffer.from(JSON.stringify(header));
  json = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, Buffer.alloc(offset)]);
}

const lora = safetensors({
  "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight": [4, 768],
  "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight": [320, 4],
}, {
  ss_output_name: "fox_style", ss_base_model_version: "sd_v1", ss_network_dim: "4",
  ss_tag_frequency: JSON.stringify({ "10_fox": { "red fox": 12, snow: 7, forest: 2 } }),
});
// The same tensors under other metadata: another SHA-256, so no file here matches it by hash.
function retagged(file, extra) {
  const n = Number(file.readBigUInt64LE(0));
  const header = JSON.parse(file.subarray(8, 8 + n).toString());
  header.__metadata__ = { ...header.__metadata__, ...extra };
  let json = Buffer.from(JSON.stringify(header));
  json = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, file.subarray(8 + n)]);
}
const tinyBytes = fs.readFileSync(path.join(fixturesDir(), "models/checkpoints/tiny_sd15.safetensors"));
const checkpoint = retagged(tinyBytes, { "modelspec.title": "downloaded for the web test" });
const checkpointSha = crypto.createHash("sha256").update(checkpoint).digest("hex");
const slowFile = safetensors({ "w": [2 * 1024 * 1024] }, { note: "throttled" }); // 8 MB

// The local model host: /fast/NAME (the checkpoint, paced so progress shows) and /slow/NAME
// (8 MB at about 160 KB/s), with HEAD and Range.
let files, filesUrl;
const requests = [];
function startFileServer() {
  const server = http.createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    const [, kind] = req.url.split("/");
    const body = kind === "fast" ? checkpoint : kind === "slow" ? slowFile : kind === "lora" ? lora : null;
    if (!body) { res.writeHead(404).end("no such file"); return; }
    let start = 0;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
    if (range) start = Math.min(Number(range[1]), body.length);
    const headers = { "Content-Type": "application/octet-stream", "Content-Length": body.length - start, "Accept-Ranges": "bytes" };
    if (range) headers["Content-Range"] = `bytes ${start}-${body.length - 1}/${body.length}`;
    res.writeHead(range ? 206 : 200, headers);
    if (req.method === "HEAD") { res.end(); return; }
    const [chunk, delay] = kind === "fast" ? [256 * 1024, 40] : [16 * 1024, 100];
    let at = start;
    const timer = setInterval(() => {
      if (at >= body.length) { clearInterval(timer); res.end(); return; }
      res.write(body.subarray(at, Math.min(body.length, at + chunk)));
      at += chunk;
    }, delay);
    res.on("close", () => clearInterval(timer));
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

let server, browser, page;
const errors = [];

before(async () => {
  assert.ok(fs.existsSync(path.join(frontEnd, "index.html")), `no built web UI in ${frontEnd} (npm run build)`);
  files = await startFileServer();
  filesUrl = `http://127.0.0.1:${files.address().port}`;
  // A user catalog (<user directory>/catalog.json) with one entry on the local host.
  const catalog = { models: [{ name: "web-test-lora", type: "lora", base: "SD1", folder: "loras", filename: "catalog_lora.safetensors",
    url: `${filesUrl}/lora/catalog_lora.safetensors`, size: lora.length, sha256: crypto.createHash("sha256").update(lora).digest("hex"),
    source: "generated by the test", description: "a LoRA the web test installs" }] };
  server = await startServer({ frontEnd, env: { COMFYCPP_DOWNLOAD_HOSTS: "127.0.0.1" },
    files: { "models/loras/fox_style.safetensors": lora, "user/catalog.json": JSON.stringify(catalog) } });
  ({ browser, page } = await openEditor(errors, { url: server.url }));
});

after(async () => {
  await browser?.close();
  await server?.stop();
  files?.closeAllConnections?.();
  files?.close();
});

const app = (fn, arg) => page.evaluate(fn, arg);
async function click([x, y]) {
  await page.mouse.move(x, y, { steps: 4 });
  await page.mouse.click(x, y);
}
const nodesOfType = (type) => app((t) => window.comfyApp.graph.nodes.filter((n) => n.type === t).map((n) => ({
  id: n.id, values: Object.fromEntries((n.widgets ?? []).map((w) => [w.name, w.value])), pos: [...n.pos],
})), type);
const infoValue = (key) => page.locator(`.comfy-models-info tr[data-key="${key}"] td`);
async function widgetPoint(id, name) {
  return app(([nid, wname]) => {
    const { canvas, graph } = window.comfyApp;
    const n = graph.getNodeById(nid);
    const w = n.widgets.find((x) => x.name === wname);
    const p = canvas.ds.convertOffsetToCanvas([n.pos[0] + n.size[0] / 2, n.pos[1] + w.y + 10]);
    const r = canvas.canvas.getBoundingClientRect();
    return [r.left + p[0], r.top + p[1]];
  }, [id, name]);
}
// A workflow file loaded the way a user does it: the menu's Load and the file picker.
async function openWorkflowFile(workflow, name) {
  const file = path.join(artifacts, name);
  fs.writeFileSync(file, JSON.stringify(workflow));
  const [chooser] = await Promise.all([page.waitForEvent("filechooser"), page.getByRole("button", { name: "Load", exact: true }).click()]);
  await chooser.setFiles(file);
}
// The default workflow, small and fast, with `ckpt` in the loader and `models` at the top level.
async function defaultWorkflow(ckpt, models) {
  await page.getByRole("button", { name: "Load default" }).click();
  await page.waitForFunction(() => window.comfyApp.graph.nodes.length === 7);
  const w = await app(() => window.comfyApp.serialize());
  for (const n of w.nodes) {
    if (n.type === "CheckpointLoaderSimple") n.widgets_values[0] = ckpt;
    if (n.type === "EmptyLatentImage") n.widgets_values = [64, 64, 1];
    if (n.type === "KSampler") { n.widgets_values[1] = "fixed"; n.widgets_values[2] = 2; }
  }
  w.models = models;
  return w;
}

test("the model library lists folders and files with their metadata and adds loaders", async (t) => {
  await click([700, 880]);
  await page.keyboard.press("m");
  const panel = page.locator(".comfy-models");
  await panel.waitFor();
  const tiny = panel.locator('.comfy-model-file[data-folder="checkpoints"][data-name="tiny_sd15.safetensors"]');
  await tiny.waitFor();
  // Sizes come from /experiment/models (the fixture checkpoint is a symlink there, so the LoRA shows it).
  assert.match(await panel.locator('.comfy-model-file[data-name="fox_style.safetensors"] .size').textContent(), /^\d+\.\d+ KB$/);
  // Select: its header's facts.
  await tiny.click();
  await page.locator(".comfy-models-title", { hasText: "tiny_sd15.safetensors" }).waitFor();
  assert.equal(await infoValue("kind").textContent(), "checkpoint");
  assert.equal(await infoValue("size").textContent(), `18.5 MB (${tinyBytes.length} bytes)`);
  assert.equal(await infoValue("format").first().textContent(), "safetensors");
  assert.match(await infoValue("tensors").textContent(), /^541, [\d,]+ parameters$/);
  assert.match(await infoValue("oracle_tiny_config").textContent(), /^\{"clip": \{"bos_token_id": 0, .*"hidden_act": "quick_gelu".*… \(\d+ characters\)$/);
  // Filter to the LoRA: kohya metadata, family from its tensors, trigger words from its tags.
  await page.locator(".comfy-models-filter").pressSequentially("fox", { delay: 20 });
  await page.waitForFunction(() => document.querySelectorAll(".comfy-model-file").length === 1);
  await panel.locator('.comfy-model-file[data-name="fox_style.safetensors"]').click();
  await page.locator(".comfy-models-title", { hasText: "fox_style" }).waitFor();
  assert.equal(await infoValue("kind").textContent(), "LoRA");
  assert.equal(await infoValue("family").textContent(), "SD15 (from tensors)");
  assert.equal(await infoValue("ss_network_dim").textContent(), "4");
  assert.deepEqual(await page.locator(".comfy-models-words .word").allTextContents(), ["red fox", "snow", "forest"]);
  await page.screenshot({ path: path.join(artifacts, "model-library.png") });
  // "Compute hash" hashes it on the server (POST /models/hash, `model_hash` messages); the
  // details then show the digest. Skipped on a server without background hashing.
  const hashRoute = await fetch(`${server.url}/api/models/hash/none`);
  if (hashRoute.status === 404 && !(await hashRoute.text()).includes("error")) t.diagnostic("no /models/hash route: hashing not checked");
  else {
    await page.getByRole("button", { name: "Compute hash" }).click();
    const sha = crypto.createHash("sha256").update(lora).digest("hex");
    await page.waitForFunction((h) => document.querySelector('.comfy-models-info tr[data-key="sha256"] td')?.textContent === h, sha);
    assert.equal(await infoValue("AutoV2").textContent(), sha.slice(0, 10));
    assert.equal(await page.getByRole("button", { name: "Compute hash" }).count(), 0);
  }
  // Its loader, from the details' button.
  await page.getByRole("button", { name: "Add LoraLoader" }).click();
  const loras = await nodesOfType("LoraLoader");
  assert.equal(loras.length, 1);
  assert.equal(loras[0].values.lora_name, "fox_style.safetensors");
  // Clear the filter; "+" on the checkpoint's row adds a checkpoint loader with it selected.
  await page.locator(".comfy-models-filter").fill("");
  await tiny.waitFor();
  const before = (await nodesOfType("CheckpointLoaderSimple")).length;
  await tiny.locator("button[data-act=add]").click();
  const ckpts = await nodesOfType("CheckpointLoaderSimple");
  assert.equal(ckpts.length, before + 1);
  assert.equal(ckpts.at(-1).values.ckpt_name, "tiny_sd15.safetensors");
  // Drag the row onto the canvas: a loader where it was dropped.
  const box = await tiny.boundingBox();
  await page.mouse.move(box.x + 40, box.y + box.height / 2, { steps: 3 });
  await page.mouse.down();
  await page.mouse.move(900, 600, { steps: 12 });
  await page.mouse.up();
  await page.waitForFunction((n) => window.comfyApp.graph.nodes.filter((x) => x.type === "CheckpointLoaderSimple").length === n, before + 2);
  const dropped = (await nodesOfType("CheckpointLoaderSimple")).at(-1);
  assert.equal(dropped.values.ckpt_name, "tiny_sd15.safetensors");
  const [gx, gy] = await app(() => window.comfyApp.canvas.ds.convertCanvasToOffset([900, 600]));
  assert.ok(Math.abs(dropped.pos[0] - gx) < 1 && Math.abs(dropped.pos[1] - gy) < 1, `dropped at ${dropped.pos}, expected ${gx},${gy}`);
  // A file appears in the folder: Refresh lists it, and the loaders' combos offer it.
  fs.copyFileSync(path.join(server.base, "models/loras/fox_style.safetensors"), path.join(server.base, "models/loras/fox_style_v2.safetensors"));
  await panel.getByRole("button", { name: "Refresh" }).click();
  await panel.locator('.comfy-model-file[data-name="fox_style_v2.safetensors"]').waitFor();
  await page.waitForFunction(() => window.comfyApp.graph.nodes.find((n) => n.type === "LoraLoader")
    .widgets.find((w) => w.name === "lora_name").options.values.includes("fox_style_v2.safetensors"));
  // `m` closes it again.
  await click([700, 880]);
  await page.keyboard.press("m");
  await panel.waitFor({ state: "hidden" });
});

test("a workflow that needs a missing model: download it from the dialog and queue", async () => {
  const url = `${filesUrl}/fast/downloaded_sd15.safetensors`;
  const workflow = await defaultWorkflow("downloaded_sd15.safetensors", [
    { name: "downloaded_sd15.safetensors", url, directory: "checkpoints", hash: checkpointSha, hash_type: "SHA256" },
  ]);
  await app(() => { window.__seen = []; window.comfyApp.api.on("asset_download", (d) => window.__seen.push(d)); });
  await openWorkflowFile(workflow, "needs_model.json");
  const dialog = page.locator(".comfy-missing");
  await dialog.waitFor();
  const row = dialog.locator('tr.comfy-missing-row[data-name="downloaded_sd15.safetensors"]');
  assert.equal(await row.getAttribute("data-state"), "missing");
  assert.equal(await row.locator(".dir").textContent(), "models/checkpoints");
  assert.equal(await row.locator(".url span").getAttribute("title"), url);
  // The loader names a file the server does not list (yet).
  const loaderId = await app(() => window.comfyApp.graph.nodes.find((n) => n.type === "CheckpointLoaderSimple").id);
  assert.ok(!(await app((id) => window.comfyApp.graph.getNodeById(id).widgets[0].options.values, loaderId)).includes("downloaded_sd15.safetensors"));
  await row.getByRole("button", { name: "Download" }).click();
  // Progress on the row while it runs (bytes, percent, speed), then done.
  await page.waitForFunction(() => {
    const r = document.querySelector('tr.comfy-missing-row[data-name="downloaded_sd15.safetensors"]');
    return r?.dataset.state === "running" && /MB \/ 18\.5 MB · \d+% · .+\/s/.test(r.querySelector(".dl-text").textContent);
  });
  await page.screenshot({ path: path.join(artifacts, "missing-models-progress.png") });
  await page.waitForFunction(() => document.querySelector('tr.comfy-missing-row[data-name="downloaded_sd15.safetensors"]')?.dataset.state === "done", null, { timeout: 60000 });
  assert.equal(await row.locator(".state").textContent(), "✓ downloaded");
  const seen = await app(() => window.__seen);
  assert.ok(seen.some((m) => m.status === "running" && m.bytes_downloaded > 0 && m.bytes_downloaded < m.bytes_total), "no running progress message");
  assert.equal(seen.at(-1).status, "completed");
  const got = fs.readFileSync(path.join(server.base, "models/checkpoints/downloaded_sd15.safetensors"));
  assert.equal(crypto.createHash("sha256").update(got).digest("hex"), checkpointSha);
  // The loader's combo now offers it: pick it from the combo's menu as a user would.
  await page.waitForFunction((id) => window.comfyApp.graph.getNodeById(id).widgets[0].options.values.includes("downloaded_sd15.safetensors"), loaderId);
  await dialog.getByRole("button", { name: "Close" }).click();
  await dialog.waitFor({ state: "detached" });
  await click(await widgetPoint(loaderId, "ckpt_name"));
  await page.locator(".litecontextmenu .litemenu-entry", { hasText: "downloaded_sd15.safetensors" }).click();
  // Queue it: the output image comes back.
  await click([700, 880]);
  await page.keyboard.press("Control+Enter");
  await page.waitForFunction(() => window.comfyApp.graph.nodes.find((n) => n.type === "SaveImage")?.imgs?.[0]?.naturalWidth === 64, null, { timeout: 120000 });
  const history = await (await fetch(`${server.url}/api/history`)).json();
  const entry = Object.values(history).at(-1);
  assert.equal(entry.status.status_str, "success");
  assert.equal(Object.values(entry.prompt[2]).find((n) => n.class_type === "CheckpointLoaderSimple").inputs.ckpt_name, "downloaded_sd15.safetensors");
});

test("a throttled download is cancelled from the dialog; a model without url says so; one found under another name is used", async () => {
  const workflow = await defaultWorkflow("TINY_SD15.safetensors", [
    { name: "slow_lora.safetensors", url: `${filesUrl}/slow/slow_lora.safetensors`, directory: "loras" },
    { name: "nowhere.safetensors", directory: "vae" },
  ]);
  // Dropped on the canvas this time.
  const data = await page.evaluateHandle((text) => {
    const dt = new DataTransfer();
    dt.items.add(new File([text], "needs_lora.json", { type: "application/json" }));
    return dt;
  }, JSON.stringify(workflow));
  await page.mouse.move(800, 450, { steps: 5 });
  await page.dispatchEvent("#graph-canvas", "dragover", { dataTransfer: data });
  await page.dispatchEvent("#graph-canvas", "drop", { dataTransfer: data });
  const dialog = page.locator(".comfy-missing");
  await dialog.waitFor();
  const slow = dialog.locator('tr.comfy-missing-row[data-name="slow_lora.safetensors"]');
  const nowhere = dialog.locator('tr.comfy-missing-row[data-name="nowhere.safetensors"]');
  assert.equal(await dialog.locator("tr.comfy-missing-row").count(), 3);
  // The loader names the checkpoint in other letter case: "Use" selects the file that is there.
  const upper = dialog.locator('tr.comfy-missing-row[data-name="TINY_SD15.safetensors"]');
  assert.equal(await upper.locator(".state").textContent(), "found elsewhere");
  const loaderId = await app(() => window.comfyApp.graph.nodes.find((n) => n.type === "CheckpointLoaderSimple").id);
  assert.equal(await app((id) => window.comfyApp.graph.getNodeById(id).widgets[0].value, loaderId), "TINY_SD15.safetensors");
  await upper.getByRole("button", { name: "Use tiny_sd15.safetensors" }).click();
  assert.equal(await upper.getAttribute("data-state"), "used");
  assert.equal(await app((id) => window.comfyApp.graph.getNodeById(id).widgets[0].value, loaderId), "tiny_sd15.safetensors");
  assert.equal(await upper.locator(".dl-text").textContent(), "1 loader now uses tiny_sd15.safetensors");
  assert.equal(await nowhere.locator(".url").textContent(), "no download url known");
  assert.equal(await nowhere.getAttribute("data-state"), "no-url");
  assert.equal(await nowhere.getByRole("button", { name: "Download" }).isVisible(), false);
  await dialog.getByRole("button", { name: "Download all" }).click();
  await page.waitForFunction(() => {
    const r = document.querySelector('tr.comfy-missing-row[data-name="slow_lora.safetensors"]');
    return r?.dataset.state === "running" && /KB|MB/.test(r.querySelector(".dl-text").textContent);
  });
  await slow.getByRole("button", { name: "Cancel" }).click();
  await page.waitForFunction(() => document.querySelector('tr.comfy-missing-row[data-name="slow_lora.safetensors"]')?.dataset.state === "cancelled");
  assert.equal(await slow.locator(".state").textContent(), "cancelled");
  assert.equal(await slow.getByRole("button", { name: "Retry" }).isVisible(), true);
  await page.screenshot({ path: path.join(artifacts, "missing-models-cancelled.png") });
  const downloads = await (await fetch(`${server.url}/api/models/downloads`)).json();
  const d = downloads.find((x) => x.filename === "slow_lora.safetensors");
  assert.equal(d.status, "cancelled");
  assert.ok(d.bytes_done < slowFile.length);
  const left = fs.readdirSync(path.join(server.base, "models/loras"));
  assert.ok(!left.some((f) => f.startsWith("slow_lora")), `left in models/loras: ${left}`);
  await page.keyboard.press("Escape");
  await dialog.waitFor({ state: "detached" });
  assert.deepEqual(errors.filter((e) => !/Failed to load resource/.test(e)), []);
});

test("the library's catalog tab installs a known model by name", async (t) => {
  if ((await fetch(`${server.url}/api/models/catalog`)).status === 404) { t.skip("no /models/catalog route"); return; }
  await click([700, 880]);
  await page.keyboard.press("m");
  const panel = page.locator(".comfy-models");
  await panel.waitFor();
  await panel.getByRole("button", { name: "Catalog" }).click();
  await page.locator(".comfy-models-filter").fill("web-test");
  const entry = panel.locator('.comfy-catalog-entry[data-name="web-test-lora"]');
  await entry.waitFor();
  assert.equal(await entry.getAttribute("data-state"), "available");
  assert.match(await entry.locator(".sub").textContent(), /lora · SD1 → models\/loras\/catalog_lora\.safetensors/);
  await entry.getByRole("button", { name: "Install" }).click();
  await page.waitForFunction(() => document.querySelector('.comfy-catalog-entry[data-name="web-test-lora"]')?.dataset.state === "installed");
  await entry.locator(".ok", { hasText: "installed" }).waitFor();
  await page.screenshot({ path: path.join(artifacts, "model-catalog.png") });
  assert.deepEqual(fs.readFileSync(path.join(server.base, "models/loras/catalog_lora.safetensors")), lora);
  // Back on the installed files: it is listed under loras.
  await panel.getByRole("button", { name: "Installed" }).click();
  await page.locator(".comfy-models-filter").fill("");
  await panel.locator('.comfy-model-file[data-folder="loras"][data-name="catalog_lora.safetensors"]').waitFor();
  await click([700, 880]);
  await page.keyboard.press("m");
  await panel.waitFor({ state: "hidden" });
  assert.deepEqual(errors.filter((e) => !/Failed to load resource/.test(e)), []);
});
