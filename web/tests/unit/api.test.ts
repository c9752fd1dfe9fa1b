// Binary WebSocket frames: latent previews in both layouts ComfyUI sends.
import { describe, expect, it } from "vitest";
import { parsePreviewFrame } from "../../src/api";

function frame(kind: number, second: number, ...rest: Uint8Array[]) {
  const total = 8 + rest.reduce((n, r) => n + r.length, 0);
  const buf = new ArrayBuffer(total);
  const v = new DataView(buf);
  v.setUint32(0, kind);
  v.setUint32(4, second);
  let at = 8;
  for (const r of rest) { new Uint8Array(buf).set(r, at); at += r.length; }
  return buf;
}

describe("parsePreviewFrame", () => {
  it("reads PREVIEW_IMAGE with its format", () => {
    const jpeg = parsePreviewFrame(frame(1, 1, new Uint8Array([0xff, 0xd8, 0xff])))!;
    expect(jpeg.mime).toBe("image/jpeg");
    expect([...jpeg.bytes]).toEqual([0xff, 0xd8, 0xff]);
    expect(parsePreviewFrame(frame(1, 2, new Uint8Array([0x89])))!.mime).toBe("image/png");
  });
  it("reads PREVIEW_IMAGE_WITH_METADATA", () => {
    const meta = new TextEncoder().encode(JSON.stringify({ node_id: "3", image_type: "image/png" }));
    const p = parsePreviewFrame(frame(4, meta.length, meta, new Uint8Array([1, 2])))!;
    expect(p.meta.node_id).toBe("3");
    expect(p.mime).toBe("image/png");
    expect([...p.bytes]).toEqual([1, 2]);
  });
  it("ignores other and truncated frames", () => {
    expect(parsePreviewFrame(frame(3, 0))).toBeNull();
    expect(parsePreviewFrame(new ArrayBuffer(4))).toBeNull();
    expect(parsePreviewFrame(frame(4, 100))).toBeNull();
  });
});
