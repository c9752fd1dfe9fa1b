// The model library: a side panel (its button, or `m` as in ComfyUI) listing every model folder
// (/experiment/models) and its files, with a filter box. Selecting a file shows what its header
// says (GET /models/info: size, kind, family, kohya ss_* and modelspec.* metadata, trigger words,
// the SHA-256 when the server has it cached, or a button to compute it where the server hashes in
// the background). "+", a double-click or dragging a file onto the canvas adds the loader node
// for its folder with that file selected. Refresh re-reads the folders and the loaders' combos.
import { type LGraph, type LGraphCanvas, LiteGraph } from "@comfyorg/litegraph";
import {
  type Api, type AssetDownload, type CatalogEntry, type Json, type ModelFile, type ModelInfo, type ObjectInfo, installCatalogModel, modelCatalog,
  modelFiles, modelFolders, modelInfo, startModelHash,
} from "./api";
import { downloadPhase, formatBytes, infoRows, loaderFor, matchesFilter, progressText } from "./model_util";

export const MODEL_MIME = "application/x-comfycpp-model";

export interface LibraryHost {
  api: Api;
  graph: LGraph;
  canvas: LGraphCanvas;
  info(): ObjectInfo;
  refreshCombos(): Promise<void>;
  changed(): void; // an undoable, autosaved change
  notify(text: string, error?: boolean): void;
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export class ModelLibrary {
  readonly el: HTMLElement;
  readonly button: HTMLButtonElement;
  private tree: HTMLElement;
  private details: HTMLElement;
  private filter: HTMLInputElement;
  private files = new Map<string, ModelFile[]>();
  private selected?: { folder: string; name: string };
  private hashing = new Map<string, { folder: string; name: string }>();
  private tab: "installed" | "catalog" = "installed";
  private catalog?: CatalogEntry[];
  private catalogError = "";
  private installs = new Map<string, string>(); // download id -> catalog entry name
  private installText = new Map<string, { text: string; state: string }>(); // entry name -> progress

  constructor(private host: LibraryHost) {
    this.button = document.createElement("button");
    this.button.className = "comfy-models-toggle";
    this.button.textContent = "Models";
    this.button.title = "Model library (m)";
    this.button.addEventListener("click", () => this.toggle());
    this.el = document.createElement("div");
    this.el.className = "comfy-models";
    this.el.hidden = true;
    this.el.innerHTML = `
      <div class="comfy-models-head"><b>Model library</b>
        <button data-act="refresh" title="Re-read the model folders and the loaders' lists">Refresh</button>
        <button data-act="close" title="Close (m)">×</button></div>
      <div class="comfy-models-tabs"><button data-tab="installed" class="active">Installed</button><button data-tab="catalog"
        title="Known models the server can download (the model catalog)">Catalog</button></div>
      <input type="search" class="comfy-models-filter" placeholder="Filter models">
      <div class="comfy-models-tree"></div>
      <div class="comfy-models-details"></div>`;
    this.tree = this.el.querySelector(".comfy-models-tree")!;
    this.details = this.el.querySelector(".comfy-models-details")!;
    this.filter = this.el.querySelector(".comfy-models-filter")!;
    this.filter.addEventListener("input", () => this.render());
    this.filter.addEventListener("keydown", (e) => { e.stopPropagation(); if (e.key === "Escape") this.filter.blur(); });
    this.el.addEventListener("click", (e) => this.onClick(e));
    this.el.addEventListener("dblclick", (e) => {
      const row = (e.target as HTMLElement).closest<HTMLElement>(".comfy-model-file");
      if (row) this.addLoader(row.dataset.folder!, row.dataset.name!);
    });
    this.el.addEventListener("dragstart", (e) => {
      const row = (e.target as HTMLElement).closest<HTMLElement>(".comfy-model-file");
      if (!row || !e.dataTransfer) return;
      e.dataTransfer.setData(MODEL_MIME, JSON.stringify({ folder: row.dataset.folder, name: row.dataset.name }));
      e.dataTransfer.setData("text/plain", `${row.dataset.folder}/${row.dataset.name}`);
      e.dataTransfer.effectAllowed = "copy";
    });
    // A file dropped on the canvas: its loader where it fell. Runs before the page's own drop
    // handler (which only takes files).
    const canvasEl = host.canvas.canvas as HTMLCanvasElement;
    canvasEl.addEventListener("drop", (e) => {
      const data = e.dataTransfer?.getData(MODEL_MIME);
      if (!data) return;
      e.preventDefault();
      e.stopPropagation();
      const { folder, name } = JSON.parse(data);
      const [x, y] = host.canvas.convertEventToCanvasOffset(e as Json);
      this.addLoader(folder, name, [x, y]);
    });
    window.addEventListener("keydown", (e) => {
      const t = e.target as HTMLElement;
      if (e.ctrlKey || e.metaKey || e.altKey || e.key.toLowerCase() !== "m") return;
      if (t.localName === "input" || t.localName === "textarea" || t.isContentEditable) return;
      if (document.querySelector(".comfy-mask-editor, .comfy-viewer")) return;
      e.preventDefault();
      this.toggle();
    });
    host.api.on("model_hash", (d: Json) => this.onHash(d));
    host.api.on("asset_download", (d: AssetDownload) => this.onDownload(d));
    document.body.append(this.button, this.el);
  }

  get isOpen() { return !this.el.hidden; }
  toggle() { if (this.isOpen) this.close(); else void this.open(); }
  async open() {
    this.el.hidden = false;
    this.button.classList.add("active");
    await this.load();
    this.filter.focus();
  }
  close() {
    this.el.hidden = true;
    this.button.classList.remove("active");
    (this.host.canvas.canvas as HTMLElement).focus();
  }

  // Folders and their files, from the server.
  async load() {
    try {
      // Names as the loaders list them (/models/{folder}), sizes from /experiment/models/{folder}.
      const folders = await modelFolders(this.host.api);
      const lists = await Promise.all(folders.map(async (f) => {
        const [names, detailed] = await Promise.all([
          this.host.api.fetchJson(`/models/${encodeURIComponent(f.name)}`).catch(() => [] as string[]) as Promise<string[]>,
          modelFiles(this.host.api, f.name).catch(() => [] as ModelFile[]),
        ]);
        const sizes = new Map(detailed.map((d) => [d.name, d]));
        return names.map((name): ModelFile => sizes.get(name) ?? { name, pathIndex: 0, modified: 0, size: NaN });
      }));
      this.files = new Map(folders.map((f, i) => [f.name, lists[i].sort((a, b) => a.name.localeCompare(b.name))]));
      this.render();
    } catch (e) {
      this.tree.innerHTML = `<div class="comfy-models-error">cannot list the models: ${esc(String(e))}</div>`;
    }
  }

  async refresh() {
    if (this.tab === "catalog") this.catalog = undefined;
    await Promise.all([this.load(), this.host.refreshCombos().catch((e) => this.host.notify(`refresh: ${e}`, true))]);
    this.host.notify("model lists refreshed");
  }

  private render() {
    if (this.tab === "catalog") return this.renderCatalog();
    const q = this.filter.value.trim();
    const parts: string[] = [];
    for (const [folder, files] of this.files) {
      const shown = q ? files.filter((f) => matchesFilter(folder, f.name, q)) : files;
      if (q && !shown.length) continue;
      const open = shown.length > 0 && (q !== "" || files.length <= 50);
      parts.push(`<details class="comfy-models-folder" data-folder="${esc(folder)}"${open ? " open" : ""}>
        <summary>${esc(folder)} <span class="count">${shown.length}</span></summary>
        ${shown.map((f) => {
          const sel = this.selected?.folder === folder && this.selected.name === f.name ? " selected" : "";
          return `<div class="comfy-model-file${sel}" draggable="true" data-folder="${esc(folder)}" data-name="${esc(f.name)}" title="${esc(f.name)}">
            <span class="name">${esc(f.name)}</span><span class="size">${Number.isFinite(f.size) ? formatBytes(f.size) : ""}</span>
            <button class="small" data-act="add" title="Add a loader node with this file">+</button></div>`;
        }).join("")}
      </details>`);
    }
    this.tree.innerHTML = parts.join("") || `<div class="comfy-models-empty">${q ? "no model matches" : "no model folders"}</div>`;
  }

  // --- the catalog tab
  private async loadCatalog() {
    try {
      this.catalog = (await modelCatalog(this.host.api)).models;
      this.catalogError = "";
    } catch (e) {
      this.catalog = [];
      this.catalogError = (e as Json).status === 404 ? "this server has no model catalog" : `cannot read the catalog: ${e}`;
    }
    if (this.tab === "catalog") this.renderCatalog();
  }

  private renderCatalog() {
    if (!this.catalog) {
      this.tree.innerHTML = `<div class="comfy-models-loading">reading the catalog…</div>`;
      void this.loadCatalog();
      return;
    }
    const q = this.filter.value.trim();
    const shown = this.catalog.filter((c) => !q || matchesFilter(`${c.type} ${c.base} ${c.folder}`, `${c.name} ${c.filename} ${c.description}`, q));
    this.tree.innerHTML = this.catalogError ? `<div class="comfy-models-error">${esc(this.catalogError)}</div>`
      : shown.map((c) => {
        const p = this.installText.get(c.name);
        const state = c.installed ? "installed" : p?.state ?? "available";
        const action = c.installed ? `<span class="ok">installed</span>`
          : state === "queued" || state === "running" ? "" : `<button class="small" data-act="install">Install</button>`;
        return `<div class="comfy-catalog-entry" data-name="${esc(c.name)}" data-state="${state}">
          <div class="line"><span class="name">${esc(c.name)}</span><span class="size">${c.size ? formatBytes(c.size) : ""}</span>${action}</div>
          <div class="sub">${esc([c.type, c.base].filter(Boolean).join(" · "))} → models/${esc(c.folder)}/${esc(c.filename)}</div>
          ${c.description ? `<div class="desc">${esc(c.description)}</div>` : ""}
          <div class="dl-text">${esc(p?.text ?? "")}</div></div>`;
      }).join("") || `<div class="comfy-models-empty">no catalog entry matches</div>`;
  }

  private async install(name: string) {
    this.installText.set(name, { text: "starting…", state: "queued" });
    this.renderCatalog();
    try {
      const r = await installCatalogModel(this.host.api, name);
      if (r.status === "present") {
        this.installText.set(name, { text: r.message, state: "installed" });
        this.catalog = undefined;
      } else if (r.download_id) {
        this.installs.set(r.download_id, name);
        this.installText.set(name, { text: "queued", state: "queued" });
      } else this.installText.set(name, { text: r.message || r.status, state: "failed" });
    } catch (e) {
      const body = (e as Json).body;
      this.installText.set(name, { text: body?.message ?? body?.error ?? String(e), state: "failed" });
    }
    this.renderCatalog();
  }

  private onDownload(d: AssetDownload) {
    const name = this.installs.get(d?.task_id);
    if (!name) return;
    const phase = downloadPhase(d);
    this.installText.set(name, {
      text: phase === "failed" ? d.error ?? "failed" : phase === "cancelled" ? "cancelled" : phase === "done" ? "installed" : progressText(d),
      state: phase === "done" ? "installed" : phase,
    });
    if (phase === "done") {
      this.installs.delete(d.task_id);
      this.catalog = undefined; // re-read: the entry is installed now
      void this.load();
      void this.host.refreshCombos().catch(() => {});
      this.host.notify(`installed ${name}`);
    }
    if (this.tab === "catalog" && this.isOpen) this.renderCatalog();
  }

  private onClick(e: MouseEvent) {
    const target = e.target as HTMLElement;
    const act = target.dataset.act;
    const tab = target.dataset.tab as "installed" | "catalog" | undefined;
    if (tab) {
      this.tab = tab;
      this.el.querySelectorAll("[data-tab]").forEach((b) => b.classList.toggle("active", (b as HTMLElement).dataset.tab === tab));
      this.details.innerHTML = "";
      return this.render();
    }
    if (act === "install") {
      const entry = target.closest<HTMLElement>(".comfy-catalog-entry");
      if (entry) void this.install(entry.dataset.name!);
      return;
    }
    if (act === "close") return this.close();
    if (act === "refresh") return void this.refresh();
    if (act === "hash" && this.selected) return void this.hash(this.selected.folder, this.selected.name);
    const row = target.closest<HTMLElement>(".comfy-model-file");
    if (act === "add-selected" && this.selected) return this.addLoader(this.selected.folder, this.selected.name);
    if (!row) return;
    if (act === "add") return this.addLoader(row.dataset.folder!, row.dataset.name!);
    this.tree.querySelectorAll(".comfy-model-file.selected").forEach((r) => r.classList.remove("selected"));
    row.classList.add("selected");
    void this.select(row.dataset.folder!, row.dataset.name!);
  }

  async select(folder: string, name: string) {
    this.selected = { folder, name };
    this.details.innerHTML = `<div class="comfy-models-loading">reading ${esc(name)}…</div>`;
    let m: ModelInfo;
    try {
      m = await modelInfo(this.host.api, folder, name);
    } catch (e) {
      const body = (e as Json).body;
      this.details.innerHTML = `<div class="comfy-models-error">${esc(body?.error ?? String(e))}</div>`;
      return;
    }
    if (this.selected?.folder !== folder || this.selected.name !== name) return;
    this.showInfo(m);
  }

  private showInfo(m: ModelInfo) {
    const loader = loaderFor(m.folder, m.name, this.host.info());
    const rows = infoRows(m).map(([k, v]) => `<tr data-key="${esc(k)}"><th>${esc(k)}</th><td>${esc(v)}</td></tr>`).join("");
    const words = m.trigger_words?.length
      ? `<div class="comfy-models-words">${m.trigger_words.map((w) => `<span class="word">${esc(w)}</span>`).join("")}</div>` : "";
    this.details.innerHTML = `<div class="comfy-models-title">${esc(m.title ?? m.name)}</div>${words}
      <table class="comfy-models-info">${rows}</table>
      <div class="comfy-models-actions">
        ${loader ? `<button data-act="add-selected">Add ${esc(loader.type)}</button>` : `<i>no loader node for models/${esc(m.folder)}</i>`}
        ${m.sha256 ? "" : `<button data-act="hash" title="Compute the SHA-256 on the server">Compute hash</button>`}
      </div>`;
  }

  private async hash(folder: string, name: string) {
    try {
      const r = await startModelHash(this.host.api, folder, name);
      if (r?.id) this.hashing.set(String(r.id), { folder, name });
      if (r?.sha256 && r?.status === "done") await this.select(folder, name);
      else this.host.notify(`hashing ${name}…`);
    } catch (e) {
      const status = (e as Json).status;
      this.host.notify(status === 404 ? "this server does not hash models in the background (comfycpp models hash FILE does)" : `hash: ${e}`, true);
    }
  }

  private onHash(d: Json) {
    const sel = this.selected;
    if (!sel || (d?.status !== "done" && d?.status !== "error")) return;
    const mine = this.hashing.get(String(d.id));
    if ((mine && mine.folder === sel.folder && mine.name === sel.name) || (d.folder === sel.folder && d.filename === sel.name)) {
      this.hashing.delete(String(d.id));
      if (d.status === "error") this.host.notify(`hash: ${d.error ?? "failed"}`, true);
      void this.select(sel.folder, sel.name);
    }
  }

  // The loader node for `folder`/`name`, at `pos` (graph coordinates) or in the middle of the
  // visible canvas, with the file selected in its combo.
  addLoader(folder: string, name: string, pos?: [number, number]) {
    const loader = loaderFor(folder, name, this.host.info());
    if (!loader) { this.host.notify(`no loader node for models/${folder}`, true); return; }
    const node = LiteGraph.createNode(loader.type);
    if (!node) { this.host.notify(`the server has no ${loader.type} node`, true); return; }
    const canvas = this.host.canvas;
    if (!pos) {
      const r = (canvas.canvas as HTMLElement).getBoundingClientRect();
      const left = this.isOpen ? this.el.getBoundingClientRect().right : 0;
      const p = canvas.ds.convertCanvasToOffset([left + (r.width - left - 280) / 2 - 100, r.height / 2 - 60]);
      pos = [p[0], p[1]];
    }
    node.pos = [pos[0], pos[1]];
    this.host.graph.add(node);
    const w = node.widgets?.find((x) => x.name === loader.input) as Json;
    if (w) {
      const values: string[] = w.options?.values ?? [];
      if (Array.isArray(values) && !values.includes(name)) values.push(name);
      w.value = name;
    }
    canvas.selectNode(node);
    canvas.setDirty(true, true);
    this.host.changed();
    this.host.notify(`added ${loader.type} with ${name}`);
  }
}
