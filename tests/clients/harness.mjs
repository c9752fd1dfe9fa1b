// What every client test shares: start `comfycpp serve` on a free port over a fresh temp base
// directory that holds the tiny checkpoint, the two workflows, and the PNG check.
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const checkpoint = path.join(here, "..", "fixtures", "models", "checkpoints", "tiny_sd15.safetensors");

// Starts the server; resolves to {url, host, port, baseDir, log(), stop()}. Given a URL instead
// of a binary (http://127.0.0.1:8188), uses that running server (to check a test against the real
// ComfyUI): it must see tiny_sd15.safetensors among its checkpoints.
export async function startServer(binary, extraArgs = []) {
  if (/^https?:\/\//.test(binary ?? "")) {
    const url = new URL(binary);
    const baseDir = fs.mkdtempSync(path.join(os.tmpdir(), "comfycpp-clients-"));
    fs.mkdirSync(path.join(baseDir, "models", "checkpoints"), { recursive: true });
    const stop = async () => fs.rmSync(baseDir, { recursive: true, force: true });
    return { url: url.origin, host: url.host, port: Number(url.port), baseDir, external: true, log: () => "(external server)", stop };
  }
  if (!binary || !fs.existsSync(binary)) throw new Error(`usage: node <test>.mjs PATH/TO/comfycpp (got ${binary})`);
  const baseDir = fs.mkdtempSync(path.join(os.tmpdir(), "comfycpp-clients-"));
  fs.mkdirSync(path.join(baseDir, "models", "checkpoints"), { recursive: true });
  fs.copyFileSync(checkpoint, path.join(baseDir, "models", "checkpoints", "tiny_sd15.safetensors"));
  const child = spawn(binary, ["serve", "--base-directory", baseDir, "--port", "0", ...extraArgs], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  let exited = null;
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`comfycpp did not start in 30 s:\n${output}`)), 30000);
    const onData = (chunk) => {
      output += chunk.toString();
      const m = output.match(/To see the GUI go to: http:\/\/127\.0\.0\.1:(\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("exit", (code, signal) => {
      exited = { code, signal };
      clearTimeout(timer);
      reject(new Error(`comfycpp exited (${code ?? signal}) before listening:\n${output}`));
    });
  });
  const stop = async () => {
    if (!exited) {
      const done = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10000);
      await done;
      clearTimeout(timer);
    }
    fs.rmSync(baseDir, { recursive: true, force: true });
  };
  return { url: `http://127.0.0.1:${port}`, host: `127.0.0.1:${port}`, port, baseDir, external: false, log: () => output, stop };
}

// CheckpointLoaderSimple -> CLIPTextEncode x2 -> EmptyLatentImage 64x64 -> KSampler 2 steps ->
// VAEDecode -> SaveImage ("9"): a 64x64 PNG.
export function txt2imgWorkflow(prefix = "client_t2i") {
  return {
    "4": { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: "tiny_sd15.safetensors" } },
    "6": { class_type: "CLIPTextEncode", inputs: { text: "a photo of a cat", clip: ["4", 1] } },
    "7": { class_type: "CLIPTextEncode", inputs: { text: "blurry", clip: ["4", 1] } },
    "5": { class_type: "EmptyLatentImage", inputs: { width: 64, height: 64, batch_size: 1 } },
    "3": {
      class_type: "KSampler",
      inputs: {
        seed: 42, steps: 2, cfg: 7.0, sampler_name: "euler", scheduler: "normal", denoise: 1.0,
        model: ["4", 0], positive: ["6", 0], negative: ["7", 0], latent_image: ["5", 0],
      },
    },
    "8": { class_type: "VAEDecode", inputs: { samples: ["3", 0], vae: ["4", 2] } },
    "9": { class_type: "SaveImage", inputs: { filename_prefix: prefix, images: ["8", 0] } },
  };
}

