// End to end, the editor's remaining features as a user does them (Debian's chromium through
// playwright-core, real mouse moves and key presses, a fresh comfycpp with the tiny checkpoint):
// the mask editor (paint, brush size, hardness, erase, zoom and pan, save through /upload/mask,
// reopen with the mask loaded, invert, clear) checked on the saved file's pixels; toggles, number
// clamping and rounding, multi-line text, control_after_generate; combo refresh after a model file
// is added; reroutes, Ctrl+Shift+V, Ctrl+Y, Ctrl+A, Space+drag, Ctrl+S; queue at the front, latent
// previews on the running sampler, history thumbnails and the viewer's "Load workflow".
// Usage: node --test tests/e2e_editor.test.mjs   (COMFYCPP_BIN, COMFYCPP_FIXTURES, CHROMIUM as in
// e2e.test.mjs; screenshots go to $WEB_TEST_ARTIFACTS, default web/test-results/).
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import zlib from "node:zlib";
import { after, before, test } from "node:test";
import { fixturesDir, repoRoot, startServer } from "./server.mjs";
import { artifacts, frontEnd, nodeTitleScreenPoint, openEditor, screenPoint } from "./browser.mjs";

let server, browser, page;
const errors = [];

// ---- PNG in and out (8-bit RGB/RGBA, every filter), so that the test reads the saved pixels itself.
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type, data) {
  const len = Buffer.alloc(4), crc = Buffer.alloc(4), body = Buffer.concat([Buffer.from(type, "latin1"), data]);
  len.writeUInt32BE(data.length);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}
function encodePng(width, height, rgb) {
  const raw = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) rgb.copy(raw, y * (width * 3 + 1) + 1, y * width * 3, (y + 1) * width * 3);
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; ihdr[9] = 2; // 8-bit RGB
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk("IHDR", ihdr),
    chunk("IDAT", zlib.deflateSync(raw)), chunk("IEND", Buffer.alloc(0))]);
}
function decodePng(buf) {
  assert.equal(buf.readUInt32BE(0), 0x89504e47, "not a PNG");
  let at = 8, width = 0, height = 0, colorType = 0;
  const idat = [];
  while (at < buf.length) {
    const len = buf.readUInt32BE(at), type = buf.toString("latin1", at + 4, at + 8), data = buf.subarray(at + 8, at + 8 + len);
    if (type === "IHDR") {
      width = data.readUInt32BE(0); height = data.readUInt32BE(4); colorType = data[9];
      assert.equal(data[8], 8, "8-bit PNG expected");
      assert.equal(data[12], 0, "interlaced PNG");
    } else if (type === "IDAT") idat.push(data);
    else if (type === "IEND") break;
    at += 12 + len;
  }
  const channels = { 0: 1, 2: 3, 4: 2, 6: 4 }[colorType];
  assert.ok(channels, `PNG colour type ${colorType}`);
  const raw = zlib.inflateSync(Buffer.concat(idat)), stride = width * channels;
  const px = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)], line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? px[y * stride + x - channels] : 0, b = y ? px[(y - 1) * stride + x] : 0;
      const c = x >= channels && y ? px[(y - 1) * stride + x - channels] : 0;
      let p = line[x];
      if (f === 1) p += a;
      else if (f === 2) p += b;
      else if (f === 3) p += (a + b) >> 1;
      else if (f === 4) {
        const q = a + b - c, pa = Math.abs(q - a), pb = Math.abs(q - b), pc = Math.abs(q - c);
        p += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      px[y * stride + x] = p & 255;
    }
  }
  // As RGBA.
  const rgba = Buffer.alloc(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    const s = px.subarray(i * channels, (i + 1) * channels);
    const g = channels <= 2;
    rgba[i * 4] = s[0]; rgba[i * 4 + 1] = g ? s[0] : s[1]; rgba[i * 4 + 2] = g ? s[0] : s[2];
    rgba[i * 4 + 3] = channels === 4 ? s[3] : channels === 2 ? s[1] : 255;
  }
  return { width, height, rgba, at: (x, y) => [...rgba.subarray((y * width + x) * 4, (y * width + x) * 4 + 4)] };
}

// The source picture: 96x64, a gradient (not square, so that a transposition shows).
const SRC_W = 96, SRC_H = 64;
const srcRgb = Buffer.alloc(SRC_W * SRC_H * 3);
for (let y = 0; y < SRC_H; y++) for (let x = 0; x < SRC_W; x++) {
  const i = (y * SRC_W + x) * 3;
  srcRgb[i] = x * 2; srcRgb[i + 1] = y * 3; srcRgb[i + 2] = (x + y) & 255;
}

