// The mask editor, ComfyUI's "Open in MaskEditor" for a node with an image upload: a full-window
// overlay with the picture and the mask over it. Paint with the left button (right button or
// "Erase": erase), brush size ([ and ] too) and hardness, invert, clear, undo (Ctrl+Z / Ctrl+Y);
// the wheel zooms around the pointer, the middle button or Space+drag pans. An existing mask is
// read from the picture's alpha (transparent = masked). Save uploads, as ComfyUI's frontend does,
// a PNG whose alpha is the inverted mask (0 where painted) to /upload/mask with `original_ref`
// (the picture), subfolder "clipspace" and type "input"; the server puts that alpha into the
// original's pixels, and the node's widget is pointed at "clipspace/<name> [input]".
import type { Api, ImageRef, Json } from "./api";

const MASK_RGB = "255, 255, 255"; // how the mask is shown over the picture
const MAX_UNDO = 20;

// A LoadImage widget value ("a.png", "sub/a.png", "clipspace/m.png [input]") as a /view reference.
export function imageRefOf(value: string, defaultType = "input"): ImageRef {
  let name = value, type = defaultType;
  const m = /^(.*) \[(input|output|temp)\]$/.exec(value);
  if (m) { name = m[1]; type = m[2]; }
  const slash = name.lastIndexOf("/");
  return { filename: slash >= 0 ? name.slice(slash + 1) : name, subfolder: slash >= 0 ? name.slice(0, slash) : "", type };
}

export interface MaskEditorOptions {
  onSave(value: string): void; // the widget value of the saved picture
  onError?(message: string): void;
}

function loadImage(src: string): Promise<HTMLImageElement> {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error(`cannot load ${src}`));
    img.src = src;
  });
}

export class MaskEditor {
  readonly el: HTMLDivElement;
  readonly ref: ImageRef;
  width = 0;
  height = 0;
  brushSize = 32; // diameter in picture pixels
  hardness = 1;
  erase = false;
  scale = 1;
  offset: [number, number] = [0, 0];
  private stage: HTMLDivElement;
  private layer: HTMLDivElement;
  private picture: HTMLCanvasElement;
  readonly mask: HTMLCanvasElement; // alpha = mask strength
  private ctx!: CanvasRenderingContext2D;
  private cursor: HTMLDivElement;
  private zoomLabel: HTMLElement;
  private spaceDown = false;
  private drag?: { mode: "paint" | "erase" | "pan"; last: [number, number]; id: number };
  private undoStack: ImageData[] = [];
  private redoStack: ImageData[] = [];
  private closed = false;

  constructor(private api: Api, value: string, private options: MaskEditorOptions) {
    this.ref = imageRefOf(value);
    this.el = document.createElement("div");
    this.el.className = "comfy-mask-editor";
    this.el.tabIndex = -1;
    this.el.innerHTML = `
      <div class="comfy-mask-toolbar">
        <span class="comfy-mask-title">Mask editor</span>
        <label>Brush size <input type="range" name="brush-size" min="1" max="256" step="1" value="${this.brushSize}"><output data-for="brush-size">${this.brushSize}</output></label>
        <label>Hardness <input type="range" name="hardness" min="0" max="1" step="0.05" value="${this.hardness}"><output data-for="hardness">${this.hardness}</output></label>
        <label><input type="checkbox" name="erase"> Erase</label>
        <button data-act="invert">Invert</button>
        <button data-act="clear">Clear</button>
        <button data-act="fit" title="fit the picture">Fit</button>
        <span class="comfy-mask-zoom"></span>
        <span class="comfy-mask-spacer"></span>
        <button data-act="cancel">Cancel</button>
        <button data-act="save" class="comfy-mask-save">Save</button>
      </div>
      <div class="comfy-mask-stage">
        <div class="comfy-mask-layer"><canvas class="comfy-mask-picture"></canvas><canvas class="comfy-mask-canvas"></canvas></div>
        <div class="comfy-mask-cursor"></div>
      </div>`;
    this.stage = this.el.querySelector(".comfy-mask-stage")!;
    this.layer = this.el.querySelector(".comfy-mask-layer")!;
    this.picture = this.el.querySelector(".comfy-mask-picture")!;
    this.mask = this.el.querySelector(".comfy-mask-canvas")!;
    this.cursor = this.el.querySelector(".comfy-mask-cursor")!;
    this.zoomLabel = this.el.querySelector(".comfy-mask-zoom")!;
    this.bindControls();
    this.bindPointer();
    window.addEventListener("keydown", this.onKey, true);
    window.addEventListener("keyup", this.onKey, true);
    window.addEventListener("resize", this.fit);
    document.body.appendChild(this.el);
    this.el.focus();
  }