// EmptyImage 40x24 -> ImageInvert -> SaveImage ("3"): a 40x24 PNG.
export function invertWorkflow(prefix = "client_invert") {
  return {
    "1": { class_type: "EmptyImage", inputs: { width: 40, height: 24, batch_size: 1, color: 0 } },
    "2": { class_type: "ImageInvert", inputs: { image: ["1", 0] } },
    "3": { class_type: "SaveImage", inputs: { filename_prefix: prefix, images: ["2", 0] } },
  };
}

// Two prompts that must fail without hanging the client: one that fails validation (unknown
// checkpoint name: 400 with node_errors) and one that fails while running (a checkpoint file that
// is not a safetensors file: execution_error). Writes the broken file into the server's models
// (an external server does not see it: there `broken` fails validation too).
export function failingWorkflows(server) {
  fs.writeFileSync(path.join(server.baseDir, "models", "checkpoints", "broken.safetensors"), "not a safetensors file");
  const invalid = txt2imgWorkflow("invalid");
  invalid["4"].inputs.ckpt_name = "missing.safetensors";
  const broken = txt2imgWorkflow("broken");
  broken["4"].inputs.ckpt_name = "broken.safetensors";
  return { invalid, broken };
}

// Throws unless `bytes` is a PNG of width x height (read from its IHDR chunk).
export function checkPng(bytes, width, height, what = "image") {
  const b = Buffer.from(bytes);
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  if (b.length < 33 || !b.subarray(0, 8).equals(signature)) throw new Error(`${what}: not a PNG (${b.length} bytes)`);
  if (b.toString("latin1", 12, 16) !== "IHDR") throw new Error(`${what}: first chunk is not IHDR`);
  const w = b.readUInt32BE(16), h = b.readUInt32BE(20);
  if (w !== width || h !== height) throw new Error(`${what}: ${w}x${h}, expected ${width}x${height}`);
  return b;
}

// The first pixel's RGB (8-bit RGB/RGBA, unfiltered or Sub-filtered first row: the first pixel is
// raw either way), for the invert check. Decompresses the IDAT chunks.
export async function firstPixel(bytes) {
  const zlib = await import("node:zlib");
  const b = Buffer.from(bytes);
  const idat = [];
  let colorType = 0;
  for (let off = 8; off < b.length; ) {
    const len = b.readUInt32BE(off), type = b.toString("latin1", off + 4, off + 8);
    if (type === "IHDR") colorType = b[off + 8 + 9];
    if (type === "IDAT") idat.push(b.subarray(off + 8, off + 8 + len));
    off += 12 + len;
  }
  const raw = zlib.inflateSync(Buffer.concat(idat));
  if (colorType !== 2 && colorType !== 6) throw new Error(`unexpected PNG colour type ${colorType}`);
  if (raw[0] > 1) throw new Error(`unexpected first-row filter ${raw[0]}`);
  return [raw[1], raw[2], raw[3]];
}

// Runs `body(server)` against a fresh server with an overall deadline; exits 0 on success, 1 on
// failure (printing the server's log).
export async function runTest(name, body, { timeoutMs = 240000, serverArgs = [] } = {}) {
  const binary = process.argv[2];
  let server = null;
  const deadline = setTimeout(() => {
    console.error(`${name}: timed out after ${timeoutMs / 1000} s`);
    if (server) console.error(server.log());
    process.exit(1);
  }, timeoutMs);
  process.on("unhandledRejection", (e) => {
    console.error(`${name}: unhandled rejection:`, e);
    if (server) console.error(server.log());
    process.exit(1);
  });
  try {
    server = await startServer(binary, serverArgs);
    await body(server);
    await server.stop();
    clearTimeout(deadline);
    console.log(`${name}: ok`);
    process.exit(0);
  } catch (e) {
    console.error(`${name}: FAILED:`, e);
    if (server) {
      console.error("---- comfycpp log ----\n" + server.log());
      await server.stop().catch(() => {});
    }
    process.exit(1);
  }
}

export function assert(cond, message) {
  if (!cond) throw new Error(message);
}