before(async () => {
  assert.ok(fs.existsSync(path.join(frontEnd, "index.html")), `no built web UI in ${frontEnd} (npm run build)`);
  server = await startServer({ frontEnd, extraArgs: ["--preview-method", "latent2rgb"] });
  ({ browser, page } = await openEditor(errors, { url: server.url, acceptDownloads: true }));
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const app = (fn, arg) => page.evaluate(fn, arg);
const toScreen = (x, y) => screenPoint(page, x, y);
const nodeTitlePoint = (id) => nodeTitleScreenPoint(page, id);
// A point on a widget: its middle, or `dx` graph units from its left (dx > 0) or right (dx < 0) end.
async function widgetPoint(id, name, dx = 0) {
  const [x, y] = await app(([nid, wname, d]) => {
    const n = window.comfyApp.graph.getNodeById(nid);
    const w = n.widgets.find((w) => w.name === wname);
    return [n.pos[0] + (d > 0 ? d : d < 0 ? n.size[0] + d : n.size[0] / 2), n.pos[1] + w.y + 10];
  }, [id, name, dx]);
  return toScreen(x, y);
}
const widgetValue = (id, name) => app(([nid, wname]) => window.comfyApp.graph.getNodeById(nid).widgets.find((w) => w.name === wname).value, [id, name]);
async function click([x, y], options) {
  await page.mouse.move(x, y, { steps: 4 });
  await page.mouse.click(x, y, options);
}
const EMPTY = [20, 880]; // a spot of empty canvas
// Types a value into a number widget's prompt; returns what the widget holds then.
async function typeNumber(id, name, typed) {
  const before = await widgetValue(id, name);
  await click(await widgetPoint(id, name));
  const input = page.locator(".graphdialog input").last();
  await input.waitFor();
  await input.fill(String(typed));
  await input.press("Enter");
  await input.waitFor({ state: "detached" }).catch(() => {});
  await page.waitForTimeout(50);
  void before;
  return widgetValue(id, name);
}
async function setNumber(id, name, value) {
  assert.equal(await typeNumber(id, name, value), value);
}
async function selectOnly(id) {
  await page.waitForTimeout(400); // two clicks on empty canvas would be a double-click (node search)
  await click(EMPTY);
  await click(await nodeTitlePoint(id));
}
// Node search on a double-click at (x, y); returns the new node's id.
async function addNode(type, x, y) {
  const ids = await app(() => window.comfyApp.graph.nodes.map((n) => n.id));
  await page.mouse.move(x, y, { steps: 4 });
  await page.mouse.dblclick(x, y);
  const search = page.locator(".litesearchbox input").first();
  await search.waitFor();
  await search.pressSequentially(type, { delay: 20 });
  await page.locator(".litesearchbox .lite-search-item").first().waitFor();
  await search.press("Enter");
  const id = await page.waitForFunction(([t, old]) => window.comfyApp.graph.nodes.find((n) => n.type === t && !old.includes(n.id))?.id,
    [type, ids]).then((h) => h.jsonValue());
  await page.waitForTimeout(100);
  return id;
}
// Picks an entry of a combo widget's menu.
async function pickCombo(id, name, entry) {
  await click(await widgetPoint(id, name));
  await page.locator(".litecontextmenu .litemenu-entry", { hasText: new RegExp(`^${entry}$`) }).click();
  assert.equal(await widgetValue(id, name), entry);
}
async function loadDefault() {
  await page.getByRole("button", { name: "Load default" }).click();
  await page.waitForFunction(() => window.comfyApp.graph.nodes.length === 7 && window.comfyApp.graph.getNodeById(5)?.widgets[0].value === 512);
}
// The default workflow, made quick to run (64x64, `steps` steps), seed control fixed.
async function smallDefault(steps = 1) {
  await loadDefault();
  await setNumber(5, "width", 64);
  await setNumber(5, "height", 64);
  await setNumber(3, "steps", steps);
  await pickCombo(3, "control_after_generate", "fixed");
}
// Presses `keys` (e.g. "Control+Enter") and returns the POST /prompt body and its answer.
async function queueWith(keys) {
  await click(EMPTY);
  const [req] = await Promise.all([
    page.waitForRequest((r) => r.url().endsWith("/api/prompt") && r.method() === "POST"),
    page.keyboard.press(keys),
  ]);
  const res = await req.response();
  return { body: JSON.parse(req.postData()), answer: await res.json() };
}
async function waitIdle() {
  for (let i = 0; i < 600; i++) {
    const q = await (await fetch(`${server.url}/api/queue`)).json();
    if (!q.queue_running.length && !q.queue_pending.length) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error("the queue did not empty");
}
async function viewFile(ref) {
  const q = new URLSearchParams({ filename: ref.filename, subfolder: ref.subfolder ?? "", type: ref.type ?? "input" });
  const res = await fetch(`${server.url}/api/view?${q}`);
  assert.equal(res.status, 200, `/view ${q}`);
  return Buffer.from(await res.arrayBuffer());
}

// ---------------------------------------------------------------- mask editor
// Picture pixel -> page coordinates, from where the editor's mask canvas is on screen.
async function pic(x, y) {
  const r = await page.locator(".comfy-mask-canvas").boundingBox();
  return [r.x + ((x + 0.5) * r.width) / SRC_W, r.y + ((y + 0.5) * r.height) / SRC_H];
}
async function stroke(points, button = "left") {
  const [first, ...rest] = points;
  await page.mouse.move(...(await pic(...first)), { steps: 3 });
  await page.mouse.down({ button });
  for (const p of rest) await page.mouse.move(...(await pic(...p)), { steps: 12 });
  await page.mouse.up({ button });
}
async function setSlider(name, presses, home = "Home") {
  const slider = page.locator(`.comfy-mask-editor input[name='${name}']`);
  await slider.click();
  await page.keyboard.press(home);
  for (let i = 0; i < presses; i++) await page.keyboard.press("ArrowRight");
  return Number(await slider.inputValue());
}
const editorReady = () => page.waitForSelector(".comfy-mask-editor[data-ready='1']");
async function saveMask(id, previous) {
  await page.locator(".comfy-mask-editor button[data-act='save']").click();
  await page.locator(".comfy-mask-editor").waitFor({ state: "detached" });
  const value = await page.waitForFunction(([nid, prev]) => {
    const v = window.comfyApp.graph.getNodeById(nid).widgets.find((w) => w.name === "image").value;
    return v !== prev ? v : null;
  }, [id, previous]).then((h) => h.jsonValue());
  assert.match(value, /^clipspace\/clipspace-mask-\d+\.png \[input\]$/);
  const filename = value.slice("clipspace/".length, -" [input]".length);
  // The node's preview shows the new file.
  await page.waitForFunction(([nid, f]) => window.comfyApp.graph.getNodeById(nid).imgs?.[0]?.src.includes(encodeURIComponent(f))
    && window.comfyApp.graph.getNodeById(nid).imgs[0].naturalWidth > 0, [id, filename]);
  return { value, png: decodePng(await viewFile({ filename, subfolder: "clipspace", type: "input" })) };
}
async function openFromMenu(id) {
  await click(await nodeTitlePoint(id), { button: "right" });
  await page.locator(".litecontextmenu .litemenu-entry", { hasText: "Open in MaskEditor" }).click();
  await editorReady();
}

test("mask editor: paint, brush size, hardness, erase, zoom and pan, save; reopen, invert, clear", async (t) => {
  const source = path.join(artifacts, "mask_source.png");
  fs.writeFileSync(source, encodePng(SRC_W, SRC_H, srcRgb));
  await loadDefault();
  const id = await addNode("LoadImage", 950, 780);
  const [chooser] = await Promise.all([page.waitForEvent("filechooser"), click(await widgetPoint(id, "upload"))]);
  await chooser.setFiles(source);
  await page.waitForFunction((nid) => window.comfyApp.graph.getNodeById(nid).imgs?.[0]?.naturalWidth === 96, id);
  assert.equal(await widgetValue(id, "image"), "mask_source.png");

  // Right-click menu: "Open in MaskEditor".
  await openFromMenu(id);
  // Nothing is masked yet: the source is opaque.
  assert.equal(await app(() => {
    const c = document.querySelector(".comfy-mask-canvas");
    return c.getContext("2d").getImageData(0, 0, c.width, c.height).data.filter((v, i) => i % 4 === 3 && v > 0).length;
  }), 0);
  // A thin horizontal stroke (brush 8, set with the keyboard on the slider).
  assert.equal(await setSlider("brush-size", 7), 8);
  await stroke([[10, 16], [86, 16]]);
  // Zoom in with the wheel around a point, and pan with Space+drag: the strokes still land on
  // the picture pixels under the pointer.
  const before = await page.locator(".comfy-mask-canvas").boundingBox();
  await page.mouse.move(...(await pic(48, 32)), { steps: 3 });
  await page.mouse.wheel(0, -150);
  await page.waitForTimeout(100);
  const zoomed = await page.locator(".comfy-mask-canvas").boundingBox();
  assert.ok(zoomed.width > before.width * 1.2, `the wheel zooms in (${before.width} -> ${zoomed.width})`);
  await page.keyboard.down(" ");
  await page.mouse.move(800, 500, { steps: 3 });
  await page.mouse.down();
  await page.mouse.move(760, 420, { steps: 6 });
  await page.mouse.up();
  await page.keyboard.up(" ");
  const panned = await page.locator(".comfy-mask-canvas").boundingBox();
  assert.ok(Math.abs(panned.x - zoomed.x + 40) < 2 && Math.abs(panned.y - zoomed.y + 80) < 2, "Space+drag pans the picture");
  // A wide, soft vertical stroke.
  assert.equal(await setSlider("brush-size", 15), 16);
  assert.equal(await setSlider("hardness", 0), 0); // Home: hardness 0
  await stroke([[48, 34], [48, 56]]);
  await setSlider("hardness", 0, "End");
  // Erase the left part of the first stroke.
  await page.locator(".comfy-mask-editor input[name='erase']").check();
  assert.equal(await setSlider("brush-size", 11), 12);
  await stroke([[4, 16], [30, 16]]);
  await page.locator(".comfy-mask-editor input[name='erase']").uncheck();
  await page.screenshot({ path: path.join(artifacts, "mask-editor.png") });
  const first = await saveMask(id, "mask_source.png");
  const a = first.png;
  assert.deepEqual([a.width, a.height], [SRC_W, SRC_H]);
  // The picture's colours are kept, the mask is in the alpha: transparent where painted.
  for (const [x, y] of [[0, 0], [50, 16], [20, 16], [95, 63], [48, 40]])
    assert.deepEqual(a.at(x, y).slice(0, 3), [...srcRgb.subarray((y * SRC_W + x) * 3, (y * SRC_W + x) * 3 + 3)], `colour at ${x},${y}`);
  assert.ok(a.at(50, 16)[3] < 8, "the first stroke is masked");
  assert.ok(a.at(80, 16)[3] < 8, "the first stroke is masked");
  assert.ok(a.at(48, 42)[3] < 8, "the middle of the soft stroke is masked");
  assert.equal(a.at(50, 22)[3], 255, "outside the thin stroke (brush 8) nothing is masked");
  assert.equal(a.at(20, 16)[3], 255, "the erased part is unmasked");
  assert.equal(a.at(80, 50)[3], 255);
  assert.equal(a.at(5, 60)[3], 255);
  // The soft brush (hardness 0) leaves partial alpha across its edge, a hard one barely any.
  const partial = (y, x0, x1) => { let n = 0; for (let x = x0; x <= x1; x++) { const v = a.at(x, y)[3]; if (v > 10 && v < 245) n++; } return n; };
  assert.ok(partial(42, 36, 60) >= 4, `the soft stroke has a gradient edge (${partial(42, 36, 60)} partial pixels)`);
  let hardEdge = 0;
  for (let y = 6; y <= 26; y++) { const v = a.at(70, y)[3]; if (v > 10 && v < 245) hardEdge++; }
  assert.ok(hardEdge <= 4, `the hard stroke has a sharp edge (${hardEdge} partial pixels)`);
  let masked = 0;
  for (let i = 3; i < a.rgba.length; i += 4) if (a.rgba[i] < 128) masked++;
  t.diagnostic(`${masked} of ${SRC_W * SRC_H} pixels masked`);
  assert.ok(masked > 300 && masked < 2000, `${masked} masked pixels`);

  // LoadImage of the saved value gives that mask (1 where painted) to the workflow.
  const prompt = {
    1: { class_type: "LoadImage", inputs: { image: first.value } },
    2: { class_type: "MaskToImage", inputs: { mask: ["1", 1] } },
    3: { class_type: "PreviewImage", inputs: { images: ["2", 0] } },
  };
  const queued = await (await fetch(`${server.url}/api/prompt`, { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ prompt }) })).json();
  assert.ok(queued.prompt_id, JSON.stringify(queued));
  await waitIdle();
  const hist = (await (await fetch(`${server.url}/api/history/${queued.prompt_id}`)).json())[queued.prompt_id];
  assert.equal(hist.status.status_str, "success", JSON.stringify(hist.status));
  const maskImage = decodePng(await viewFile(hist.outputs["3"].images[0]));
  assert.deepEqual(maskImage.at(50, 16).slice(0, 3), [255, 255, 255]);
  assert.deepEqual(maskImage.at(80, 50).slice(0, 3), [0, 0, 0]);

  // The preview's "mask" button opens the editor again, with the saved mask loaded; Invert.
  const [bx, by] = await app((nid) => {
    const n = window.comfyApp.graph.getNodeById(nid);
    return [n.pos[0] + n.maskButton[0] + n.maskButton[2] / 2, n.pos[1] + n.maskButton[1] + n.maskButton[3] / 2];
  }, id);
  await click(await toScreen(bx, by));
  await editorReady();
  const loaded = await app(() => {
    const c = document.querySelector(".comfy-mask-canvas"), d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    return [d[(16 * c.width + 50) * 4 + 3], d[(50 * c.width + 80) * 4 + 3]];
  });
  assert.deepEqual(loaded, [255, 0], "the saved mask is loaded from the alpha channel");
  await page.locator(".comfy-mask-editor button[data-act='invert']").click();
  const second = await saveMask(id, first.value);
  const b = second.png;
  for (let i = 0; i < SRC_W * SRC_H; i++) {
    assert.equal(b.rgba[i * 4 + 3], 255 - a.rgba[i * 4 + 3], `inverted alpha at pixel ${i}`);
    assert.equal(b.rgba[i * 4], srcRgb[i * 3], `red at pixel ${i}`);
  }

  // Clear: nothing masked. Cancel leaves the widget alone.
  await openFromMenu(id);
  await page.locator(".comfy-mask-editor button[data-act='clear']").click();
  const third = await saveMask(id, second.value);
  for (let i = 3; i < third.png.rgba.length; i += 4) assert.equal(third.png.rgba[i], 255, `cleared alpha at ${i >> 2}`);
  await openFromMenu(id);
  await stroke([[10, 10], [60, 10]]);
  await page.keyboard.press("Escape");
  await page.locator(".comfy-mask-editor").waitFor({ state: "detached" });
  assert.equal(await widgetValue(id, "image"), third.value);
  const p = await app(() => window.comfyApp.toPrompt());
  assert.equal(p[String(id)].inputs.image, third.value);
  // Undo goes back to the inverted mask's file, and the preview follows.
  await click(EMPTY);
  await page.keyboard.press("Control+z");
  await page.waitForFunction(([nid, v]) => window.comfyApp.graph.getNodeById(nid).widgets.find((w) => w.name === "image").value === v, [id, second.value]);
  const secondFile = second.value.slice("clipspace/".length, -" [input]".length);
  await page.waitForFunction(([nid, f]) => window.comfyApp.graph.getNodeById(nid).imgs?.[0]?.src.includes(encodeURIComponent(f)), [id, secondFile]);
});

// ---------------------------------------------------------------- widgets
test("widgets: a toggle flips and reaches the prompt; numbers clamp and round; multi-line text; control_after_generate", async () => {
  await smallDefault(1);
  const boolId = await addNode("PrimitiveBoolean", 700, 820);
  assert.equal(await widgetValue(boolId, "value"), false);
  await click(await widgetPoint(boolId, "value"));
  assert.equal(await widgetValue(boolId, "value"), true);
  await page.waitForTimeout(400); // not a double-click
  await click(await widgetPoint(boolId, "value"));
  assert.equal(await widgetValue(boolId, "value"), false);
  await page.waitForTimeout(400);
  await click(await widgetPoint(boolId, "value"));
  assert.equal(await widgetValue(boolId, "value"), true);

  // Numbers: rounding to the step, min and max; FLOAT rounding; the arrows step.
  assert.equal(await typeNumber(5, "width", 70), 72);
  assert.equal(await typeNumber(5, "width", 5), 16);
  assert.equal(await typeNumber(5, "width", 99999), 16384);
  assert.equal(await typeNumber(3, "cfg", 7.456), 7.46);
  assert.equal(await typeNumber(3, "cfg", -3), 0);
  assert.equal(await typeNumber(3, "denoise", 1.7), 1);
  assert.equal(await typeNumber(3, "denoise", 0.333), 0.33);
  await setNumber(3, "denoise", 1);
  await setNumber(3, "cfg", 8);
  await setNumber(5, "width", 64);
  const arrow = async (id, name, dx) => { await click(await widgetPoint(id, name, dx)); await page.waitForTimeout(400); };
  await arrow(5, "width", -22); // the right arrow: one step (8)
  assert.equal(await widgetValue(5, "width"), 72);
  await arrow(5, "width", 22); // the left arrow
  assert.equal(await widgetValue(5, "width"), 64);
  await arrow(3, "steps", 22);
  assert.equal(await widgetValue(3, "steps"), 1, "steps stays at its min 1");
  await arrow(3, "steps", -22);
  assert.equal(await widgetValue(3, "steps"), 2);
  await arrow(3, "steps", 22);

  // Multi-line text: Enter makes a new line inside the text; the graph does not see the keys.
  const text = page.locator("textarea.comfy-multiline[data-node='6']");
  await text.click();
  await page.keyboard.press("Control+a");
  await page.keyboard.type("line one");
  await page.keyboard.press("Enter");
  await page.keyboard.type("line two");
  assert.equal(await widgetValue(6, "text"), "line one\nline two");

  // Queue: the prompt carries all of it; control "fixed" keeps the seed.
  const seed0 = await widgetValue(3, "seed");
  let { body } = await queueWith("Control+Enter");
  assert.equal(body.prompt[String(boolId)].inputs.value, true);
  assert.equal(body.prompt["6"].inputs.text, "line one\nline two");
  assert.deepEqual([body.prompt["5"].inputs.width, body.prompt["3"].inputs.cfg, body.prompt["3"].inputs.denoise], [64, 8, 1]);
  assert.equal(body.prompt["3"].inputs.seed, seed0);
  await page.waitForTimeout(300);
  assert.equal(await widgetValue(3, "seed"), seed0, "fixed: the seed stays");
  // increment: +1 after the queue (the queued prompt has the old value).
  await pickCombo(3, "control_after_generate", "increment");
  ({ body } = await queueWith("Control+Enter"));
  assert.equal(body.prompt["3"].inputs.seed, seed0);
  await page.waitForFunction((s) => window.comfyApp.graph.getNodeById(3).widgets.find((w) => w.name === "seed").value === s + 1, seed0);
  // decrement back, then randomize changes it.
  await pickCombo(3, "control_after_generate", "decrement");
  ({ body } = await queueWith("Control+Enter"));
  assert.equal(body.prompt["3"].inputs.seed, seed0 + 1);
  await page.waitForFunction((s) => window.comfyApp.graph.getNodeById(3).widgets.find((w) => w.name === "seed").value === s, seed0);
  await pickCombo(3, "control_after_generate", "randomize");
  ({ body } = await queueWith("Control+Enter"));
  assert.equal(body.prompt["3"].inputs.seed, seed0);
  await page.waitForFunction((s) => window.comfyApp.graph.getNodeById(3).widgets.find((w) => w.name === "seed").value !== s, seed0);
  await waitIdle();
});

// ---------------------------------------------------------------- combo refresh
test("model lists refresh (R, or the Refresh button) when a file is added to the folder", async () => {
  await loadDefault();
  const values = () => app(() => window.comfyApp.graph.getNodeById(4).widgets[0].options.values);
  assert.deepEqual(await values(), ["tiny_sd15.safetensors"]);
  fs.symlinkSync(path.join(fixturesDir(), "models/checkpoints/tiny_sd15.safetensors"), path.join(server.base, "models/checkpoints/added.safetensors"));
  await click(EMPTY);
  await page.keyboard.press("r");
  await page.waitForFunction(() => window.comfyApp.graph.getNodeById(4).widgets[0].options.values.includes("added.safetensors"));
  assert.deepEqual(await values(), ["added.safetensors", "tiny_sd15.safetensors"]);
  assert.equal(await widgetValue(4, "ckpt_name"), "tiny_sd15.safetensors", "the selection stays");
  // A node added now lists it too; the combo's menu offers it.
  const id = await addNode("CheckpointLoaderSimple", 700, 820);
  assert.ok((await app((nid) => window.comfyApp.graph.getNodeById(nid).widgets[0].options.values, id)).includes("added.safetensors"));
  await pickCombo(4, "ckpt_name", "added.safetensors");
  // Removed again; the Refresh button. A selection that went away falls back to the first file,
  // as in ComfyUI's frontend.
  fs.unlinkSync(path.join(server.base, "models/checkpoints/added.safetensors"));
  await page.locator(".comfy-menu button[data-act='refresh']").click();
  await page.waitForFunction(() => !window.comfyApp.graph.getNodeById(4).widgets[0].options.values.includes("added.safetensors"));
  assert.equal(await widgetValue(4, "ckpt_name"), "tiny_sd15.safetensors");
});

// ---------------------------------------------------------------- graph editing
async function dragLink(fromId, fromSlot, toId, toSlot) {
  const from = await app(([n, s]) => window.comfyApp.graph.getNodeById(n).getConnectionPos(false, s), [fromId, fromSlot]);
  const to = await app(([n, s]) => window.comfyApp.graph.getNodeById(n).getConnectionPos(true, s), [toId, toSlot]);
  const [fx, fy] = await toScreen(from[0], from[1]);
  const [tx, ty] = await toScreen(to[0], to[1]);
  await page.mouse.move(fx, fy, { steps: 3 });
  await page.mouse.down();
  await page.mouse.move(tx, ty, { steps: 12 });
  await page.mouse.up();
}
const linksInto = (id) => app((nid) => {
  const { graph } = window.comfyApp, n = graph.getNodeById(nid);
  return n.inputs.map((i) => { const l = i.link != null ? graph.links.get?.(i.link) ?? graph.links[i.link] : null; return l ? [i.name, l.origin_id, l.origin_slot] : null; }).filter(Boolean);
}, id);

test("a reroute between two nodes queues the same prompt", async () => {
  await smallDefault(1);
  const expected = await app(() => window.comfyApp.toPrompt());
  const reroute = await addNode("Reroute", 700, 820);
  await dragLink(8, 0, reroute, 0);
  await dragLink(reroute, 0, 9, 0);
  assert.deepEqual(await linksInto(9), [["images", reroute, 0]]);
  assert.deepEqual(await linksInto(reroute), [["", 8, 0]]);
  const { body, answer } = await queueWith("Control+Enter");
  assert.deepEqual(body.prompt, expected);
  assert.ok(answer.prompt_id, JSON.stringify(answer));
  await waitIdle();
  const hist = (await (await fetch(`${server.url}/api/history/${answer.prompt_id}`)).json())[answer.prompt_id];
  assert.equal(hist.outputs["9"].images.length, 1);
});

test("Ctrl+A, Ctrl+C then Ctrl+Shift+V (with links), Ctrl+Z / Ctrl+Y, Space+drag pans, Ctrl+S", async () => {
  await loadDefault();
  await click(EMPTY);
  await page.keyboard.press("Control+a");
  assert.equal(await app(() => Object.keys(window.comfyApp.canvas.selected_nodes).length), 7);
  await selectOnly(3);
  await page.keyboard.press("Control+c");
  await page.mouse.move(700, 800, { steps: 4 });
  await page.keyboard.press("Control+Shift+v");
  const pasted = await page.waitForFunction(() => window.comfyApp.graph.nodes.find((n) => n.type === "KSampler" && n.id !== 3)?.id)
    .then((h) => h.jsonValue());
  const original = await linksInto(3);
  assert.equal(original.length, 4);
  assert.deepEqual(await linksInto(pasted), original, "Ctrl+Shift+V keeps the input links");
  // A plain Ctrl+V pastes without them.
  await page.keyboard.press("Control+v");
  const plain = await page.waitForFunction((p) => window.comfyApp.graph.nodes.find((n) => n.type === "KSampler" && n.id !== 3 && n.id !== p)?.id, pasted)
    .then((h) => h.jsonValue());
  assert.deepEqual(await linksInto(plain), []);
  // Undo both pastes, redo one.
  await page.keyboard.press("Control+z");
  await page.waitForFunction((p) => !window.comfyApp.graph.getNodeById(p), plain);
  await page.keyboard.press("Control+z");
  await page.waitForFunction((p) => !window.comfyApp.graph.getNodeById(p), pasted);
  await page.keyboard.press("Control+y");
  await page.waitForFunction((p) => !!window.comfyApp.graph.getNodeById(p), pasted);
  assert.deepEqual(await linksInto(pasted), original, "redo brings the links back");
  // Space+drag on empty canvas moves the view, not the nodes.
  await click(EMPTY);
  const offset0 = await app(() => [...window.comfyApp.canvas.ds.offset]);
  const scale = await app(() => window.comfyApp.canvas.ds.scale);
  const nodes0 = await app(() => window.comfyApp.graph.nodes.map((n) => [...n.pos]));
  await page.mouse.move(300, 850, { steps: 2 });
  await page.keyboard.down(" ");
  await page.mouse.down();
  await page.mouse.move(420, 770, { steps: 8 });
  await page.mouse.up();
  await page.keyboard.up(" ");
  const offset1 = await app(() => [...window.comfyApp.canvas.ds.offset]);
  assert.ok(Math.abs(offset1[0] - offset0[0] - 120 / scale) < 2 && Math.abs(offset1[1] - offset0[1] + 80 / scale) < 2,
    `Space+drag pans: ${offset0} -> ${offset1}`);
  assert.deepEqual(await app(() => window.comfyApp.graph.nodes.map((n) => [...n.pos])), nodes0);
  // Ctrl+S: the workflow file, with the pasted node.
  const [download] = await Promise.all([page.waitForEvent("download"), page.keyboard.press("Control+s")]);
  assert.equal(download.suggestedFilename(), "workflow.json");
  const saved = JSON.parse(fs.readFileSync(await download.path(), "utf8"));
  assert.equal(saved.nodes.length, 8);
  assert.ok(saved.nodes.some((n) => n.id === pasted && n.type === "KSampler"));
  assert.equal(saved.links.filter((l) => l[3] === pasted).length, 4);
});

// ---------------------------------------------------------------- queue
test("queue at the front, latent previews on the running sampler, history thumbnails, load workflow from the viewer", async (t) => {
  await smallDefault(2000); // interrupted below
  // A long prompt holds the queue; its sampler shows latent previews while it runs.
  const held = (await queueWith("Control+Enter")).answer.prompt_id;
  await page.waitForFunction(() => window.comfyApp.graph.getNodeById(3).progress !== undefined, null, { timeout: 60000 });
  await page.waitForFunction(() => window.comfyApp.graph.getNodeById(3).progress !== undefined
    && window.comfyApp.graph.getNodeById(3).imgs?.[0]?.src.startsWith("blob:"), null, { timeout: 60000 });
  await page.screenshot({ path: path.join(artifacts, "latent-preview.png") });
  // Two quick ones: A at the back, B at the front.
  await setNumber(3, "steps", 1);
  await setNumber(3, "seed", 1111);
  const a = (await queueWith("Control+Enter")).answer.prompt_id;
  await setNumber(3, "seed", 2222);
  const { body, answer } = await queueWith("Control+Shift+Enter");
  assert.equal(body.front, true);
  const b = answer.prompt_id;
  await page.waitForFunction(() => document.querySelectorAll(".comfy-pending .comfy-queue-item").length === 2);
  const order = await page.locator(".comfy-pending .comfy-queue-item").allTextContents();
  assert.ok(order[0].includes(b.slice(0, 8)) && order[1].includes(a.slice(0, 8)), `pending: ${order}`);
  const q = await (await fetch(`${server.url}/api/queue`)).json();
  assert.equal(q.queue_running[0][1], held);
  // Interrupt the held prompt: B runs before A.
  await page.getByRole("button", { name: "Cancel running" }).click();
  await waitIdle();
  const history = await (await fetch(`${server.url}/api/history`)).json();
  const started = (id) => history[id].status.messages.find(([type]) => type === "execution_start")[1].timestamp;
  assert.ok(started(b) <= started(a), "the prompt queued at the front ran first");
  assert.equal(history[b].prompt[2]["3"].inputs.seed, 2222);
  // History thumbnails: one per finished output; the viewer's "Load workflow" brings A's graph back.
  const thumbA = page.locator(`.comfy-history-item[title^="${a}"] img.comfy-thumb`);
  await thumbA.waitFor();
  assert.ok(await page.locator(".comfy-history img.comfy-thumb").count() >= 2);
  assert.equal(await thumbA.evaluate((img) => img.naturalWidth), 64);
  await loadDefault();
  await thumbA.click();
  await page.locator(".comfy-viewer img").waitFor();
  await page.locator(".comfy-viewer button.comfy-viewer-load").click();
  await page.locator(".comfy-viewer").waitFor({ state: "detached" });
  await page.waitForFunction(() => window.comfyApp.graph.getNodeById(5).widgets.find((w) => w.name === "width").value === 64);
  assert.equal(await widgetValue(3, "seed"), 1111);
  assert.equal(await widgetValue(3, "steps"), 1);
  t.diagnostic(`held ${held.slice(0, 8)}, A ${a.slice(0, 8)}, B ${b.slice(0, 8)}`);
  assert.deepEqual(errors.filter((e) => !/Failed to load resource/.test(e)), []);
});
