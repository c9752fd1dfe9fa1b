// The ComfyUI HTTP + WebSocket API of comfycpp, as the UI uses it. Same origin: every path is
// under /api/. Binary WS frames carry latent previews (type 1: a JPEG/PNG after an 8-byte header).
export type Json = any;

export interface NodeDef {
  name: string;
  display_name?: string;
  category?: string;
  description?: string;
  input: { required?: Record<string, Json>; optional?: Record<string, Json>; hidden?: Record<string, Json> };
  input_order?: { required?: string[]; optional?: string[] };
  output: string[];
  output_name?: string[];
  output_is_list?: boolean[];
  output_node?: boolean;
}
export type ObjectInfo = Record<string, NodeDef>;

export interface ImageRef { filename: string; subfolder: string; type: string }

type Listener = (data: Json) => void;

// A binary WS frame: a big-endian u32 event type; 1 = PREVIEW_IMAGE (u32 format 1 JPEG / 2 PNG,
// then the picture), 4 = PREVIEW_IMAGE_WITH_METADATA (u32 length, JSON metadata, picture).
export function parsePreviewFrame(buf: ArrayBuffer): { mime: string; bytes: Uint8Array<ArrayBuffer>; meta?: Json } | null {
  if (buf.byteLength < 8) return null;
  const view = new DataView(buf);
  const kind = view.getUint32(0);
  if (kind === 1) return { mime: view.getUint32(4) === 2 ? "image/png" : "image/jpeg", bytes: new Uint8Array(buf, 8) };
  if (kind === 4) {
    const len = view.getUint32(4);
    if (8 + len > buf.byteLength) return null;
    const meta = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 8, len)));
    return { mime: meta.image_type ?? "image/jpeg", bytes: new Uint8Array(buf, 8 + len), meta };
  }
  return null;
}

export class Api {
  readonly clientId: string;
  private listeners = new Map<string, Set<Listener>>();
  private ws?: WebSocket;

  constructor(private base = "") {
    this.clientId = sessionStorage.getItem("comfycpp.clientId") ?? crypto.randomUUID().replace(/-/g, "");
    sessionStorage.setItem("comfycpp.clientId", this.clientId);
  }

  url(path: string) { return `${this.base}/api${path}`; }

  async fetchJson(path: string, init?: RequestInit): Promise<Json> {
    const res = await fetch(this.url(path), init);
    const text = await res.text();
    let body: Json = text;
    try { body = text ? JSON.parse(text) : null; } catch { /* plain text answer */ }
    if (!res.ok) throw Object.assign(new Error(`${res.status} ${path}`), { status: res.status, body });
    return body;
  }

  objectInfo(): Promise<ObjectInfo> { return this.fetchJson("/object_info"); }
  queue(): Promise<{ queue_running: Json[]; queue_pending: Json[] }> { return this.fetchJson("/queue"); }
  history(max = 32): Promise<Record<string, Json>> { return this.fetchJson(`/history?max_items=${max}`); }

