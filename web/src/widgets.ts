// Node types from /object_info: one litegraph class per node, its widgets (numbers with
// min/max/step/round, combos, single- and multi-line text, toggles, image upload with preview,
// control_after_generate), a socket for every input and every widget (a widget whose socket is
// linked is disabled, ComfyUI's widget-to-input conversion), output images and error marks.
import { LGraphCanvas, LGraphNode, LiteGraph } from "@comfyorg/litegraph";
import type { Api, NodeDef, ObjectInfo } from "./api";
import { imageRefOf, openMaskEditor } from "./mask_editor";
import { type InputSpec, type Json, isUploadCombo, isWidgetType, widgetLayout } from "./prompt";

export interface NodeError { message: string; input?: string }

// Per-node UI state the canvas draws: output/preview images and errors.
export interface ComfyNode extends LGraphNode {
  comfyClass: string;
  imgs?: HTMLImageElement[];
  errors?: NodeError[];
  progress?: number; // 0..1 while running
  imageWidget?: Json; // the combo an image upload fills (LoadImage's "image")
  maskButton?: [number, number, number, number]; // the preview's mask-editor button, node coordinates
}

// Errors that happen off the queue path (mask editor, uploads); main.ts shows them as toasts.
let reportError = (message: string) => console.error(message);
export function setErrorReporter(fn: (message: string) => void) { reportError = fn; }

const CONTROL_VALUES = ["fixed", "increment", "decrement", "randomize"];

function roundTo(v: number, spec: InputSpec): number {
  const o = spec.options;
  let x = Number(v);
  if (Number.isNaN(x)) x = Number(o.default ?? 0);
  if (spec.type === "INT") {
    const step = Number(o.step ?? 1) || 1;
    const base = Number(o.min ?? 0);
    x = Math.round((x - base) / step) * step + base;
  } else {
    const r = o.round === false ? 0 : Number(o.round ?? o.step ?? 0);
    if (r > 0) x = Math.round(x / r) * r;
    x = Number(x.toFixed(10));
  }
  if (typeof o.min === "number") x = Math.max(o.min, x);
  if (typeof o.max === "number") x = Math.min(o.max, x);
  return x;
}

// Multi-line text: a <textarea> laid over the canvas where the widget is drawn.
const textareas = new Set<{ el: HTMLTextAreaElement; drawn: boolean }>();
let overlayCanvas: HTMLCanvasElement | undefined;

export function trackCanvas(canvas: LGraphCanvas) {
  overlayCanvas = canvas.canvas;
  const draw = canvas.draw.bind(canvas);
  canvas.draw = (fg?: boolean, bg?: boolean) => {
    // Only a redraw of the nodes tells which text areas are on screen.
    const nodesDrawn = !!fg || (canvas as Json).dirty_canvas;
    if (nodesDrawn) textareas.forEach((t) => (t.drawn = false));
    draw(fg, bg);
    if (nodesDrawn) textareas.forEach((t) => { if (!t.drawn) t.el.style.display = "none"; });
  };
}

export function addMultiline(node: ComfyNode, name: string, value: string) {
  const el = document.createElement("textarea");
  el.className = "comfy-multiline";
  el.placeholder = name;
  el.value = value;
  el.dataset.widget = name;
  document.body.appendChild(el);
  const entry = { el, drawn: false };
  textareas.add(entry);
  const widget: Json = {
    type: "customtext", name, value, y: 0, options: {},
    draw(ctx: CanvasRenderingContext2D, _node: LGraphNode, width: number, y: number) {
      if (!overlayCanvas) return;
      const t = ctx.getTransform(), dpr = window.devicePixelRatio || 1, rect = overlayCanvas.getBoundingClientRect();
      const scale = t.a / dpr, margin = 10;
      if (el.value !== widget.value && document.activeElement !== el) el.value = widget.value;
      el.dataset.node = String(node.id);
      Object.assign(el.style, {
        display: "block", left: `${rect.left + (t.e / dpr) + margin * scale}px`, top: `${rect.top + (t.f / dpr) + y * scale}px`,
        width: `${(width - 2 * margin)}px`, height: `${Math.max(node.size[1] - y - 6, 40)}px`,
        transform: `scale(${scale})`, transformOrigin: "0 0",
      });
      entry.drawn = true;
    },
    computeSize(width: number) { return [width, 90]; },
  };
  el.addEventListener("input", () => { widget.value = el.value; });
  el.addEventListener("keydown", (e) => e.stopPropagation());
  node.addCustomWidget(widget);
  const removed = node.onRemoved;
  node.onRemoved = function () {
    el.remove();
    textareas.delete(entry);
    removed?.call(this);
  };
}

