// End to end: Debian's chromium (headless, through playwright-core) on the web UI that a fresh
// comfycpp serves, driven with real mouse moves and key presses: the default workflow, widget
// edits, node search, copy/paste, bypass/mute, groups, undo, queueing against the tiny
// checkpoint, the output image and latent previews, validation errors on the node, and a PNG
// dropped in (and opened with Ctrl+O) bringing its workflow back.
// Usage: node --test tests/e2e.test.mjs   (COMFYCPP_BIN, COMFYCPP_FIXTURES, CHROMIUM override paths;
// screenshots go to $WEB_TEST_ARTIFACTS, default web/test-results/).
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { repoRoot, startServer } from "./server.mjs";
import { artifacts, frontEnd, nodeTitleScreenPoint, openEditor, screenPoint } from "./browser.mjs";

let server, browser, page;
const errors = [];

before(async () => {
  if (!process.env.COMFYCPP_E2E_URL)
    assert.ok(fs.existsSync(path.join(frontEnd, "index.html")), `no built web UI in ${frontEnd} (npm run build)`);
  // COMFYCPP_E2E_URL: drive a server that is already up (e.g. `npm run dev`) instead of a fresh one.
  server = process.env.COMFYCPP_E2E_URL ? { url: process.env.COMFYCPP_E2E_URL, external: true, stop() {} }
    : await startServer({ frontEnd, extraArgs: ["--preview-method", "latent2rgb"],
      files: { "models/checkpoints/zz_broken.safetensors": "this is not a checkpoint" } });
  ({ browser, page } = await openEditor(errors, { acceptDownloads: true }));
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const app = (fn, arg) => page.evaluate(fn, arg);

const toScreen = (x, y) => screenPoint(page, x, y);
const nodeTitlePoint = (id) => nodeTitleScreenPoint(page, id);
async function widgetPoint(id, name) {
  const [x, y] = await app(([nid, wname]) => {
    const n = window.comfyApp.graph.getNodeById(nid);
    const w = n.widgets.find((w) => w.name === wname);
    return [n.pos[0] + n.size[0] / 2, n.pos[1] + w.y + 10];
  }, [id, name]);
  return toScreen(x, y);
}
const widgetValue = (id, name) => app(([nid, wname]) => window.comfyApp.graph.getNodeById(nid).widgets.find((w) => w.name === wname).value, [id, name]);
const nodeCount = () => app(() => window.comfyApp.graph.nodes.length);
async function click([x, y], options) {
  await page.mouse.move(x, y, { steps: 4 });
  await page.mouse.click(x, y, options);
}
// Clicks a number widget's middle, types the value into litegraph's prompt, presses Enter.
async function setNumber(id, name, value) {
  await click(await widgetPoint(id, name));
  const input = page.locator(".graphdialog input").last();
  await input.waitFor();
  await input.fill(String(value));
  await input.press("Enter");
  await page.waitForFunction(([nid, wname, v]) =>
    window.comfyApp.graph.getNodeById(nid).widgets.find((w) => w.name === wname).value === v, [id, name, value]);
}
async function selectOnly(id) {
  await click([20, 880]); // empty canvas: clears the selection
  await click(await nodeTitlePoint(id));
}

test("the editor loads with the default workflow", async () => {
  await page.goto(server.url + "/");
  await page.waitForSelector("body[data-ready='1']");
  const types = await app(() => window.comfyApp.graph.nodes.map((n) => n.type).sort());
  assert.deepEqual(types, ["CLIPTextEncode", "CLIPTextEncode", "CheckpointLoaderSimple", "EmptyLatentImage", "KSampler", "SaveImage", "VAEDecode"]);
  const prompt = await app(() => window.comfyApp.toPrompt());
  assert.deepEqual(prompt["3"].inputs.model, ["4", 0]);
  assert.deepEqual(await app(() => window.comfyApp.graph.getNodeById(4).widgets[0].options.values),
    ["tiny_sd15.safetensors", "zz_broken.safetensors"]);
  assert.equal(await widgetValue(4, "ckpt_name"), "tiny_sd15.safetensors");
  assert.equal(prompt["3"].inputs.control_after_generate, undefined);
  // Assets come from comfycpp itself, with cache headers.
  if (server.external) return;
  const res = await fetch(server.url + "/");
  assert.equal(res.headers.get("cache-control"), "no-cache");
  assert.match(res.headers.get("content-type"), /text\/html/);
  assert.equal((await fetch(server.url + "/assets/../../../etc/passwd")).status, 404);
});

test("search, copy/paste, bypass, mute, group, undo", async () => {
  const n0 = await nodeCount();
  // Double-click on empty canvas: litegraph's node search; type and pick.
  await page.mouse.move(700, 820, { steps: 4 });
  await page.mouse.dblclick(700, 820);
  const search = page.locator(".litesearchbox input").first();
  await search.waitFor();
  await search.pressSequentially("ImageInvert", { delay: 20 });
  await page.locator(".litesearchbox .lite-search-item").first().waitFor();
  await search.press("Enter");
  await page.waitForFunction((n) => window.comfyApp.graph.nodes.length === n + 1, n0);
  // Copy and paste the KSampler.
  await selectOnly(3);
  await page.keyboard.press("Control+c");
  await page.mouse.move(900, 700, { steps: 4 });
  await page.keyboard.press("Control+v");
  await page.waitForFunction((n) => window.comfyApp.graph.nodes.length === n + 2, n0);
  // Bypass and mute the VAEDecode.
  await selectOnly(8);
  await page.keyboard.press("Control+b");
  assert.equal(await app(() => window.comfyApp.graph.getNodeById(8).mode), 4);
  await page.keyboard.press("Control+m");
  assert.equal(await app(() => window.comfyApp.graph.getNodeById(8).mode), 2);
  const prompt = await app(() => window.comfyApp.toPrompt());
  assert.equal(prompt["8"], undefined);
  await page.keyboard.press("Control+m");
  assert.equal(await app(() => window.comfyApp.graph.getNodeById(8).mode), 0);
  await page.keyboard.press("Control+g");
  assert.equal(await app(() => window.comfyApp.graph.groups.length), 1);
  // Delete, then undo brings it back; redo deletes it again; undo once more.
  await page.keyboard.press("Delete");
  await page.waitForFunction(() => !window.comfyApp.graph.getNodeById(8));
  await page.keyboard.press("Control+z");
  await page.waitForFunction(() => !!window.comfyApp.graph.getNodeById(8));
  await page.keyboard.press("Control+y");
  await page.waitForFunction(() => !window.comfyApp.graph.getNodeById(8));
  await page.keyboard.press("Control+z");
  await page.waitForFunction(() => !!window.comfyApp.graph.getNodeById(8));
  // Back to the default workflow with the menu.
  await page.getByRole("button", { name: "Load default" }).click();
  await page.waitForFunction(() => window.comfyApp.graph.nodes.length === 7 && window.comfyApp.graph.groups.length === 0);
});

let outputName;

test("queue the default workflow with edited widgets and see the image", async (t) => {
  await page.evaluate(() => {
    window.__previews = 0;
    window.comfyApp.api.on("b_preview", () => window.__previews++);
  });
  await setNumber(5, "width", 64);
  await setNumber(5, "height", 64);
  await setNumber(3, "steps", 3);
  // The positive prompt: a multi-line <textarea> over the node.
  const text = page.locator("textarea.comfy-multiline[data-node='6']");
  await text.click();
  await page.keyboard.press("Control+a");
  await page.keyboard.type("a red fox in the snow");
  assert.equal(await widgetValue(6, "text"), "a red fox in the snow");
  const seed = await widgetValue(3, "seed");
  await click([20, 880]);
  await page.keyboard.press("Control+Enter");
  // control_after_generate=randomize changes the seed once queued.
  await page.waitForFunction((s) => window.comfyApp.graph.getNodeById(3).widgets.find((w) => w.name === "seed").value !== s, seed);
  const thumb = page.locator(".comfy-history img.comfy-thumb").first();
  await thumb.waitFor({ timeout: 120000 });
  await page.waitForFunction(() => window.comfyApp.graph.getNodeById(9).imgs?.[0]?.naturalWidth === 64);
  outputName = await app(() => new URL(window.comfyApp.graph.getNodeById(9).imgs[0].src).searchParams.get("filename"));
  assert.match(outputName, /^ComfyUI_\d+_\.png$/);
  // Latent previews (binary WS frames) show on the running node when the server sends them.
  const previews = await app(() => window.__previews);
  assert.ok(previews > 0, "the server sent no latent preview frames (--preview-method latent2rgb)");
  await page.waitForFunction(() => window.comfyApp.graph.getNodeById(3).imgs?.[0]?.src.startsWith("blob:"));
  t.diagnostic(`${previews} latent previews`);
  // The image viewer.
  await thumb.click();
  await page.locator(".comfy-viewer img").waitFor();
  await page.screenshot({ path: path.join(artifacts, "viewer.png") });
  await page.keyboard.press("Escape");
  await page.locator(".comfy-viewer").waitFor({ state: "detached" });
  await page.screenshot({ path: path.join(artifacts, "editor.png") });
  if (process.env.UPDATE_README_SCREENSHOT) await page.screenshot({ path: path.join(repoRoot, "docs/screenshot.png") });
});

test("a validation error marks the node and its input", async () => {
  // Delete the checkpoint loader: KSampler's model input goes missing.
  await selectOnly(4);
  await page.keyboard.press("Delete");
  await page.waitForFunction(() => !window.comfyApp.graph.getNodeById(4));
  await page.keyboard.press("Control+Enter");
  await page.waitForFunction(() => (window.comfyApp.graph.getNodeById(3).errors ?? []).some((e) => e.input === "model"));
  await page.locator(".comfy-toast.error").waitFor();
  await page.screenshot({ path: path.join(artifacts, "validation-error.png") });
  await page.keyboard.press("Control+z");
  await page.waitForFunction(() => !!window.comfyApp.graph.getNodeById(4));
});

test("an execution error shows on the node that failed", async () => {
  // Pick the broken checkpoint in the combo's menu, as a user would.
  await click(await widgetPoint(4, "ckpt_name"));
  await page.locator(".litecontextmenu .litemenu-entry", { hasText: "zz_broken.safetensors" }).click();
  assert.equal(await widgetValue(4, "ckpt_name"), "zz_broken.safetensors");
  await click([20, 880]);
  await page.keyboard.press("Control+Enter");
  await page.waitForFunction(() => (window.comfyApp.graph.getNodeById(4).errors ?? []).length > 0, null, { timeout: 60000 });
  await page.locator(".comfy-toast.error").waitFor();
  await page.screenshot({ path: path.join(artifacts, "execution-error.png") });
  await click(await widgetPoint(4, "ckpt_name"));
  await page.locator(".litecontextmenu .litemenu-entry", { hasText: "tiny_sd15.safetensors" }).click();
  assert.equal(await widgetValue(4, "ckpt_name"), "tiny_sd15.safetensors");
});

test("a PNG dropped on the editor brings its workflow back; so does Ctrl+O", async () => {
  const png = Buffer.from(await (await fetch(`${server.url}/api/view?filename=${outputName}&type=output`)).arrayBuffer());
  const file = path.join(artifacts, "dropped.png");
  fs.writeFileSync(file, png);
  await page.getByRole("button", { name: "Load default" }).click();
  await page.waitForFunction(() => window.comfyApp.graph.getNodeById(5).widgets.find((w) => w.name === "width").value === 512);
  const data = await page.evaluateHandle(async (b64) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const dt = new DataTransfer();
    dt.items.add(new File([bytes], "ComfyUI_00001_.png", { type: "image/png" }));
    return dt;
  }, png.toString("base64"));
  await page.mouse.move(800, 450, { steps: 5 });
  await page.dispatchEvent("#graph-canvas", "dragover", { dataTransfer: data });
  await page.dispatchEvent("#graph-canvas", "drop", { dataTransfer: data });
  await page.waitForFunction(() => window.comfyApp.graph.getNodeById(5).widgets.find((w) => w.name === "width").value === 64);
  assert.equal(await widgetValue(6, "text"), "a red fox in the snow");
  assert.equal(await widgetValue(3, "steps"), 3);
  // Ctrl+O: the file picker.
  await page.getByRole("button", { name: "Load default" }).click();
  await page.waitForFunction(() => window.comfyApp.graph.getNodeById(5).widgets.find((w) => w.name === "width").value === 512);
  await click([20, 880]);
  const [chooser] = await Promise.all([page.waitForEvent("filechooser"), page.keyboard.press("Control+o")]);
  await chooser.setFiles(file);
  await page.waitForFunction(() => window.comfyApp.graph.getNodeById(5).widgets.find((w) => w.name === "width").value === 64);
  // Ctrl+S downloads the workflow JSON.
  const [download] = await Promise.all([page.waitForEvent("download"), page.keyboard.press("Control+s")]);
  const saved = JSON.parse(fs.readFileSync(await download.path(), "utf8"));
  assert.equal(saved.nodes.length, 7);
  assert.deepEqual(errors.filter((e) => !/Failed to load resource/.test(e)), []);
});

test("Export (API) downloads the prompt; loading that file rebuilds the graph", async () => {
  const before = await app(() => window.comfyApp.toPrompt());
  const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Export (API)" }).click()]);
  const file = path.join(artifacts, "workflow_api.json");
  fs.copyFileSync(await download.path(), file);
  assert.deepEqual(JSON.parse(fs.readFileSync(file, "utf8")), before);
  await page.getByRole("button", { name: "Load default" }).click();
  await page.waitForFunction(() => window.comfyApp.graph.getNodeById(5).widgets.find((w) => w.name === "width").value === 512);
  await click([20, 880]);
  const [chooser] = await Promise.all([page.waitForEvent("filechooser"), page.keyboard.press("Control+o")]);
  await chooser.setFiles(file);
  await page.waitForFunction(() => window.comfyApp.graph.getNodeById(5).widgets.find((w) => w.name === "width").value === 64);
  assert.deepEqual(await app(() => window.comfyApp.toPrompt()), before);
});

test("a widget takes a link: a PrimitiveInt dragged onto KSampler's steps", async () => {
  await page.getByRole("button", { name: "Load default" }).click();
  await page.waitForFunction(() => window.comfyApp.graph.nodes.length === 7);
  await page.mouse.move(400, 700, { steps: 4 });
  await page.mouse.dblclick(400, 700);
  const search = page.locator(".litesearchbox input").first();
  await search.waitFor();
  await search.pressSequentially("PrimitiveInt", { delay: 20 });
  await page.locator(".litesearchbox .lite-search-item").first().waitFor();
  await search.press("Enter");
  const id = await page.waitForFunction(() => window.comfyApp.graph.nodes.find((n) => n.type === "PrimitiveInt")?.id).then((h) => h.jsonValue());
  await page.waitForTimeout(100);
  const from = await app((nid) => window.comfyApp.graph.getNodeById(nid).getConnectionPos(false, 0), id);
  const to = await app(() => {
    const n = window.comfyApp.graph.getNodeById(3);
    return n.getConnectionPos(true, n.inputs.findIndex((i) => i.widget?.name === "steps"));
  });
  const [fx, fy] = await toScreen(from[0], from[1]);
  const [tx, ty] = await toScreen(to[0], to[1]);
  await page.mouse.move(fx, fy, { steps: 3 });
  await page.mouse.down();
  await page.mouse.move(tx, ty, { steps: 12 });
  await page.mouse.up();
  const prompt = await page.waitForFunction((nid) => {
    const p = window.comfyApp.toPrompt();
    return Array.isArray(p["3"].inputs.steps) && p["3"].inputs.steps[0] === String(nid) ? p : null;
  }, id).then((h) => h.jsonValue());
  assert.deepEqual(prompt["3"].inputs.steps, [String(id), 0]);
  assert.equal(prompt[String(id)].class_type, "PrimitiveInt");
});

test("an image uploaded into LoadImage shows on the node", async () => {
  await page.mouse.move(950, 780, { steps: 4 });
  await page.mouse.dblclick(950, 780);
  const search = page.locator(".litesearchbox input").first();
  await search.waitFor();
  await search.pressSequentially("LoadImage", { delay: 20 });
  await page.locator(".litesearchbox .lite-search-item").first().waitFor();
  await search.press("Enter");
  const id = await page.waitForFunction(() => window.comfyApp.graph.nodes.find((n) => n.type === "LoadImage")?.id).then((h) => h.jsonValue());
  await page.waitForTimeout(100);
  const [chooser] = await Promise.all([page.waitForEvent("filechooser"), click(await widgetPoint(id, "upload"))]);
  await chooser.setFiles(path.join(artifacts, "dropped.png"));
  await page.waitForFunction((nid) => window.comfyApp.graph.getNodeById(nid).widgets.find((w) => w.name === "image").value === "dropped.png", id);
  await page.waitForFunction((nid) => window.comfyApp.graph.getNodeById(nid).imgs?.[0]?.naturalWidth === 64, id);
  const prompt = await app(() => window.comfyApp.toPrompt());
  assert.equal(prompt[String(id)].inputs.image, "dropped.png");
  assert.equal(prompt[String(id)].inputs.upload, undefined);
  await page.screenshot({ path: path.join(artifacts, "upload.png") });
});

test("the queue panel cancels a pending prompt and interrupts the running one", async () => {
  await page.getByRole("button", { name: "Load default" }).click();
  await page.waitForFunction(() => window.comfyApp.graph.nodes.length === 7);
  await setNumber(5, "width", 64);
  await setNumber(5, "height", 64);
  await setNumber(3, "steps", 200);
  await click([20, 880]);
  await page.keyboard.press("Control+Enter");
  await page.keyboard.press("Control+Shift+Enter");
  const pending = page.locator(".comfy-pending .comfy-queue-item");
  await pending.first().waitFor();
  await pending.first().locator("button").click();
  await pending.first().waitFor({ state: "detached" });
  await page.locator(".comfy-running .comfy-progress").waitFor();
  await page.waitForFunction(() => window.comfyApp.graph.getNodeById(3).progress !== undefined);
  await page.screenshot({ path: path.join(artifacts, "running.png") });
  await page.getByRole("button", { name: "Cancel running" }).click();
  await page.locator(".comfy-running i", { hasText: "idle" }).waitFor();
  const queue = await (await fetch(`${server.url}/api/queue`)).json();
  assert.deepEqual([queue.queue_running.length, queue.queue_pending.length], [0, 0]);
  const history = await (await fetch(`${server.url}/api/history`)).json();
  const interrupted = Object.values(history).filter((h) =>
    (h.status?.messages ?? []).some(([type]) => type === "execution_interrupted"));
  assert.equal(interrupted.length, 1);
  assert.equal(await app(() => window.comfyApp.graph.getNodeById(3).progress), undefined);
});

test("every UI workflow fixture loads into the editor and queues as ComfyUI's frontend does", async () => {
  const dir = path.join(process.env.COMFYCPP_FIXTURES || path.join(repoRoot, "tests/fixtures"), "workflows/ui");
  const failures = [];
  for (const f of fs.readdirSync(dir).filter((f) => f.endsWith(".json") && !f.endsWith(".api.json"))) {
    const workflow = JSON.parse(fs.readFileSync(path.join(dir, f), "utf8"));
    const expected = JSON.parse(fs.readFileSync(path.join(dir, f.replace(/\.json$/, ".api.json")), "utf8"));
    const got = await app((w) => { window.comfyApp.loadWorkflow(w); return window.comfyApp.toPrompt(); }, workflow).catch((e) => String(e));
    try { assert.deepEqual(got, expected); } catch { failures.push(`${f}: ${JSON.stringify(got).slice(0, 300)}`); }
  }
  assert.deepEqual(failures, []);
});
