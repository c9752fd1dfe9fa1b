// The missing-models dialog. Every loaded workflow (file, drop, PNG, API prompt, the default,
// the stored one) goes to POST /models/missing; when a model is missing, a dialog lists each one
// that is not where the workflow says (name, target folder, url, status) with Download buttons
// and "Download all". Downloads run on the server (POST /models/download); their progress comes
// from the `asset_download` WebSocket messages (bytes, percent, speed); Cancel stops one; a row
// is marked done when its file is in place, and the loaders' combos are refreshed so the
// workflow can be queued. A model without a url says so.
import {
  type Api, type AssetDownload, type Json, type MissingModel, type MissingReport, cancelDownload, getDownload, missingModels, startDownload,
} from "./api";
import { asAssetMessage, canDownload, dialogRows, downloadPhase, downloadRequest, needsDialog, progressText } from "./model_util";

export interface MissingHost {
  api: Api;
  refreshCombos(): Promise<void>;
  notify(text: string, error?: boolean): void;
  // For "Use": the graph whose loader widgets name the model, and an undoable-change callback.
  graph?: { nodes: { id: Json; widgets?: Json[] }[]; setDirtyCanvas?(fg: boolean, bg: boolean): void };
  changed?(): void;
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

interface Row {
  model: MissingModel;
  el: HTMLElement;
  id?: string;
  phase: "missing" | "starting" | "queued" | "running" | "done" | "failed" | "cancelled" | "found" | "no-url" | "used";
}

export class MissingModelsDialog {
  private backdrop?: HTMLElement;
  private rows: Row[] = [];
  private seen = new Map<string, AssetDownload>(); // latest message per download id
  private checkSeq = 0;
  private poll?: ReturnType<typeof setInterval>;
  report?: MissingReport;

  constructor(private host: MissingHost) {
    host.api.on("asset_download", (d: AssetDownload) => {
      if (!d?.task_id) return;
      this.seen.set(d.task_id, d);
      const row = this.rows.find((r) => r.id === d.task_id);
      if (row) this.apply(row, d);
    });
  }

  get isOpen() { return !!this.backdrop; }

  // Asks the server what `workflow` needs; opens the dialog when something is missing.
  async check(workflow: Json): Promise<MissingReport | undefined> {
    const seq = ++this.checkSeq;
    let report: MissingReport;
    try {
      report = await missingModels(this.host.api, workflow);
    } catch (e) {
      console.warn("missing-models check", e);
      return undefined;
    }
    if (seq !== this.checkSeq) return report; // a newer workflow was loaded meanwhile
    this.report = report;
    if (needsDialog(report)) this.show(report);
    else if (this.isOpen && !this.rows.some((r) => r.phase === "running" || r.phase === "queued" || r.phase === "starting")) this.close();
    return report;
  }

  show(report: MissingReport) {
    this.close();
    const models = dialogRows(report);
    // Not modal: the canvas stays usable while files download.
    const backdrop = document.createElement("div");
    backdrop.className = "comfy-missing";
    backdrop.setAttribute("role", "dialog");
    backdrop.setAttribute("aria-label", "Missing models");
    backdrop.innerHTML = `
      <div class="comfy-missing-head"><b>This workflow needs models that are not here</b>
        <button data-act="close" title="Close (Escape)">×</button></div>
      <table class="comfy-missing-table"><thead><tr><th>Model</th><th>Folder</th><th>Source</th><th>Status</th><th></th></tr></thead><tbody></tbody></table>
      ${report.warnings?.length ? `<div class="comfy-missing-warnings">${report.warnings.map((w) => esc(w)).join("<br>")}</div>` : ""}
      <div class="comfy-missing-foot"><button data-act="download-all">Download all</button> <button data-act="close">Close</button></div>`;
    const body = backdrop.querySelector("tbody")!;
    this.rows = models.map((model) => {
      const el = document.createElement("tr");
      el.className = "comfy-missing-row";
      el.dataset.name = model.name;
      el.innerHTML = `<td class="name">${esc(model.name)}<div class="msg">${esc(model.message ?? "")}</div></td>
        <td class="dir">models/${esc(model.directory ?? "?")}</td>
        <td class="url">${model.url ? `<span title="${esc(model.url)}">${esc(model.url.length > 60 ? `${model.url.slice(0, 57)}…` : model.url)}</span>`
          : model.found_name ? `<i>here as ${esc(model.found_name)}</i>` : "<i>no download url known</i>"}</td>
        <td class="status"><span class="state"></span><div class="comfy-progress" hidden><div></div></div><div class="dl-text"></div></td>
        <td class="actions"><button data-act="download">Download</button><button data-act="cancel" hidden>Cancel</button>${
          model.found_name && model.found_name !== model.name && this.host.graph
            ? `<button data-act="use" title="Select ${esc(model.found_name)} in the loaders that name ${esc(model.name)}">Use ${esc(model.found_name)}</button>` : ""}</td>`;
      body.appendChild(el);
      const phase: Row["phase"] = model.status === "found_elsewhere" || model.status === "found_by_hash" ? "found"
        : model.status === "download_queued" ? "queued" : canDownload(model) ? "missing" : model.url ? "missing" : "no-url";
      const row: Row = { model, el, phase, id: model.download_id ?? undefined };
      this.render(row);
      if (row.id && this.seen.has(row.id)) this.apply(row, this.seen.get(row.id)!);
      return row;
    });
    backdrop.addEventListener("click", (e) => this.onClick(e));
    backdrop.addEventListener("keydown", (e) => { if (e.key === "Escape") { e.stopPropagation(); this.close(); } });
    this.backdrop = backdrop;
    document.body.appendChild(backdrop);
    window.addEventListener("keydown", this.escape, true);
    this.updateFoot();
    // The WebSocket brings progress; a slow poll covers a dropped connection.
    this.poll = setInterval(() => void this.pollActive(), 2000);
  }