  queuePrompt(prompt: Json, workflow: Json, front: boolean): Promise<{ prompt_id: string; number: number }> {
    const body: Json = { client_id: this.clientId, prompt, extra_data: { extra_pnginfo: { workflow } } };
    if (front) body.front = true;
    return this.fetchJson("/prompt", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  }
  interrupt() { return fetch(this.url("/interrupt"), { method: "POST" }); }
  deleteFromQueue(ids: string[]) { return this.post("/queue", { delete: ids }); }
  clearQueue() { return this.post("/queue", { clear: true }); }
  clearHistory() { return this.post("/history", { clear: true }); }
  private post(path: string, body: Json) {
    return fetch(this.url(path), { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  }

  async uploadImage(file: File): Promise<ImageRef> {
    const form = new FormData();
    form.append("image", file, file.name);
    form.append("overwrite", "true");
    const res = await fetch(this.url("/upload/image"), { method: "POST", body: form });
    if (!res.ok) throw new Error(`upload failed: ${res.status}`);
    const r = await res.json();
    return { filename: r.name, subfolder: r.subfolder ?? "", type: r.type ?? "input" };
  }

  viewUrl(img: ImageRef): string {
    const q = new URLSearchParams({ filename: img.filename, subfolder: img.subfolder ?? "", type: img.type ?? "output" });
    return this.url(`/view?${q}`);
  }

  on(type: string, fn: Listener) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type)!.add(fn);
  }
  private emit(type: string, data: Json) { this.listeners.get(type)?.forEach((fn) => fn(data)); }

  connect() {
    const proto = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${proto}://${location.host}${this.base}/ws?clientId=${this.clientId}`);
    ws.binaryType = "arraybuffer";
    ws.onopen = () => this.emit("open", null);
    ws.onclose = () => {
      this.emit("close", null);
      setTimeout(() => this.connect(), 1000);
    };
    ws.onmessage = (ev) => {
      if (ev.data instanceof ArrayBuffer) {
        const preview = parsePreviewFrame(ev.data);
        if (preview) this.emit("b_preview", new Blob([preview.bytes], { type: preview.mime }));
        return;
      }
      const msg = JSON.parse(ev.data);
      this.emit(msg.type, msg.data);
    };
    this.ws = ws;
  }
}

// --- the model manager's routes (README "Model downloads"), for the model library and the
// missing-models dialog. Functions over an Api so the class above stays as it is.
export interface ModelFolder { name: string; folders: string[] }
export interface ModelFile { name: string; pathIndex: number; modified: number; created?: number; size: number }
export interface ModelInfo {
  folder: string; name: string; path: string; size: number; modified: number;
  format: string | null; metadata: Record<string, string> | null; tensors: number | null;
  dtypes: Record<string, number> | null; parameters: number | null; kind: string | null;
  family: string | null; family_from: string | null; title: string | null; trigger_words: string[];
  sha256: string | null; autov2: string | null; error: string | null;
}
export interface MissingModel {
  name: string; directory: string; url: string | null; hash: string | null; hash_type: string | null;
  nodes: string[]; status: string; path: string | null; found_name: string | null; download_id: string | null; message: string;
}
export interface MissingReport { models: MissingModel[]; missing: number; warnings: string[] }
export interface DownloadInfo {
  id: string; url: string; directory: string; filename: string; status: string; bytes_done: number;
  bytes_total: number; progress: number; speed: number; error: string | null;
}
// The `asset_download` WebSocket message (ComfyUI frontend's shape).
export interface AssetDownload {
  task_id: string; asset_name: string; bytes_total: number; bytes_downloaded: number; progress: number;
  status: "created" | "running" | "completed" | "failed"; error?: string; directory?: string; speed?: number;
}

const jsonPost = (body: Json): RequestInit => ({ method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });

export const modelFolders = (api: Api): Promise<ModelFolder[]> => api.fetchJson("/experiment/models");
export const modelFiles = (api: Api, folder: string): Promise<ModelFile[]> =>
  api.fetchJson(`/experiment/models/${encodeURIComponent(folder)}`);
export const modelInfo = (api: Api, folder: string, filename: string): Promise<ModelInfo> =>
  api.fetchJson(`/models/info?${new URLSearchParams({ folder, filename })}`);
export const missingModels = (api: Api, workflow: Json): Promise<MissingReport> => api.fetchJson("/models/missing", jsonPost({ workflow }));
export const startDownload = (api: Api, req: { url: string; directory: string; filename?: string; sha256?: string }): Promise<DownloadInfo> =>
  api.fetchJson("/models/download", jsonPost(req));
export const cancelDownload = (api: Api, id: string): Promise<{ cancelled: boolean }> =>
  api.fetchJson(`/models/downloads/${encodeURIComponent(id)}/cancel`, { method: "POST" });
export const getDownload = (api: Api, id: string): Promise<DownloadInfo> => api.fetchJson(`/models/downloads/${encodeURIComponent(id)}`);
// Background hashing (POST /models/hash), where the server has it.
export const startModelHash = (api: Api, folder: string, filename: string): Promise<Json> => api.fetchJson("/models/hash", jsonPost({ folder, filename }));
// The model catalog (GET /models/catalog, POST /models/catalog/install), where the server has it.
export interface CatalogEntry {
  name: string; type: string; base: string; folder: string; filename: string; url: string; size: number | null;
  sha256: string | null; source: string | null; description: string; installed: string | null;
}
export const modelCatalog = (api: Api): Promise<{ models: CatalogEntry[]; warnings: string[] }> => api.fetchJson("/models/catalog");
export const installCatalogModel = (api: Api, name: string): Promise<{ status: string; download_id: string | null; path: string | null; message: string }> =>
  api.fetchJson("/models/catalog/install", jsonPost({ name }));
