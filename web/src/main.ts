// The app: the canvas, node types from /object_info, the menu, the queue panel, WS events
// (progress, previews, outputs, errors), workflow load/save, undo/redo and shortcuts.
import "@comfyorg/litegraph/style.css";
import "./style.css";
import { LGraph, LGraphCanvas, LGraphGroup, LGraphNode, LiteGraph, SubgraphNode } from "@comfyorg/litegraph";
import { Api, type Json, type ObjectInfo } from "./api";
import { loadDefaultWorkflow } from "./default_workflow";
import { WorkflowError, isUiWorkflow, workflowToPrompt } from "./prompt";
import { QueuePanel, openViewer } from "./queue";
import { installShortcuts } from "./shortcuts";
import { type ComfyNode, type NodeError, addMultiline, applyControls, registerNodeTypes, setNodeImages, trackCanvas, uploadTo } from "./widgets";
import { refreshComboValues, setErrorReporter } from "./widgets";
import { download, readEmbedded } from "./workflow_io";
import { MissingModelsDialog } from "./missing_models";
import { ModelLibrary } from "./model_library";

const STORAGE_KEY = "comfycpp.workflow";
const api = new Api();
const graph = new LGraph();
const canvasEl = document.createElement("canvas");
canvasEl.id = "graph-canvas";
canvasEl.tabIndex = 1;
document.body.appendChild(canvasEl);
canvasEl.width = window.innerWidth * (window.devicePixelRatio || 1);
canvasEl.height = window.innerHeight * (window.devicePixelRatio || 1);
const canvas = new LGraphCanvas(canvasEl, graph);
canvas.show_info = false;
canvas.render_canvas_border = false;
trackCanvas(canvas);
let info: ObjectInfo = {};

function resize() {
  const dpr = window.devicePixelRatio || 1;
  canvasEl.width = window.innerWidth * dpr;
  canvasEl.height = window.innerHeight * dpr;
  canvasEl.style.width = `${window.innerWidth}px`;
  canvasEl.style.height = `${window.innerHeight}px`;
  canvas.ds.scale = canvas.ds.scale || 1;
  canvas.setDirty(true, true);
}
window.addEventListener("resize", resize);
canvasEl.addEventListener("pointerdown", () => canvasEl.focus());

// --- toasts
const toast = document.createElement("div");
toast.className = "comfy-toast";
document.body.appendChild(toast);
let errorShownAt = 0;
function notify(text: string, error = false) {
  // A fresh error is not replaced by news ("queued", ...) that raced it.
  if (!error && Date.now() - errorShownAt < 2000) return;
  if (error) errorShownAt = Date.now();
  toast.textContent = text;
  toast.classList.toggle("error", error);
  toast.style.display = "block";
  clearTimeout((notify as Json).t);
  (notify as Json).t = setTimeout(() => (toast.style.display = "none"), error ? 8000 : 3000);
}

// A subgraph definition becomes a node type named by its id (instances are SubgraphNodes).
graph.events.addEventListener("subgraph-created", (e: Json) => {
  const { subgraph, data } = e.detail;
  if (LiteGraph.registered_node_types[subgraph.id]) return;
  class SubgraphInstance extends SubgraphNode {
    // Values of widgets promoted from inside: kept as loaded (litegraph alone makes no widgets
    // for them), so that a saved or queued workflow still carries them.
    savedWidgets?: Json;
    constructor() { super(graph, subgraph, data); }
    override configure(info: Json) {
      this.savedWidgets = info.widgets_values;
      super.configure(info);
    }
    override serialize() {
      const o = super.serialize() as Json;
      if ((o.widgets_values === undefined || (Array.isArray(o.widgets_values) && !o.widgets_values.length)) && this.savedWidgets !== undefined)
        o.widgets_values = this.savedWidgets;
      return o;
    }
  }
  LiteGraph.registerNodeType(subgraph.id, SubgraphInstance as Json);
  (SubgraphInstance as Json).title = subgraph.name;
});

