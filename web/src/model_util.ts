// The pure parts of the model library and the missing-models dialog (no DOM, no litegraph):
// which loader node takes a model folder's files, filtering, sizes and speeds, what a model's
// metadata shows, and which rows of a missing-models report need the user.
import type { AssetDownload, Json, MissingModel, MissingReport, ModelInfo, ObjectInfo } from "./api";

// Model folder -> the node that loads its files and the input that names the file.
export const LOADERS: Record<string, { type: string; input: string }> = {
  checkpoints: { type: "CheckpointLoaderSimple", input: "ckpt_name" },
  loras: { type: "LoraLoader", input: "lora_name" },
  vae: { type: "VAELoader", input: "vae_name" },
  vae_approx: { type: "VAELoader", input: "vae_name" },
  controlnet: { type: "ControlNetLoader", input: "control_net_name" },
  upscale_models: { type: "UpscaleModelLoader", input: "model_name" },
  text_encoders: { type: "CLIPLoader", input: "clip_name" },
  clip: { type: "CLIPLoader", input: "clip_name" },
  diffusion_models: { type: "UNETLoader", input: "unet_name" },
  unet: { type: "UNETLoader", input: "unet_name" },
  clip_vision: { type: "CLIPVisionLoader", input: "clip_name" },
  style_models: { type: "StyleModelLoader", input: "style_model_name" },
  gligen: { type: "GLIGENLoader", input: "gligen_name" },
  hypernetworks: { type: "HypernetworkLoader", input: "hypernetwork_name" },
  photomaker: { type: "PhotoMakerLoader", input: "photomaker_model_name" },
};

function comboValues(spec: Json): string[] | undefined {
  if (!Array.isArray(spec)) return undefined;
  if (Array.isArray(spec[0])) return spec[0].map(String);
  if (spec[0] === "COMBO" && Array.isArray(spec[1]?.options)) return spec[1].options.map(String);
  return undefined;
}

// The loader node for a file of `folder`: the table's node when the server has it, else any
// node of a "loaders" category whose combo lists the file. Null when nothing loads it.
export function loaderFor(folder: string, filename: string, info: ObjectInfo): { type: string; input: string } | null {
  const known = LOADERS[folder];
  if (known && info[known.type]) return known;
  for (const [type, def] of Object.entries(info)) {
    if (!String(def.category ?? "").startsWith("loaders")) continue;
    for (const group of ["required", "optional"] as const)
      for (const [input, spec] of Object.entries(def.input?.[group] ?? {}))
        if (comboValues(spec)?.includes(filename)) return { type, input };
  }
  return null;
}

// Case-insensitive: every word of the query appears in the folder/name path.
export function matchesFilter(folder: string, name: string, query: string): boolean {
  const hay = `${folder}/${name}`.toLowerCase();
  return query.toLowerCase().split(/\s+/).filter(Boolean).every((w) => hay.includes(w));
}

export function formatBytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return "?";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let v = n, i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return i === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

// "1.50 MB / 4.00 MB · 37% · 512.0 KB/s" (what a download row shows).
export function progressText(m: Pick<AssetDownload, "bytes_downloaded" | "bytes_total" | "speed">): string {
  const parts = [m.bytes_total ? `${formatBytes(m.bytes_downloaded)} / ${formatBytes(m.bytes_total)}` : formatBytes(m.bytes_downloaded)];
  if (m.bytes_total) parts.push(`${Math.floor((100 * m.bytes_downloaded) / m.bytes_total)}%`);
  if (m.speed) parts.push(`${formatBytes(m.speed)}/s`);
  return parts.join(" · ");
}

// The lines of a model's details: [label, value], the known fields first, then the metadata
// (kohya ss_* and modelspec.* included) in the file's order, long values cut.
export function infoRows(m: ModelInfo): [string, string][] {
  const rows: [string, string][] = [];
  const add = (k: string, v: Json) => { if (v !== null && v !== undefined && v !== "") rows.push([k, String(v)]); };
  add("title", m.title);
  add("file", `${m.folder}/${m.name}`);
  add("size", `${formatBytes(m.size)} (${m.size} bytes)`);
  add("kind", m.kind);
  add("family", m.family ? `${m.family}${m.family_from ? ` (from ${m.family_from})` : ""}` : null);
  add("format", m.format);
  if (m.tensors !== null) add("tensors", `${m.tensors}${m.parameters !== null ? `, ${m.parameters.toLocaleString("en")} parameters` : ""}`);
  if (m.dtypes) add("dtypes", Object.entries(m.dtypes).map(([k, v]) => `${k} ×${v}`).join(", "));
  add("sha256", m.sha256 ?? "not computed yet");
  add("AutoV2", m.autov2);
  if (m.trigger_words?.length) add("trigger words", m.trigger_words.join(", "));
  add("error", m.error);
  for (const [k, v] of Object.entries(m.metadata ?? {})) {
    if (k === "ss_tag_frequency" || k === "ss_dataset_dirs" || k === "ss_bucket_info") continue; // long JSON; read as trigger words
    const s = typeof v === "string" ? v : JSON.stringify(v);
    add(k, s.length > 200 ? `${s.slice(0, 200)}… (${s.length} characters)` : s);
  }
  return rows;
}

// The rows of a missing-models report the dialog lists (everything not found as named), and
// whether it has to open at all (something is missing, invalid or failed).
export const PROBLEM = new Set(["missing", "invalid", "download_failed"]);
export function dialogRows(report: MissingReport): MissingModel[] {
  return (report.models ?? []).filter((m) => m.status !== "found");
}
// A loader that names a file found only under another name fails validation too.
export function needsDialog(report: MissingReport): boolean {
  return (report.models ?? []).some((m) => PROBLEM.has(m.status) ||
    ((m.status === "found_elsewhere" || m.status === "found_by_hash") && (m.nodes?.length ?? 0) > 0));
}
export function canDownload(m: MissingModel): boolean {
  return !!m.url && (m.status === "missing" || m.status === "download_failed");
}
// What POST /models/download gets for a report row.
export function downloadRequest(m: MissingModel): { url: string; directory: string; filename: string; sha256?: string } {
  const req: { url: string; directory: string; filename: string; sha256?: string } = { url: m.url!, directory: m.directory, filename: m.name };
  if (m.hash && (m.hash_type ?? "sha256") === "sha256") req.sha256 = m.hash.toLowerCase();
  return req;
}

// A download's state from an asset_download message: done, failed, cancelled or still going.
export function downloadPhase(m: Pick<AssetDownload, "status" | "error">): "queued" | "running" | "done" | "failed" | "cancelled" {
  if (m.status === "completed") return "done";
  if (m.status === "failed") return m.error === "cancelled" ? "cancelled" : "failed";
  return m.status === "created" ? "queued" : "running";
}
// GET /models/downloads/{id} (DownloadState::to_json) in the asset_download message's shape.
export function asAssetMessage(d: { id: string; filename: string; status: string; bytes_done: number; bytes_total: number; speed: number; error: string | null }): AssetDownload {
  const status = d.status === "queued" ? "created" : d.status === "running" ? "running" : d.status === "completed" ? "completed" : "failed";
  const msg: AssetDownload = { task_id: d.id, asset_name: d.filename, bytes_total: d.bytes_total, bytes_downloaded: d.bytes_done,
    progress: d.bytes_total ? d.bytes_done / d.bytes_total : 0, status, speed: d.speed };
  if (d.status === "cancelled") msg.error = "cancelled";
  else if (d.error) msg.error = d.error;
  return msg;
}
