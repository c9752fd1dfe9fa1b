// Workflows in and out: JSON files (UI workflow or API prompt), PNG (tEXt/iTXt "workflow" and
// "prompt" chunks) and WebP (EXIF strings "workflow:{...}" / "prompt:{...}"), as ComfyUI's
// SaveImage and SaveAnimatedWEBP write them; downloads of the workflow and of the API prompt.
export type Json = any;

export interface Embedded { workflow?: Json; prompt?: Json }

const latin1 = new TextDecoder("latin1");
const utf8 = new TextDecoder("utf-8");

export function pngText(bytes: Uint8Array): Record<string, string> {
  const out: Record<string, string> = {};
  const sig = [137, 80, 78, 71, 13, 10, 26, 10];
  if (bytes.length < 8 || sig.some((b, i) => bytes[i] !== b)) return out;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 8;
  while (at + 8 <= bytes.length) {
    const len = view.getUint32(at);
    const type = latin1.decode(bytes.subarray(at + 4, at + 8));
    const data = bytes.subarray(at + 8, at + 8 + len);
    if (type === "tEXt") {
      const nul = data.indexOf(0);
      if (nul > 0) out[latin1.decode(data.subarray(0, nul))] = utf8.decode(data.subarray(nul + 1));
    } else if (type === "iTXt") {
      const nul = data.indexOf(0);
      if (nul > 0 && data[nul + 1] === 0) { // uncompressed only
        let p = nul + 3;
        p = data.indexOf(0, p) + 1; // language tag
        p = data.indexOf(0, p) + 1; // translated keyword
        if (p > 0) out[latin1.decode(data.subarray(0, nul))] = utf8.decode(data.subarray(p));
      }
    } else if (type === "IEND") break;
    at += 12 + len;
  }
  return out;
}

export function webpText(bytes: Uint8Array): Record<string, string> {
  const out: Record<string, string> = {};
  if (bytes.length < 12 || latin1.decode(bytes.subarray(0, 4)) !== "RIFF" || latin1.decode(bytes.subarray(8, 12)) !== "WEBP") return out;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 12;
  while (at + 8 <= bytes.length) {
    const type = latin1.decode(bytes.subarray(at, at + 4));
    const len = view.getUint32(at + 4, true);
    if (type === "EXIF") {
      // Every NUL-terminated string "key:value" in the EXIF block.
      const data = bytes.subarray(at + 8, at + 8 + len);
      let start = 0;
      for (let i = 0; i <= data.length; ++i) {
        if (i < data.length && data[i] !== 0) continue;
        const s = utf8.decode(data.subarray(start, i));
        for (const key of ["workflow", "prompt", "Workflow", "Prompt"]) {
          const k = s.indexOf(`${key}:`);
          if (k >= 0 && s[k + key.length + 1] === "{") out[key.toLowerCase()] = s.slice(k + key.length + 1);
        }
        start = i + 1;
      }
    }
    at += 8 + len + (len & 1);
  }
  return out;
}

function parse(text: string | undefined): Json {
  if (!text) return undefined;
  try { return JSON.parse(text); } catch { return undefined; }
}

// What a dropped or opened file carries.
export function readEmbedded(name: string, bytes: Uint8Array): Embedded {
  const lower = name.toLowerCase();
  if (lower.endsWith(".json") || bytes[0] === 0x7b) {
    const doc = parse(utf8.decode(bytes));
    if (!doc || typeof doc !== "object") return {};
    if (Array.isArray(doc.nodes)) return { workflow: doc };
    if (doc.prompt && typeof doc.prompt === "object") return { prompt: doc.prompt, workflow: doc.extra_data?.extra_pnginfo?.workflow };
    return { prompt: doc };
  }
  const text = { ...pngText(bytes), ...webpText(bytes) };
  return { workflow: parse(text.workflow), prompt: parse(text.prompt) };
}

export function download(filename: string, data: Json) {
  const blob = new Blob([JSON.stringify(data, null, 2)], { type: "application/json" });
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}