// --- state, undo/redo, autosave
const serialize = () => graph.serialize() as Json;
const stateKey = (w: Json) => JSON.stringify({ ...w, extra: { ...w.extra, ds: undefined } });
let undoStack: string[] = [], redoStack: string[] = [];
let current = "";
function checkState() {
  const w = serialize();
  const key = stateKey(w);
  localStorage.setItem(STORAGE_KEY, JSON.stringify(w));
  if (key === current) return;
  if (current) undoStack.push(current);
  if (undoStack.length > 50) undoStack.shift();
  redoStack = [];
  current = key;
}
function restore(state: string) {
  graph.configure(JSON.parse(state));
  canvas.draw(true, true); // a first draw may settle node sizes
  const w = serialize();
  current = stateKey(w); // as the graph serializes it now, so that the restore is no new change
  canvas.setDirty(true, true);
  localStorage.setItem(STORAGE_KEY, JSON.stringify(w));
}
window.addEventListener("pointerup", () => setTimeout(checkState, 0));
window.addEventListener("keyup", () => setTimeout(checkState, 0));
window.addEventListener("change", () => setTimeout(checkState, 0), true);

// --- loading
function loadWorkflow(workflow: Json) {
  graph.configure(workflow);
  const ds = workflow?.extra?.ds;
  if (ds?.offset && ds?.scale) { canvas.ds.offset = ds.offset; canvas.ds.scale = ds.scale; }
  canvas.setDirty(true, true);
  checkState();
  void missingModels.check(workflow);
}

function loadApiPrompt(prompt: Json) {
  graph.clear();
  const nodes = new Map<string, LGraphNode>();
  const depth = new Map<string, number>();
  const depthOf = (id: string, seen = new Set<string>()): number => {
    if (depth.has(id)) return depth.get(id)!;
    if (seen.has(id)) return 0;
    seen.add(id);
    let d = 0;
    for (const v of Object.values<Json>(prompt[id]?.inputs ?? {}))
      if (Array.isArray(v) && v.length === 2 && typeof v[0] === "string" && prompt[v[0]]) d = Math.max(d, depthOf(v[0], seen) + 1);
    depth.set(id, d);
    return d;
  };
  const rows = new Map<number, number>();
  for (const [id, entry] of Object.entries<Json>(prompt)) {
    const node = LiteGraph.createNode(entry.class_type);
    if (!node) throw new Error(`unknown node type ${entry.class_type}`);
    if (/^\d+$/.test(id)) node.id = Number(id);
    const col = depthOf(id), row = rows.get(col) ?? 0;
    rows.set(col, row + 1);
    node.pos = [40 + col * 380, 40 + row * 300];
    if (entry._meta?.title && entry._meta.title !== (node.constructor as Json).title) node.title = entry._meta.title;
    for (const [name, v] of Object.entries<Json>(entry.inputs ?? {})) {
      if (Array.isArray(v)) continue;
      const w = node.widgets?.find((x) => x.name === name);
      if (w) w.value = v && typeof v === "object" && "__value__" in v ? v.__value__ : v;
    }
    graph.add(node);
    nodes.set(id, node);
  }
  for (const [id, entry] of Object.entries<Json>(prompt)) {
    for (const [name, v] of Object.entries<Json>(entry.inputs ?? {})) {
      if (!Array.isArray(v) || v.length !== 2 || !nodes.has(v[0])) continue;
      const target = nodes.get(id)!, origin = nodes.get(v[0])!;
      origin.connect(v[1], target, target.findInputSlot(name));
    }
  }
  canvas.setDirty(true, true);
  checkState();
  void missingModels.check(prompt);
}