function loadImage(src: string): Promise<HTMLImageElement> {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = reject;
    img.src = src;
  });
}

export function setNodeImages(node: ComfyNode, urls: string[]) {
  const token = Symbol("images"); // only the latest call shows (loads finish in any order)
  (node as Json).imagesToken = token;
  Promise.all(urls.map(loadImage)).then((imgs) => {
    if ((node as Json).imagesToken !== token) return;
    node.imgs = imgs;
    const minH = widgetsBottom(node) + 220;
    if (node.size[1] < minH) node.setSize([Math.max(node.size[0], 256), minH]);
    node.setDirtyCanvas(true, true);
  }).catch(() => {});
}

function widgetsBottom(node: LGraphNode): number {
  let y = LiteGraph.NODE_SLOT_HEIGHT * Math.max(node.inputs.filter((i) => !i.widget).length, node.outputs.length) + 6;
  for (const w of node.widgets ?? []) y += (w as Json).computeSize?.(node.size[0])[1] ?? LiteGraph.NODE_WIDGET_HEIGHT + 4;
  return y + 4;
}

function buildNode(node: ComfyNode, def: NodeDef, api: Api) {
  const layout = widgetLayout(def);
  const specs = new Map(layout.filter((w) => w.spec).map((w) => [w.name, w.spec!]));
  const allSpecs: InputSpec[] = [];
  for (const group of ["required", "optional"] as const) {
    const inputs = def.input?.[group] ?? {};
    for (const name of def.input_order?.[group] ?? Object.keys(inputs)) {
      const s = specs.get(name);
      if (s) allSpecs.push(s);
      else if (inputs[name]) {
        const t = inputs[name][0];
        allSpecs.push({ name, type: Array.isArray(t) ? "COMBO" : String(t), options: inputs[name][1] ?? {}, optional: group === "optional" });
      }
    }
  }
  // Sockets first (in declaration order, forceInput ones too), then the widgets, each with its
  // own socket: the order ComfyUI's frontend gives a node's inputs.
  for (const s of allSpecs) {
    if (isWidgetType(s.type) && s.options.forceInput !== true) continue;
    node.addInput(s.name, s.type, s.optional ? ({ shape: 7 } as Json) : undefined);
  }
  let previous: Json;
  for (const slot of layout) {
    const s = slot.spec;
    const o = s?.options ?? {};
    let w: Json;
    if (slot.type === "CONTROL") {
      w = node.addWidget("combo", "control_after_generate", slot.defaultValue, null, { values: CONTROL_VALUES });
      previous.linkedControl = w;
      continue;
    }
    if (slot.type === "UPLOAD") {
      const target = node.widgets?.find((x) => { const sp = specs.get(x.name); return !!sp && isUploadCombo(sp); });
      w = node.addWidget("button", "upload", "image", () => pickAndUpload(node, target as Json, api), {});
      w.label = "choose file to upload";
      if (target && isImageUpload(specs.get(target.name))) node.imageWidget = target;
      continue;
    }
    if (slot.forceInput) continue;
    const cb = (v: Json) => { node.errors = undefined; if (s && (s.type === "INT" || s.type === "FLOAT")) w.value = roundTo(v, s); };
    if (slot.type === "INT" || slot.type === "FLOAT") {
      const step = Number(o.step ?? (slot.type === "INT" ? 1 : 0.1));
      w = node.addWidget("number", slot.name, slot.defaultValue, cb, {
        min: o.min, max: o.max, step2: step, precision: slot.type === "INT" ? 0 : Math.max(0, -Math.floor(Math.log10(Number(o.round || step || 0.01)))),
      });
    } else if (slot.type === "BOOLEAN") {
      w = node.addWidget("toggle", slot.name, slot.defaultValue, cb, { on: o.label_on ?? "true", off: o.label_off ?? "false" });
    } else if (slot.type === "COMBO") {
      w = node.addWidget("combo", slot.name, slot.defaultValue, (v: Json) => {
        cb(v);
        if (s && isUploadCombo(s)) showInputImage(node, String(v), api);
      }, { values: s?.values ?? [] });
      if (s && isUploadCombo(s) && slot.defaultValue) showInputImage(node, String(slot.defaultValue), api);
    } else if (o.multiline) {
      addMultiline(node, slot.name, String(slot.defaultValue ?? ""));
      w = node.widgets![node.widgets!.length - 1];
    } else {
      w = node.addWidget("text", slot.name, slot.defaultValue, cb, {});
    }
    if (o.tooltip) w.tooltip = o.tooltip;
    node.addInput(slot.name, slot.type === "COMBO" ? "COMBO" : slot.type, { widget: { name: slot.name }, shape: s?.optional ? 7 : undefined } as Json);
    previous = w;
  }
  def.output.forEach((t, i) => {
    const type = Array.isArray(t) ? "COMBO" : t;
    node.addOutput(def.output_name?.[i] ?? type, type, def.output_is_list?.[i] ? ({ shape: 6 } as Json) : undefined);
  });
  node.serialize_widgets = true;
  node.setSize(node.computeSize());
  if (node.widgets?.some((w) => w.type === "customtext")) node.setSize([Math.max(node.size[0], 400), Math.max(node.size[1], 200)]);
  if (def.output_node || layout.some((x) => x.type === "UPLOAD")) node.setSize([Math.max(node.size[0], 256), node.size[1] + 220]);
}