  // Loads the picture and its mask (from the alpha channel); resolves once the editor is usable.
  async load(): Promise<void> {
    const url = `${this.api.viewUrl(this.ref)}&t=${Date.now()}`;
    const img = await loadImage(url);
    this.width = img.naturalWidth;
    this.height = img.naturalHeight;
    for (const c of [this.picture, this.mask]) { c.width = this.width; c.height = this.height; }
    this.layer.style.width = `${this.width}px`;
    this.layer.style.height = `${this.height}px`;
    const pctx = this.picture.getContext("2d", { willReadFrequently: true })!;
    pctx.drawImage(img, 0, 0);
    const pixels = pctx.getImageData(0, 0, this.width, this.height);
    const m = new ImageData(this.width, this.height);
    const [r, g, b] = MASK_RGB.split(",").map(Number);
    for (let i = 0; i < pixels.data.length; i += 4) {
      const masked = 255 - pixels.data[i + 3];
      pixels.data[i + 3] = 255; // the picture shows opaque; the mask layer shows what is masked
      m.data[i] = r; m.data[i + 1] = g; m.data[i + 2] = b; m.data[i + 3] = masked;
    }
    pctx.putImageData(pixels, 0, 0);
    this.ctx = this.mask.getContext("2d", { willReadFrequently: true })!;
    this.ctx.putImageData(m, 0, 0);
    this.fit();
    this.el.dataset.ready = "1";
  }

  // ---- view: fit, zoom around a point, pan
  fit = () => {
    if (!this.width) return;
    const r = this.stage.getBoundingClientRect();
    this.scale = Math.min((r.width - 40) / this.width, (r.height - 40) / this.height);
    if (!(this.scale > 0)) this.scale = 1;
    this.offset = [(r.width - this.width * this.scale) / 2, (r.height - this.height * this.scale) / 2];
    this.applyView();
  };
  private applyView() {
    this.layer.style.transform = `translate(${this.offset[0]}px, ${this.offset[1]}px) scale(${this.scale})`;
    this.zoomLabel.textContent = `${Math.round(this.scale * 100)}%`;
    this.updateCursorSize();
  }
  zoomAt(clientX: number, clientY: number, factor: number) {
    const r = this.stage.getBoundingClientRect();
    const sx = clientX - r.left, sy = clientY - r.top;
    const next = Math.min(64, Math.max(0.05, this.scale * factor));
    // Keep the picture point under the pointer where it is.
    this.offset = [sx - ((sx - this.offset[0]) * next) / this.scale, sy - ((sy - this.offset[1]) * next) / this.scale];
    this.scale = next;
    this.applyView();
  }
  // Client coordinates to picture pixels.
  toPicture(clientX: number, clientY: number): [number, number] {
    const r = this.stage.getBoundingClientRect();
    return [(clientX - r.left - this.offset[0]) / this.scale, (clientY - r.top - this.offset[1]) / this.scale];
  }

  // ---- painting
  private dab(x: number, y: number) {
    const ctx = this.ctx, radius = Math.max(0.5, this.brushSize / 2);
    ctx.beginPath();
    ctx.arc(x, y, radius, 0, Math.PI * 2);
    if (this.hardness >= 0.999) ctx.fillStyle = `rgba(${MASK_RGB}, 1)`;
    else {
      const g = ctx.createRadialGradient(x, y, radius * this.hardness, x, y, radius);
      g.addColorStop(0, `rgba(${MASK_RGB}, 1)`);
      g.addColorStop(1, `rgba(${MASK_RGB}, 0)`);
      ctx.fillStyle = g;
    }
    ctx.fill();
  }
  private strokeTo(from: [number, number], to: [number, number], erase: boolean) {
    this.ctx.save();
    this.ctx.globalCompositeOperation = erase ? "destination-out" : "source-over";
    const dx = to[0] - from[0], dy = to[1] - from[1];
    const spacing = Math.max(0.5, this.brushSize * 0.15);
    const n = Math.max(1, Math.ceil(Math.hypot(dx, dy) / spacing));
    for (let i = 1; i <= n; ++i) this.dab(from[0] + (dx * i) / n, from[1] + (dy * i) / n);
    this.ctx.restore();
  }
  private snapshot() {
    this.undoStack.push(this.ctx.getImageData(0, 0, this.width, this.height));
    if (this.undoStack.length > MAX_UNDO) this.undoStack.shift();
    this.redoStack = [];
  }
  undo() {
    const s = this.undoStack.pop();
    if (!s) return;
    this.redoStack.push(this.ctx.getImageData(0, 0, this.width, this.height));
    this.ctx.putImageData(s, 0, 0);
  }
  redo() {
    const s = this.redoStack.pop();
    if (!s) return;
    this.undoStack.push(this.ctx.getImageData(0, 0, this.width, this.height));
    this.ctx.putImageData(s, 0, 0);
  }
  invert() {
    this.snapshot();
    const d = this.ctx.getImageData(0, 0, this.width, this.height);
    const [r, g, b] = MASK_RGB.split(",").map(Number);
    for (let i = 0; i < d.data.length; i += 4) {
      d.data[i] = r; d.data[i + 1] = g; d.data[i + 2] = b; d.data[i + 3] = 255 - d.data[i + 3];
    }
    this.ctx.putImageData(d, 0, 0);
  }
  clear() {
    this.snapshot();
    this.ctx.clearRect(0, 0, this.width, this.height);
  }