async function openFile(file: File, dropEvent?: DragEvent) {
  const bytes = new Uint8Array(await file.arrayBuffer());
  const { workflow, prompt } = readEmbedded(file.name, bytes);
  if (workflow && isUiWorkflow(workflow)) loadWorkflow(workflow);
  else if (prompt) loadApiPrompt(prompt);
  else if (dropEvent && file.type.startsWith("image/")) {
    // An image with no workflow dropped onto a node with an image upload: upload it there.
    const [x, y] = canvas.convertEventToCanvasOffset(dropEvent as Json);
    const node = graph.getNodeOnPos(x, y) as ComfyNode | null;
    const combo = node?.widgets?.find((w) => w.type === "combo" && node.widgets?.some((u) => u.name === "upload"));
    if (node && combo) { await uploadTo(node, combo, file, api); setNodeImages(node, [URL.createObjectURL(file)]); checkState(); }
    else notify(`${file.name} carries no workflow`, true);
  } else notify(`${file.name} carries no workflow`, true);
  if (workflow || prompt) notify(`loaded ${file.name}`);
}

const picker = document.createElement("input");
picker.type = "file";
picker.accept = ".json,.png,.webp,application/json,image/png,image/webp";
picker.style.display = "none";
picker.id = "comfy-file-input";
picker.addEventListener("change", () => { if (picker.files?.[0]) openFile(picker.files[0]); picker.value = ""; });
document.body.appendChild(picker);

document.addEventListener("dragover", (e) => e.preventDefault());
document.addEventListener("drop", (e) => {
  e.preventDefault();
  const file = e.dataTransfer?.files?.[0];
  if (file) openFile(file, e);
});

// --- errors on nodes
function clearErrors() {
  for (const n of graph.nodes as ComfyNode[]) n.errors = undefined;
  canvas.setDirty(true, true);
}
function nodeFor(id: Json): ComfyNode | undefined {
  const top = String(id).split(":")[0];
  return (graph.getNodeById(/^\d+$/.test(top) ? Number(top) : top) ?? undefined) as ComfyNode | undefined;
}
function markErrors(nodeErrors: Record<string, Json>) {
  for (const [id, e] of Object.entries(nodeErrors)) {
    const node = nodeFor(id);
    if (!node) continue;
    node.errors = (e.errors ?? []).map((x: Json): NodeError => ({
      message: `${x.message}${x.details ? `: ${x.details}` : ""}`, input: x.extra_info?.input_name,
    }));
  }
  canvas.setDirty(true, true);
}

// --- queueing
async function queue(front: boolean) {
  clearErrors();
  const workflow = serialize();
  let prompt: Json;
  try {
    prompt = workflowToPrompt(workflow, info);
  } catch (e) {
    if (e instanceof WorkflowError && e.nodeId) markErrors({ [e.nodeId]: { errors: [{ message: e.message }] } });
    notify(String((e as Error).message), true);
    return;
  }
  try {
    const r = await api.queuePrompt(prompt, workflow, front);
    notify(`queued #${r.number}`);
    applyControls(graph.nodes);
    canvas.setDirty(true, true);
    checkState();
  } catch (e) {
    const body = (e as Json).body;
    if (body?.node_errors) markErrors(body.node_errors);
    notify(body?.error?.message ? `${body.error.message}${body.error.details ? `: ${body.error.details}` : ""}` : String(e), true);
  }
  panel.refresh();
}

