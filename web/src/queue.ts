// The queue panel: the running prompt (with its node's progress), pending prompts (cancel each),
// history thumbnails (click: the image viewer, whose "Load workflow" brings back the graph that
// made the picture), interrupt, clear queue, clear history.
import type { Api, ImageRef, Json } from "./api";
import { readEmbedded } from "./workflow_io";

// `loadWorkflow`: the viewer shows a "Load workflow" button that calls it (then closes).
export function openViewer(urls: string[], index = 0, loadWorkflow?: () => void | Promise<void>) {
  let i = index;
  const overlay = document.createElement("div");
  overlay.className = "comfy-viewer";
  const img = document.createElement("img");
  const show = () => { img.src = urls[i]; };
  show();
  overlay.appendChild(img);
  if (loadWorkflow) {
    const button = document.createElement("button");
    button.className = "comfy-viewer-load";
    button.textContent = "Load workflow";
    button.addEventListener("click", async (e) => {
      e.stopPropagation();
      await loadWorkflow();
      close();
    });
    overlay.appendChild(button);
  }
  const close = () => { overlay.remove(); window.removeEventListener("keydown", key, true); };
  const key = (e: KeyboardEvent) => {
    if (e.key === "Escape") close();
    else if (e.key === "ArrowRight") { i = (i + 1) % urls.length; show(); }
    else if (e.key === "ArrowLeft") { i = (i + urls.length - 1) % urls.length; show(); }
    else return;
    e.preventDefault();
    e.stopPropagation();
  };
  overlay.addEventListener("click", close);
  window.addEventListener("keydown", key, true);
  document.body.appendChild(overlay);
}

export class QueuePanel {
  readonly el: HTMLElement;
  private running: HTMLElement;
  private pending: HTMLElement;
  private history: HTMLElement;
  private status: HTMLElement;
  progressText = "";

  // `load`: a history entry's workflow (UI format), or else its API prompt, into the editor.
  constructor(private api: Api, private actions: { queue: (front: boolean) => void; load?: (workflow: Json, prompt?: Json) => void }) {
    this.el = document.createElement("div");
    this.el.className = "comfy-queue";
    this.el.innerHTML = `
      <div class="comfy-queue-buttons">
        <button data-act="queue" title="Ctrl+Enter">Queue</button>
        <button data-act="front" title="Ctrl+Shift+Enter">Queue front</button>
        <button data-act="interrupt">Cancel running</button>
      </div>
      <div class="comfy-status"></div>
      <h3>Running</h3><div class="comfy-running"></div>
      <h3>Pending <button data-act="clear-queue" class="small">clear</button></h3><div class="comfy-pending"></div>
      <h3>History <button data-act="clear-history" class="small">clear</button></h3><div class="comfy-history"></div>`;
    this.running = this.el.querySelector(".comfy-running")!;
    this.pending = this.el.querySelector(".comfy-pending")!;
    this.history = this.el.querySelector(".comfy-history")!;
    this.status = this.el.querySelector(".comfy-status")!;
    this.el.addEventListener("click", async (e) => {
      const act = (e.target as HTMLElement).dataset.act;
      if (act === "queue") actions.queue(false);
      else if (act === "front") actions.queue(true);
      else if (act === "interrupt") await api.interrupt();
      else if (act === "clear-queue") await api.clearQueue();
      else if (act === "clear-history") await api.clearHistory();
      else if (act === "delete") await api.deleteFromQueue([(e.target as HTMLElement).dataset.id!]);
      else return;
      this.refresh();
    });
  }

  setStatus(text: string) { this.status.textContent = text; }

  async refresh() {
    try {
      const [queue, history] = await Promise.all([this.api.queue(), this.api.history(24)]);
      const item = (q: Json[], cancel: boolean) =>
        `<div class="comfy-queue-item">#${q[0]} ${String(q[1]).slice(0, 8)}${cancel ? ` <button class="small" data-act="delete" data-id="${q[1]}">×</button>` : ""}</div>`;
      this.running.innerHTML = queue.queue_running.map((q) => item(q, false) + `<div class="comfy-progress"><div></div></div>`).join("") || "<i>idle</i>";
      this.updateProgress();
      this.pending.innerHTML = [...queue.queue_pending].sort((a, b) => a[0] - b[0]).map((q) => item(q, true)).join("") || "<i>empty</i>";
      this.history.innerHTML = "";
      for (const [id, entry] of Object.entries(history).reverse()) {
        const images: ImageRef[] = [];
        for (const out of Object.values<Json>(entry.outputs ?? {})) images.push(...(out.images ?? []));
        const div = document.createElement("div");
        div.className = "comfy-history-item";
        div.title = `${id} ${entry.status?.status_str ?? ""}`;
        if (!images.length) div.textContent = `${id.slice(0, 8)} ${entry.status?.status_str ?? ""}`;
        const urls = images.map((r) => this.api.viewUrl(r));
        const load = this.actions.load ? () => this.loadFrom(entry, urls[0]) : undefined;
        urls.forEach((u, i) => {
          const img = document.createElement("img");
          img.src = u;
          img.className = "comfy-thumb";
          img.addEventListener("click", () => openViewer(urls, i, load));
          div.appendChild(img);
        });
        this.history.appendChild(div);
      }
    } catch (e) {
      this.setStatus(`queue: ${e}`);
    }
  }

  // The workflow queued with the prompt (extra_pnginfo), else what the picture carries.
  private async loadFrom(entry: Json, url: string) {
    const extra = entry.prompt?.[3];
    let workflow = extra?.extra_pnginfo?.workflow, prompt = entry.prompt?.[2];
    if (!workflow && url) {
      const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
      const found = readEmbedded("image.png", bytes);
      workflow = found.workflow;
      prompt = found.prompt ?? prompt;
    }
    this.actions.load?.(workflow, prompt);
  }

  private fraction = 0;
  setProgress(value: number, max: number) {
    this.fraction = max > 0 ? value / max : 0;
    this.updateProgress();
  }
  private updateProgress() {
    const bar = this.running.querySelector<HTMLElement>(".comfy-progress div");
    if (bar) bar.style.width = `${Math.round(this.fraction * 100)}%`;
  }
}