  // The PNG that /upload/mask takes: black, alpha 255 - mask (transparent where masked).
  maskPng(): Promise<Blob> {
    const out = document.createElement("canvas");
    out.width = this.width;
    out.height = this.height;
    const octx = out.getContext("2d")!;
    const m = this.ctx.getImageData(0, 0, this.width, this.height);
    const d = octx.createImageData(this.width, this.height);
    for (let i = 0; i < d.data.length; i += 4) d.data[i + 3] = 255 - m.data[i + 3];
    octx.putImageData(d, 0, 0);
    return new Promise((resolve, reject) => out.toBlob((b) => (b ? resolve(b) : reject(new Error("cannot encode the mask"))), "image/png"));
  }

  async save() {
    const blob = await this.maskPng();
    const filename = `clipspace-mask-${Date.now()}.png`;
    const form = new FormData();
    form.append("image", blob, filename);
    const original: Json = { filename: this.ref.filename, subfolder: this.ref.subfolder, type: this.ref.type };
    form.append("original_ref", JSON.stringify(original));
    form.append("type", "input");
    form.append("subfolder", "clipspace");
    const res = await fetch(this.api.url("/upload/mask"), { method: "POST", body: form });
    if (!res.ok) throw new Error(`mask upload failed: ${res.status} ${await res.text()}`);
    const r = await res.json();
    const name = r.subfolder ? `${r.subfolder}/${r.name}` : r.name;
    // The upload answers 200 even when the server could not merge the mask into the original
    // (ComfyUI's does too): check that the file is there before pointing the node at it.
    const saved: ImageRef = { filename: r.name, subfolder: r.subfolder ?? "", type: r.type ?? "input" };
    const check = await fetch(this.api.viewUrl(saved), { cache: "no-store" });
    if (!check.ok) {
      const o = this.ref.subfolder ? `${this.ref.subfolder}/${this.ref.filename}` : this.ref.filename;
      throw new Error(`the server wrote no masked picture: it could not put the mask into ${o} [${this.ref.type}]`);
    }
    this.close();
    this.options.onSave(`${name} [${r.type ?? "input"}]`);
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    window.removeEventListener("keydown", this.onKey, true);
    window.removeEventListener("keyup", this.onKey, true);
    window.removeEventListener("resize", this.fit);
    this.el.remove();
  }

  // ---- input
  private setBrushSize(v: number) {
    this.brushSize = Math.min(256, Math.max(1, Math.round(v)));
    const input = this.el.querySelector<HTMLInputElement>("input[name='brush-size']")!;
    input.value = String(this.brushSize);
    this.el.querySelector("output[data-for='brush-size']")!.textContent = String(this.brushSize);
    this.updateCursorSize();
  }
  private updateCursorSize() {
    const d = this.brushSize * this.scale;
    Object.assign(this.cursor.style, { width: `${d}px`, height: `${d}px`, marginLeft: `${-d / 2}px`, marginTop: `${-d / 2}px` });
  }