const isImageUpload = (s?: InputSpec) => !!s && s.type === "COMBO" && s.options.image_upload === true;

function showInputImage(node: ComfyNode, filename: string, api: Api) {
  if (!filename) return;
  setNodeImages(node, [api.viewUrl(imageRefOf(filename))]);
}

// The mask editor on a node's uploaded image; Save points the image widget at the masked file.
export async function openNodeMaskEditor(node: ComfyNode, api: Api) {
  const combo = node.imageWidget;
  if (!combo?.value) { reportError("no image to mask: upload one first"); return; }
  await openMaskEditor(api, String(combo.value), {
    onSave: (value) => {
      const values: string[] = combo.options.values;
      if (!values.includes(value)) values.push(value);
      combo.value = value;
      node.errors = undefined;
      showInputImage(node, value, api);
      window.dispatchEvent(new Event("change")); // an undoable, autosaved change
    },
    onError: reportError,
  });
}

// New /object_info after model files changed: every combo (on the graph's nodes, and in the
// definitions new nodes are built from) gets the server's current values; a selection that the
// server no longer lists falls back to the first value, except an uploaded image's (as ComfyUI's
// refreshComboInNodes does).
export function refreshComboValues(nodes: LGraphNode[], info: ObjectInfo, fresh: ObjectInfo): number {
  for (const [name, def] of Object.entries(fresh)) {
    const old = info[name];
    if (old) old.input = def.input;
    else info[name] = def; // a node type that did not exist at start is not registered; its def is kept
  }
  let changed = 0;
  for (const node of nodes as ComfyNode[]) {
    const def = fresh[node.comfyClass ?? node.type ?? ""];
    if (!def) continue;
    for (const w of (node.widgets ?? []) as Json[]) {
      if (w.type !== "combo" || w.name === "control_after_generate") continue;
      const spec = def.input?.required?.[w.name] ?? def.input?.optional?.[w.name];
      const values = Array.isArray(spec?.[0]) ? spec[0] : spec?.[0] === "COMBO" ? spec?.[1]?.options : undefined;
      if (!Array.isArray(values)) continue;
      // Upload combos keep the file selected (uploads to subfolders such as clipspace are not listed).
      const keep = node.imageWidget === w ? (w.options.values as string[]).filter((v) => !values.includes(v) && v === w.value) : [];
      const next = [...values, ...keep];
      if (JSON.stringify(next) !== JSON.stringify(w.options.values)) changed++;
      w.options.values = next;
      if (node.imageWidget !== w && values.length && !values.includes(w.value)) w.value = values[0];
    }
    node.setDirtyCanvas(true, true);
  }
  return changed;
}