  private async pollActive() {
    for (const row of this.rows) {
      if (!row.id || !(row.phase === "queued" || row.phase === "running")) continue;
      try { this.apply(row, asAssetMessage(await getDownload(this.host.api, row.id))); } catch { /* the next poll tries again */ }
    }
  }

  close() {
    clearInterval(this.poll);
    this.poll = undefined;
    this.backdrop?.remove();
    this.backdrop = undefined;
    window.removeEventListener("keydown", this.escape, true);
  }
  private escape = (e: KeyboardEvent) => {
    if (e.key !== "Escape" || !this.backdrop) return;
    e.preventDefault();
    e.stopPropagation();
    this.close();
  };

  private onClick(e: MouseEvent) {
    const t = e.target as HTMLElement;
    const act = t.dataset.act;
    if (act === "close") return this.close();
    if (act === "download-all") {
      for (const r of this.rows) if (r.model.url && (r.phase === "missing" || r.phase === "failed" || r.phase === "cancelled")) void this.download(r);
      return;
    }
    const row = this.rows.find((r) => r.el === t.closest("tr"));
    if (!row) return;
    if (act === "download") void this.download(row);
    else if (act === "cancel") void this.cancel(row);
    else if (act === "use") this.use(row);
  }

  private async download(row: Row) {
    if (!row.model.url) return;
    row.phase = "starting";
    row.el.querySelector(".dl-text")!.textContent = "";
    this.render(row);
    try {
      const d = await startDownload(this.host.api, downloadRequest(row.model));
      row.id = d.id;
      // A message that raced the answer (a small file may be done already) wins when newer.
      const seen = this.seen.get(d.id);
      this.apply(row, seen && downloadPhase(seen) !== "queued" ? seen : asAssetMessage(d));
    } catch (e) {
      row.phase = "failed";
      const body = (e as Json).body;
      row.el.querySelector(".dl-text")!.textContent = body?.error ?? String(e);
      this.render(row);
    }
  }

  // A model found under another name: the loaders that name it select that file instead.
  private use(row: Row) {
    const { name, found_name: to, nodes } = row.model;
    if (!to || !this.host.graph) return;
    let n = 0;
    for (const node of this.host.graph.nodes) {
      if (nodes?.length && !nodes.includes(String(node.id))) continue;
      for (const w of node.widgets ?? []) {
        if (w.type !== "combo" || w.value !== name) continue;
        const values = w.options?.values;
        if (Array.isArray(values) && !values.includes(to)) values.push(to);
        w.value = to;
        n++;
      }
    }
    row.phase = "used";
    row.el.querySelector(".dl-text")!.textContent = n ? `${n} loader${n > 1 ? "s" : ""} now ${n > 1 ? "use" : "uses"} ${to}` : `no loader names ${name}`;
    this.render(row);
    this.host.graph.setDirtyCanvas?.(true, true);
    this.host.changed?.();
  }

  private async cancel(row: Row) {
    if (!row.id) return;
    try {
      await cancelDownload(this.host.api, row.id);
      const d = await getDownload(this.host.api, row.id);
      this.apply(row, asAssetMessage(d));
    } catch (e) {
      this.host.notify(`cancel: ${e}`, true);
    }
  }

  private apply(row: Row, d: AssetDownload) {
    if (row.phase === "done") return;
    const phase = downloadPhase(d);
    row.phase = phase;
    const bar = row.el.querySelector<HTMLElement>(".comfy-progress")!;
    (bar.firstElementChild as HTMLElement).style.width = `${Math.round(100 * (d.bytes_total ? d.bytes_downloaded / d.bytes_total : 0))}%`;
    const text = row.el.querySelector(".dl-text")!;
    if (phase === "failed") text.textContent = d.error ?? "failed";
    else if (phase === "cancelled") text.textContent = "";
    else text.textContent = progressText(d);
    this.render(row);
    if (phase === "done") {
      this.host.notify(`downloaded ${row.model.name}`);
      void this.host.refreshCombos().catch((e) => this.host.notify(`refresh: ${e}`, true));
    }
  }

  private render(row: Row) {
    const labels: Record<Row["phase"], string> = {
      missing: "missing", starting: "starting…", queued: "queued", running: "downloading", done: "✓ downloaded",
      failed: "failed", cancelled: "cancelled", found: row.model.status === "found_by_hash" ? "found by hash" : "found elsewhere",
      "no-url": "missing (no url)", used: "✓ using the file found",
    };
    row.el.dataset.state = row.phase;
    row.el.querySelector(".state")!.textContent = labels[row.phase];
    const active = row.phase === "starting" || row.phase === "queued" || row.phase === "running";
    row.el.querySelector<HTMLElement>(".comfy-progress")!.hidden = !(active || row.phase === "done");
    const dl = row.el.querySelector<HTMLButtonElement>("[data-act=download]")!;
    dl.hidden = !row.model.url || active || row.phase === "done" || row.phase === "found" || row.phase === "used";
    const use = row.el.querySelector<HTMLButtonElement>("[data-act=use]");
    if (use) use.hidden = row.phase !== "found";
    dl.textContent = row.phase === "failed" || row.phase === "cancelled" ? "Retry" : "Download";
    row.el.querySelector<HTMLButtonElement>("[data-act=cancel]")!.hidden = !(active && row.id);
    this.updateFoot();
  }

  private updateFoot() {
    const all = this.backdrop?.querySelector<HTMLButtonElement>("[data-act=download-all]");
    if (all) all.disabled = !this.rows.some((r) => r.model.url && (r.phase === "missing" || r.phase === "failed" || r.phase === "cancelled"));
  }
}