  private bindControls() {
    this.el.querySelector<HTMLInputElement>("input[name='brush-size']")!.addEventListener("input", (e) =>
      this.setBrushSize(Number((e.target as HTMLInputElement).value)));
    this.el.querySelector<HTMLInputElement>("input[name='hardness']")!.addEventListener("input", (e) => {
      this.hardness = Number((e.target as HTMLInputElement).value);
      this.el.querySelector("output[data-for='hardness']")!.textContent = String(this.hardness);
    });
    this.el.querySelector<HTMLInputElement>("input[name='erase']")!.addEventListener("change", (e) => {
      this.erase = (e.target as HTMLInputElement).checked;
      this.cursor.classList.toggle("erase", this.erase);
    });
    this.el.querySelector(".comfy-mask-toolbar")!.addEventListener("click", async (e) => {
      const act = (e.target as HTMLElement).dataset?.act;
      if (act === "invert") this.invert();
      else if (act === "clear") this.clear();
      else if (act === "fit") this.fit();
      else if (act === "cancel") this.close();
      else if (act === "save") {
        const button = e.target as HTMLButtonElement;
        button.disabled = true;
        try { await this.save(); } catch (err) {
          button.disabled = false;
          this.options.onError?.(String((err as Error).message ?? err));
        }
      }
    });
  }

  private bindPointer() {
    const stage = this.stage;
    stage.addEventListener("contextmenu", (e) => e.preventDefault());
    stage.addEventListener("pointerdown", (e) => {
      if (!this.width || this.drag) return;
      e.preventDefault();
      this.el.focus();
      const pan = e.button === 1 || (e.button === 0 && this.spaceDown);
      const mode = pan ? "pan" : e.button === 2 || this.erase ? "erase" : e.button === 0 ? "paint" : undefined;
      if (!mode) return;
      stage.setPointerCapture(e.pointerId);
      if (mode === "pan") { this.drag = { mode, last: [e.clientX, e.clientY], id: e.pointerId }; return; }
      this.snapshot();
      const p = this.toPicture(e.clientX, e.clientY);
      this.drag = { mode, last: p, id: e.pointerId };
      this.strokeTo(p, p, mode === "erase");
    });
    stage.addEventListener("pointermove", (e) => {
      const r = stage.getBoundingClientRect();
      Object.assign(this.cursor.style, { left: `${e.clientX - r.left}px`, top: `${e.clientY - r.top}px`, display: "block" });
      const drag = this.drag;
      if (!drag || drag.id !== e.pointerId) return;
      if (drag.mode === "pan") {
        this.offset = [this.offset[0] + e.clientX - drag.last[0], this.offset[1] + e.clientY - drag.last[1]];
        drag.last = [e.clientX, e.clientY];
        this.applyView();
        return;
      }
      const p = this.toPicture(e.clientX, e.clientY);
      this.strokeTo(drag.last, p, drag.mode === "erase");
      drag.last = p;
    });
    const end = (e: PointerEvent) => {
      if (this.drag?.id !== e.pointerId) return;
      this.drag = undefined;
      if (stage.hasPointerCapture(e.pointerId)) stage.releasePointerCapture(e.pointerId);
    };
    stage.addEventListener("pointerup", end);
    stage.addEventListener("pointercancel", end);
    stage.addEventListener("pointerleave", () => (this.cursor.style.display = "none"));
    stage.addEventListener("wheel", (e) => {
      e.preventDefault();
      this.zoomAt(e.clientX, e.clientY, Math.pow(1.0015, -e.deltaY));
    }, { passive: false });
  }

  // Keys stay in the editor while it is open (the graph's shortcuts do not see them).
  private onKey = (e: KeyboardEvent) => {
    const inText = (e.target as HTMLElement)?.localName === "input" && (e.target as HTMLInputElement).type === "text";
    e.stopPropagation();
    if (e.type === "keyup") {
      if (e.key === " ") this.spaceDown = false;
      return;
    }
    const ctrl = e.ctrlKey || e.metaKey, key = e.key.toLowerCase();
    if (e.key === " ") { this.spaceDown = true; e.preventDefault(); }
    else if (e.key === "Escape") { e.preventDefault(); this.close(); }
    else if (inText) return;
    else if (ctrl && key === "z" && !e.shiftKey) { e.preventDefault(); this.undo(); }
    else if (ctrl && (key === "y" || (key === "z" && e.shiftKey))) { e.preventDefault(); this.redo(); }
    else if (!ctrl && e.key === "[") this.setBrushSize(this.brushSize * 0.8);
    else if (!ctrl && e.key === "]") this.setBrushSize(this.brushSize * 1.25 + 1);
  };
}

// Opens the editor on a widget value; `onSave` gets the saved picture's widget value.
export async function openMaskEditor(api: Api, value: string, options: MaskEditorOptions): Promise<MaskEditor | undefined> {
  const editor = new MaskEditor(api, value, options);
  try {
    await editor.load();
    return editor;
  } catch (e) {
    editor.close();
    options.onError?.(`mask editor: ${(e as Error).message ?? e}`);
    return undefined;
  }
}
