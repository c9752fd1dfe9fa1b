// The browser side of the end-to-end tests: Debian's chromium (headless, through playwright-core;
// never a downloaded browser) on a page of the web UI, page and console errors collected, and the
// graph-to-page coordinates that real mouse moves need.
import fs from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";
import { repoRoot } from "./server.mjs";

export const chromiumPath = process.env.CHROMIUM || "/usr/bin/chromium";
export const artifacts = process.env.WEB_TEST_ARTIFACTS || path.join(repoRoot, "web/test-results");
export const frontEnd = process.env.COMFYCPP_FRONT_END || path.join(repoRoot, "web/dist");

// A 1600x900 page; `errors` collects its errors. With `url`, the editor is loaded and ready.
export async function openEditor(errors, { url = null, acceptDownloads = false } = {}) {
  const browser = await chromium.launch({
    executablePath: chromiumPath, headless: true,
    args: ["--no-sandbox", "--disable-background-networking", "--disable-gpu", "--disable-dev-shm-usage"],
  });
  const context = await browser.newContext({ viewport: { width: 1600, height: 900 }, acceptDownloads });
  const page = await context.newPage();
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  page.setDefaultTimeout(30000);
  // Keep file-chooser interception on from the start (enabling it races the first key press).
  page.on("filechooser", () => {});
  fs.mkdirSync(artifacts, { recursive: true });
  if (url) {
    await page.goto(url + "/");
    await page.waitForSelector("body[data-ready='1']");
  }
  return { browser, page };
}

// The page coordinates of a point given in graph coordinates.
export function screenPoint(page, x, y) {
  return page.evaluate(([gx, gy]) => {
    const { canvas } = window.comfyApp;
    const p = canvas.ds.convertOffsetToCanvas([gx, gy]);
    const r = canvas.canvas.getBoundingClientRect();
    return [r.left + p[0], r.top + p[1]];
  }, [x, y]);
}

// A point on a node's title bar, in page coordinates.
export async function nodeTitleScreenPoint(page, id) {
  const [x, y] = await page.evaluate((nid) => {
    const n = window.comfyApp.graph.getNodeById(nid);
    return [n.pos[0] + 40, n.pos[1] - 15];
  }, id);
  return screenPoint(page, x, y);
}
