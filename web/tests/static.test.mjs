// comfycpp serving the web UI (--front-end-root): index.html at /, assets with their content
// types and cache headers, API routes never shadowed, no way out of the folder.
import assert from "node:assert/strict";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { startServer } from "./server.mjs";

let server, root;

before(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "comfycpp-front-"));
  fs.mkdirSync(path.join(root, "assets"));
  fs.writeFileSync(path.join(root, "index.html"), "<!doctype html><title>t</title>");
  fs.writeFileSync(path.join(root, "assets/app-1234.js"), "console.log(1)");
  fs.writeFileSync(path.join(root, "assets/app-1234.css"), "body{}");
  fs.writeFileSync(path.join(root, "logo.svg"), "<svg/>");
  fs.writeFileSync(path.join(path.dirname(root), "comfycpp-secret.txt"), "secret");
  fs.symlinkSync("/etc", path.join(root, "etc-link"));
  server = await startServer({ frontEnd: root });
});
after(async () => {
  await server?.stop();
  fs.rmSync(root, { recursive: true, force: true });
  fs.rmSync(path.join(path.dirname(root), "comfycpp-secret.txt"), { force: true });
});

// A raw request, so that ".." and "%2e%2e" reach the server as written.
function raw(target, method = "GET") {
  const { port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, "127.0.0.1", () =>
      sock.write(`${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`));
    let data = "";
    sock.on("data", (d) => (data += d));
    sock.on("end", () => resolve({ status: Number(data.split(" ")[1]), text: data }));
    sock.on("error", reject);
  });
}

test("index.html at /, never cached", async () => {
  const r = await fetch(server.url + "/");
  assert.equal(r.status, 200);
  assert.match(r.headers.get("content-type"), /^text\/html/);
  assert.equal(r.headers.get("cache-control"), "no-cache");
  assert.match(await r.text(), /<title>t<\/title>/);
});

test("assets with content types; hashed assets cached for a year", async () => {
  const js = await fetch(server.url + "/assets/app-1234.js");
  assert.equal(js.status, 200);
  assert.match(js.headers.get("content-type"), /^text\/javascript/);
  assert.match(js.headers.get("cache-control"), /max-age=31536000/);
  const css = await fetch(server.url + "/assets/app-1234.css");
  assert.match(css.headers.get("content-type"), /^text\/css/);
  const svg = await fetch(server.url + "/logo.svg");
  assert.equal(svg.headers.get("content-type"), "image/svg+xml");
  assert.equal(svg.headers.get("cache-control"), "no-cache");
  assert.equal((await fetch(server.url + "/assets/missing.js")).status, 404);
});

test("API routes win over files", async () => {
  fs.writeFileSync(path.join(root, "queue"), "not the queue");
  const q = await fetch(server.url + "/queue");
  assert.deepEqual(Object.keys(await q.json()).sort(), ["queue_pending", "queue_running"]);
  const info = await fetch(server.url + "/api/object_info/KSampler");
  assert.ok((await info.json()).KSampler);
  assert.equal((await fetch(server.url + "/api/nope")).status, 404);
});

test("no path leaves the front-end folder", async () => {
  for (const target of ["/../comfycpp-secret.txt", "/assets/../../comfycpp-secret.txt", "/%2e%2e/comfycpp-secret.txt",
    "/assets/%2e%2e/%2e%2e/comfycpp-secret.txt", "/%2fetc%2fpasswd", "/etc-link/passwd", "/..%5c..%5cetc/passwd"]) {
    const r = await raw(target);
    assert.equal(r.status, 404, target);
    assert.ok(!r.text.includes("secret") && !r.text.includes("root:"), target);
  }
});

test("a missing --front-end-root folder is refused at start", async () => {
  await assert.rejects(startServer({ frontEnd: path.join(root, "nowhere") }), /no index.html/);
});