// --- menu and panel
const panel = new QueuePanel(api, {
  queue,
  load: (workflow, prompt) => {
    if (workflow && isUiWorkflow(workflow)) loadWorkflow(workflow);
    else if (prompt) loadApiPrompt(prompt);
    else notify("this output carries no workflow", true);
  },
});
setErrorReporter((m) => notify(m, true));
// "Refresh" (and `r`): model lists and other combos from a fresh /object_info.
async function refreshDefs() {
  try {
    const changed = refreshComboValues(graph.nodes, info, await api.objectInfo());
    canvas.setDirty(true, true);
    notify(changed ? `refreshed: ${changed} list${changed > 1 ? "s" : ""} changed` : "refreshed");
  } catch (e) { notify(`refresh: ${e}`, true); }
}
const menu = document.createElement("div");
menu.className = "comfy-menu";
menu.innerHTML = `<span class="comfy-title">comfy.cpp</span>
  <button data-act="open" title="Ctrl+O">Load</button>
  <button data-act="save" title="Ctrl+S">Save</button>
  <button data-act="export">Export (API)</button>
  <button data-act="default">Load default</button>
  <button data-act="refresh" title="R: reload model lists">Refresh</button>
  <button data-act="clear">Clear</button>`;
menu.appendChild(panel.el);
document.body.appendChild(menu);
// The model library (button, `m`) and the missing-models dialog (model_library.ts, missing_models.ts).
const refreshModelCombos = async () => { refreshComboValues(graph.nodes, info, await api.objectInfo()); canvas.setDirty(true, true); };
const missingModels = new MissingModelsDialog({ api, refreshCombos: refreshModelCombos, notify, graph: graph as Json, changed: checkState });
const modelLibrary = new ModelLibrary({ api, graph, canvas, info: () => info, refreshCombos: refreshModelCombos, changed: checkState, notify });
menu.addEventListener("click", (e) => { if ((e.target as HTMLElement).dataset.act === "default") void missingModels.check(serialize()); });
const save = () => download("workflow.json", serialize());
menu.addEventListener("click", (e) => {
  const act = (e.target as HTMLElement).dataset.act;
  if (act === "open") picker.click();
  else if (act === "save") save();
  else if (act === "export") {
    try { download("workflow_api.json", workflowToPrompt(serialize(), info)); } catch (err) { notify(String(err), true); }
  } else if (act === "default") { loadDefaultWorkflow(graph); checkState(); }
  else if (act === "clear") { graph.clear(); checkState(); }
  else if (act === "refresh") void refreshDefs();
});

installShortcuts({
  queue,
  save,
  open: () => picker.click(),
  refresh: () => void refreshDefs(),
  undo: () => {
    checkState(); // a change whose keyup or pointerup check is still pending
    const s = undoStack.pop();
    if (!s) return;
    redoStack.push(current);
    restore(s);
  },
  redo: () => {
    checkState();
    const s = redoStack.pop();
    if (!s) return;
    undoStack.push(current);
    restore(s);
  },
  toggleMode: (mode) => {
    const selected = Object.values(canvas.selected_nodes ?? {}) as LGraphNode[];
    const all = selected.every((n) => n.mode === mode);
    for (const n of selected) n.mode = all ? 0 : mode;
    canvas.setDirty(true, true);
    checkState();
  },
  group: () => {
    const items = [...canvas.selectedItems];
    if (!items.length) return;
    const group = new LGraphGroup("Group");
    group.resizeTo(items, 10);
    graph.add(group);
    canvas.setDirty(true, true);
    checkState();
  },
  forwardToCanvas: (e) => canvas.processKey(e),
});