async function pickAndUpload(node: ComfyNode, combo: Json, api: Api) {
  const input = document.createElement("input");
  input.type = "file";
  input.accept = "image/png,image/jpeg,image/webp,image/gif,image/bmp";
  input.onchange = async () => {
    const file = input.files?.[0];
    if (!file) return;
    const ref = await uploadTo(node, combo, file, api);
    if (ref) showInputImage(node, ref, api);
  };
  input.click();
}

export async function uploadTo(node: ComfyNode, combo: Json, file: File, api: Api): Promise<string | undefined> {
  if (!combo) return undefined;
  const ref = await api.uploadImage(file);
  const name = ref.subfolder ? `${ref.subfolder}/${ref.filename}` : ref.filename;
  const values: string[] = combo.options.values;
  if (!values.includes(name)) values.push(name);
  combo.value = name;
  node.setDirtyCanvas(true, true);
  return name;
}

// control_after_generate: run once after each queued prompt.
export function applyControls(nodes: LGraphNode[]) {
  for (const node of nodes) {
    for (const w of (node.widgets ?? []) as Json[]) {
      const c = w.linkedControl;
      if (!c || c.value === "fixed") continue;
      if (w.type === "combo") {
        const values: Json[] = w.options.values ?? [];
        let i = values.indexOf(w.value);
        if (c.value === "increment") i = Math.min(values.length - 1, i + 1);
        else if (c.value === "decrement") i = Math.max(0, i - 1);
        else i = Math.floor(Math.random() * values.length);
        if (values.length) w.value = values[i];
        continue;
      }
      const min = typeof w.options.min === "number" ? w.options.min : 0;
      const max = typeof w.options.max === "number" ? w.options.max : Number.MAX_SAFE_INTEGER;
      const step = w.options.step2 ?? 1;
      if (c.value === "increment") w.value = Math.min(max, w.value + step);
      else if (c.value === "decrement") w.value = Math.max(min, w.value - step);
      else if (c.value === "randomize") {
        const hi = Math.min(max, 1125899906842624), lo = Math.max(0, min);
        w.value = Math.floor(Math.random() * ((hi - lo) / step + 1)) * step + lo;
      }
    }
  }
}

