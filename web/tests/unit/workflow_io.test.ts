// Reading workflows out of files: PNG tEXt chunks as comfycpp's SaveImage writes them, WebP EXIF
// strings, JSON (UI workflow, API prompt, a /prompt body).
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { pngText, readEmbedded, webpText } from "../../src/workflow_io";
// @ts-ignore plain ESM helper
import { comfycppBinary, fixturesDir } from "../server.mjs";

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  out.set(new TextEncoder().encode(type), 4);
  out.set(data, 8);
  return out; // CRC left zero: the reader does not check it
}
const concat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
};

describe("readEmbedded", () => {
  it("reads tEXt and iTXt chunks of a PNG", () => {
    const enc = new TextEncoder();
    const png = concat(new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]),
      chunk("tEXt", enc.encode('workflow\0{"nodes":[],"links":[]}')),
      chunk("iTXt", enc.encode('prompt\0\0\0\0\0{"1":{"class_type":"X","inputs":{}}}')),
      chunk("IEND", new Uint8Array()));
    expect(pngText(png)).toEqual({ workflow: '{"nodes":[],"links":[]}', prompt: '{"1":{"class_type":"X","inputs":{}}}' });
    const e = readEmbedded("a.png", png);
    expect(e.workflow).toEqual({ nodes: [], links: [] });
    expect(e.prompt["1"].class_type).toBe("X");
  });

  it("reads workflow and prompt from a WebP EXIF chunk", () => {
    const enc = new TextEncoder();
    const exif = enc.encode('II*\0....workflow:{"nodes":[1]}\0prompt:{"2":{}}\0');
    const body = concat(enc.encode("WEBP"), enc.encode("EXIF"), new Uint8Array([exif.length, 0, 0, 0]), exif, exif.length & 1 ? new Uint8Array(1) : new Uint8Array());
    const riff = concat(enc.encode("RIFF"), new Uint8Array([body.length & 255, body.length >> 8, 0, 0]), body);
    expect(webpText(riff)).toEqual({ workflow: '{"nodes":[1]}', prompt: '{"2":{}}' });
  });

  it("tells a UI workflow, an API prompt and a /prompt body apart", () => {
    const enc = (x: unknown) => new TextEncoder().encode(JSON.stringify(x));
    expect(readEmbedded("w.json", enc({ nodes: [], links: [] })).workflow).toBeDefined();
    expect(readEmbedded("p.json", enc({ "3": { class_type: "KSampler", inputs: {} } })).prompt["3"]).toBeDefined();
    const body = readEmbedded("b.json", enc({ prompt: { "1": {} }, extra_data: { extra_pnginfo: { workflow: { nodes: [] } } } }));
    expect(body.prompt).toEqual({ "1": {} });
    expect(body.workflow).toEqual({ nodes: [] });
  });

  it("finds the workflow in a PNG comfycpp itself wrote", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "comfycpp-png-"));
    try {
      const wf = path.join(fixturesDir(), "workflows/ui/widget_input.json");
      execFileSync(comfycppBinary(), ["run", wf, "--base-directory", dir], { stdio: "pipe" });
      const out = fs.readdirSync(path.join(dir, "output")).find((f) => f.endsWith(".png"))!;
      const e = readEmbedded(out, new Uint8Array(fs.readFileSync(path.join(dir, "output", out))));
      expect(e.workflow.nodes.length).toBe(JSON.parse(fs.readFileSync(wf, "utf8")).nodes.length);
      expect(e.prompt["6"].class_type).toBe("SaveImage");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