// --- execution events
let runningNode: ComfyNode | undefined;
let runningPrompt: string | undefined;
function setRunning(node: ComfyNode | undefined) {
  if (runningNode) runningNode.progress = undefined;
  runningNode = node;
  if (node) node.progress = 0;
  canvas.setDirty(true, true);
}
api.on("status", (d) => {
  const n = d?.status?.exec_info?.queue_remaining ?? 0;
  panel.setStatus(`queue size: ${n}`);
  panel.refresh();
});
api.on("execution_start", (d) => { runningPrompt = d.prompt_id; clearErrors(); panel.setProgress(0, 1); panel.refresh(); });
api.on("executing", (d) => {
  if (d.node === null || d.node === undefined) { setRunning(undefined); document.title = "comfy.cpp"; panel.refresh(); return; }
  setRunning(nodeFor(d.display_node ?? d.node));
  panel.setProgress(0, 1);
});
api.on("progress", (d) => {
  const node = nodeFor(d.node) ?? runningNode;
  if (node) node.progress = d.max ? d.value / d.max : 0;
  panel.setProgress(d.value, d.max);
  document.title = `[${Math.round((100 * d.value) / Math.max(1, d.max))}%] comfy.cpp`;
  canvas.setDirty(true, true);
});
api.on("b_preview", (blob: Blob) => {
  if (runningNode) setNodeImages(runningNode, [URL.createObjectURL(blob)]);
});
api.on("executed", (d) => {
  const node = nodeFor(d.display_node ?? d.node);
  const images = d.output?.images ?? [];
  if (node && images.length) setNodeImages(node, images.map((r: Json) => api.viewUrl(r)));
  panel.refresh();
});
api.on("execution_error", (d) => {
  const node = nodeFor(d.node_id);
  if (node) node.errors = [{ message: `${d.exception_type}: ${d.exception_message}` }];
  notify(`${d.node_type ?? ""} ${d.exception_type}: ${d.exception_message}`, true);
  setRunning(undefined);
  panel.refresh();
});
api.on("execution_interrupted", () => { setRunning(undefined); notify("interrupted"); panel.refresh(); });
api.on("execution_success", () => { setRunning(undefined); void runningPrompt; panel.refresh(); });

canvasEl.addEventListener("dblclick", (e) => {
  const [x, y] = canvas.convertEventToCanvasOffset(e as Json);
  const node = graph.getNodeOnPos(x, y) as ComfyNode | null;
  if (node?.imgs?.length && y > node.pos[1] + node.size[1] - 220) openViewer(node.imgs.map((i) => i.src));
});

// The default workflow, scaled to fit left of the panel.
function loadDefault() {
  loadDefaultWorkflow(graph);
  const scale = Math.min(1, (window.innerWidth - 300) / 1700, window.innerHeight / 800);
  canvas.ds.scale = scale;
  canvas.ds.offset = [10 / scale, -130 + 40 / scale];
  canvas.setDirty(true, true);
  checkState();
  void missingModels.check(serialize());
}

// --- start
async function start() {
  resize();
  try {
    info = await api.objectInfo();
  } catch (e) {
    notify(`cannot reach the server: ${e}`, true);
    return;
  }
  registerNodeTypes(info, api);
  registerVirtualNodes();
  const saved = localStorage.getItem(STORAGE_KEY);
  let loaded = false;
  if (saved) {
    try { loadWorkflow(JSON.parse(saved)); loaded = true; } catch (e) { console.warn("stored workflow", e); }
  }
  if (!loaded) loadDefault();
  api.connect();
  panel.refresh();
  canvas.setDirty(true, true);
  (window as Json).comfyApp = { graph, canvas, api, queue, serialize, modelLibrary, missingModels, toPrompt: () => workflowToPrompt(serialize(), info), loadWorkflow,
    undoDepth: () => [undoStack.length, redoStack.length] };
  document.body.dataset.ready = "1";
}

function registerVirtualNodes() {
  class Reroute extends LGraphNode {
    static override title = "Reroute";
    override isVirtualNode = true;
    constructor(title?: string) {
      super(title ?? "Reroute");
      this.addInput("", "*");
      this.addOutput("", "*");
      this.size = [75, 26];
    }
  }
  class Note extends LGraphNode {
    static override title = "Note";
    override isVirtualNode = true;
    constructor(title?: string) {
      super(title ?? "Note");
      addMultiline(this as Json, "text", "");
      this.serialize_widgets = true;
      this.size = [400, 200];
    }
  }
  LiteGraph.registerNodeType("Reroute", Reroute as Json);
  (Reroute as Json).category = "utils";
  LiteGraph.registerNodeType("Note", Note as Json);
  (Note as Json).category = "utils";
}

start();