function drawExtras(this: ComfyNode, ctx: CanvasRenderingContext2D) {
  if (this.flags?.collapsed) return;
  const imgs = this.imgs;
  if (imgs?.length) {
    const top = widgetsBottom(this), w = this.size[0], h = this.size[1] - top;
    if (h > 10) {
      const img = imgs[imgs.length - 1];
      const s = Math.min(w / img.naturalWidth, h / img.naturalHeight);
      const dw = img.naturalWidth * s, dh = img.naturalHeight * s;
      ctx.drawImage(img, (w - dw) / 2, top + (h - dh) / 2, dw, dh);
      if (this.imageWidget) { // "Open in MaskEditor" on the preview's corner
        const b: [number, number, number, number] = [w - 50, top + 4, 46, 20];
        this.maskButton = b;
        ctx.fillStyle = "#222c";
        ctx.strokeStyle = "#888";
        ctx.lineWidth = 1;
        ctx.beginPath();
        ctx.roundRect(b[0], b[1], b[2], b[3], 4);
        ctx.fill();
        ctx.stroke();
        ctx.fillStyle = "#ddd";
        ctx.font = "12px sans-serif";
        ctx.textAlign = "center";
        ctx.fillText("mask", b[0] + b[2] / 2, b[1] + 14);
        ctx.textAlign = "left";
      }
    }
  }
  if (this.progress !== undefined) { // the running node: a green outline and its progress bar
    ctx.strokeStyle = "#0f0";
    ctx.lineWidth = 2;
    ctx.strokeRect(-2, -LiteGraph.NODE_TITLE_HEIGHT - 2, this.size[0] + 4, this.size[1] + LiteGraph.NODE_TITLE_HEIGHT + 4);
    ctx.fillStyle = "#4a8";
    ctx.fillRect(0, -LiteGraph.NODE_TITLE_HEIGHT, this.size[0] * this.progress, 5);
  }
  if (this.errors?.length) {
    ctx.strokeStyle = "#f33";
    ctx.lineWidth = 3;
    ctx.strokeRect(-3, -LiteGraph.NODE_TITLE_HEIGHT - 3, this.size[0] + 6, this.size[1] + LiteGraph.NODE_TITLE_HEIGHT + 6);
    ctx.font = "12px sans-serif";
    ctx.fillStyle = "#f66";
    this.errors.forEach((e, i) => ctx.fillText(e.message.slice(0, 90), 0, this.size[1] + 16 + i * 15));
    for (const e of this.errors) {
      if (!e.input) continue;
      const w = (this.widgets ?? []).find((x) => x.name === e.input) as Json;
      if (w && typeof w.y === "number") {
        ctx.strokeRect(6, w.y, this.size[0] - 12, LiteGraph.NODE_WIDGET_HEIGHT);
        continue;
      }
      const slot = this.inputs.findIndex((x) => x.name === e.input);
      if (slot >= 0) {
        const p = this.getConnectionPos(true, slot);
        ctx.beginPath();
        ctx.arc(p[0] - this.pos[0], p[1] - this.pos[1], 7, 0, Math.PI * 2);
        ctx.stroke();
      }
    }
  }
}

// A click on the preview's "mask" button opens the mask editor.
function maskButtonDown(node: ComfyNode, pos: [number, number], api: Api): boolean {
  const b = node.maskButton;
  if (!b || !node.imgs?.length || !node.imageWidget) return false;
  if (pos[0] < b[0] || pos[0] > b[0] + b[2] || pos[1] < b[1] || pos[1] > b[1] + b[3]) return false;
  void openNodeMaskEditor(node, api);
  return true;
}

export function registerNodeTypes(info: ObjectInfo, api: Api) {
  for (const [name, def] of Object.entries(info)) {
    class ComfyNodeType extends LGraphNode {
      static override title = def.display_name || name;
      static comfyClass = name;
      override comfyClass = name;
      constructor(title?: string) {
        super(title ?? (def.display_name || name), name);
        buildNode(this as unknown as ComfyNode, def, api);
        // LGraphNode sets its own onMouseDown (title buttons) on the instance: chain it.
        const base = this.onMouseDown;
        this.onMouseDown = (e: Json, pos: [number, number], c: Json) => maskButtonDown(this as unknown as ComfyNode, pos, api) || !!base?.call(this, e, pos, c);
      }
      override onDrawForeground(ctx: CanvasRenderingContext2D) { drawExtras.call(this as unknown as ComfyNode, ctx); }
      // A loaded (or undone) workflow: the preview shows the image the widget names.
      override onConfigure() {
        const self = this as unknown as ComfyNode;
        if (self.imageWidget?.value) showInputImage(self, String(self.imageWidget.value), api);
      }
      override getExtraMenuOptions(): Json[] {
        const self = this as unknown as ComfyNode;
        if (!self.imageWidget) return [];
        return [{ content: "Open in MaskEditor", callback: () => void openNodeMaskEditor(self, api) }];
      }
    }
    LiteGraph.registerNodeType(name, ComfyNodeType as Json);
    (ComfyNodeType as Json).category = def.category ?? "";
    (ComfyNodeType as Json).description = def.description ?? "";
  }
}
