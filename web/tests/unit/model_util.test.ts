// The model library's and the missing-models dialog's pure logic (src/model_util.ts).
import { describe, expect, it } from "vitest";
import type { MissingModel, MissingReport, ModelInfo, ObjectInfo } from "../../src/api";
import {
  asAssetMessage, canDownload, dialogRows, downloadPhase, downloadRequest, formatBytes, infoRows, loaderFor, matchesFilter, needsDialog, progressText,
} from "../../src/model_util";

const def = (name: string, category: string, required: Record<string, unknown>) =>
  ({ name, category, input: { required }, output: [] }) as unknown as ObjectInfo[string];

const info: ObjectInfo = {
  CheckpointLoaderSimple: def("CheckpointLoaderSimple", "loaders", { ckpt_name: [["a.safetensors"], {}] }),
  LoraLoader: def("LoraLoader", "loaders", { model: ["MODEL"], lora_name: [["l.safetensors"], {}] }),
  VAELoader: def("VAELoader", "loaders", { vae_name: [["v.safetensors", "taesd"], {}] }),
  FancyLoader: def("FancyLoader", "loaders/extra", { thing: ["COMBO", { options: ["x.gguf"] }] }),
  SaveImage: def("SaveImage", "image", { filename_prefix: ["STRING", {}] }),
};

const missing = (over: Partial<MissingModel>): MissingModel => ({
  name: "m.safetensors", directory: "checkpoints", url: null, hash: null, hash_type: null, nodes: [], status: "missing",
  path: null, found_name: null, download_id: null, message: "", ...over,
});

describe("loaderFor", () => {
  it("maps folders to their loader node and input", () => {
    expect(loaderFor("checkpoints", "new.safetensors", info)).toEqual({ type: "CheckpointLoaderSimple", input: "ckpt_name" });
    expect(loaderFor("loras", "l.safetensors", info)).toEqual({ type: "LoraLoader", input: "lora_name" });
    expect(loaderFor("vae", "v.safetensors", info)).toEqual({ type: "VAELoader", input: "vae_name" });
  });
  it("falls back to a loaders-category node whose combo lists the file, else null", () => {
    expect(loaderFor("somefolder", "x.gguf", info)).toEqual({ type: "FancyLoader", input: "thing" });
    expect(loaderFor("controlnet", "c.safetensors", info)).toBeNull(); // the server has no ControlNetLoader here
    expect(loaderFor("embeddings", "e.pt", info)).toBeNull();
  });
});

describe("filter and formatting", () => {
  it("matches every word, case-insensitively, over folder/name", () => {
    expect(matchesFilter("loras", "sd15/Fox_Style.safetensors", "fox")).toBe(true);
    expect(matchesFilter("loras", "sd15/Fox_Style.safetensors", "LORAS style")).toBe(true);
    expect(matchesFilter("loras", "sd15/Fox_Style.safetensors", "fox cat")).toBe(false);
    expect(matchesFilter("vae", "x.safetensors", "  ")).toBe(true);
  });
  it("formats sizes and download progress", () => {
    expect(formatBytes(512)).toBe("512 B");
    expect(formatBytes(1536)).toBe("1.50 KB");
    expect(formatBytes(19384094)).toBe("18.5 MB");
    expect(formatBytes(null)).toBe("?");
    expect(progressText({ bytes_downloaded: 1048576, bytes_total: 4194304, speed: 524288 })).toBe("1.00 MB / 4.00 MB · 25% · 512.0 KB/s");
    expect(progressText({ bytes_downloaded: 2048, bytes_total: 0, speed: 0 })).toBe("2.00 KB");
  });
});

describe("infoRows", () => {
  it("lists the known fields, then the metadata without the long kohya JSON", () => {
    const m: ModelInfo = {
      folder: "loras", name: "fox.safetensors", path: "/x", size: 2048, modified: 0, format: "safetensors",
      metadata: { ss_output_name: "fox_style", ss_tag_frequency: "{\"a\": {\"fox\": 3}}", "modelspec.architecture": "stable-diffusion-v1/lora" },
      tensors: 2, dtypes: { F32: 2 }, parameters: 6144, kind: "LoRA", family: "SD15", family_from: "tensors", title: "fox_style",
      trigger_words: ["fox"], sha256: null, autov2: null, error: null,
    };
    const rows = Object.fromEntries(infoRows(m));
    expect(rows.kind).toBe("LoRA");
    expect(rows.family).toBe("SD15 (from tensors)");
    expect(rows.size).toBe("2.00 KB (2048 bytes)");
    expect(rows.tensors).toBe("2, 6,144 parameters");
    expect(rows.sha256).toBe("not computed yet");
    expect(rows["trigger words"]).toBe("fox");
    expect(rows["modelspec.architecture"]).toBe("stable-diffusion-v1/lora");
    expect(rows.ss_tag_frequency).toBeUndefined();
    expect(rows.error).toBeUndefined();
  });
});

describe("missing-models report", () => {
  const report: MissingReport = {
    models: [
      missing({ name: "here.safetensors", status: "found" }),
      missing({ name: "sub.safetensors", status: "found_elsewhere", found_name: "x/sub.safetensors" }),
      missing({ name: "get.safetensors", url: "http://127.0.0.1:1/get.safetensors", hash: "ABCDEF", hash_type: "sha256" }),
      missing({ name: "nourl.safetensors", directory: "loras" }),
    ],
    missing: 2, warnings: [],
  };
  it("opens only when something is missing and lists what is not found as named", () => {
    expect(needsDialog(report)).toBe(true);
    expect(dialogRows(report).map((m) => m.name)).toEqual(["sub.safetensors", "get.safetensors", "nourl.safetensors"]);
    expect(needsDialog({ models: [report.models[0], report.models[1]], missing: 0, warnings: [] })).toBe(false);
    expect(needsDialog({ models: [missing({ status: "invalid" })], missing: 1, warnings: [] })).toBe(true);
    // A loader naming a file found under another name would fail validation: the dialog offers it.
    expect(needsDialog({ models: [missing({ status: "found_elsewhere", found_name: "x/m.safetensors", nodes: ["4"] })], missing: 0, warnings: [] })).toBe(true);
  });
  it("downloads rows with a url into their folder under their name, with the sha256", () => {
    expect(canDownload(report.models[2])).toBe(true);
    expect(canDownload(report.models[3])).toBe(false);
    expect(downloadRequest(report.models[2])).toEqual({
      url: "http://127.0.0.1:1/get.safetensors", directory: "checkpoints", filename: "get.safetensors", sha256: "abcdef",
    });
    expect(downloadRequest(missing({ url: "http://h/x", hash: "b3", hash_type: "blake3" })).sha256).toBeUndefined();
  });
  it("reads asset_download messages and download states", () => {
    expect(downloadPhase({ status: "created" })).toBe("queued");
    expect(downloadPhase({ status: "running" })).toBe("running");
    expect(downloadPhase({ status: "completed" })).toBe("done");
    expect(downloadPhase({ status: "failed", error: "cancelled" })).toBe("cancelled");
    expect(downloadPhase({ status: "failed", error: "sha256 mismatch" })).toBe("failed");
    const m = asAssetMessage({ id: "7", filename: "a.safetensors", status: "cancelled", bytes_done: 5, bytes_total: 10, speed: 1, error: null });
    expect(m).toMatchObject({ task_id: "7", status: "failed", error: "cancelled", progress: 0.5, bytes_downloaded: 5 });
    expect(asAssetMessage({ id: "8", filename: "b", status: "queued", bytes_done: 0, bytes_total: 0, speed: 0, error: null }).status).toBe("created");
  });
});
