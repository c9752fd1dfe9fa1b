// Graph -> API prompt, as ComfyUI's graphToPrompt does it, on the saved workflow JSON (what
// graph.serialize() gives): the same rules as src/graph/ui_workflow.cpp, so the browser and
// `comfycpp convert` produce the same prompt. Subgraph instances expand into their inner nodes
// (ids joined with ':'), inputs resolve through reroutes, bypassed nodes and subgraph borders,
// and nodes that do not run (virtual, muted, bypassed) are left out with inputs pointing at them.
import type { NodeDef, ObjectInfo } from "./api";

export type Json = any;
export type ApiPrompt = Record<string, { inputs: Record<string, Json>; class_type: string; _meta: { title: string } }>;

const SUBGRAPH_INPUT = "-10";
const SUBGRAPH_OUTPUT = "-20";
export const MODE_NEVER = 2;
export const MODE_BYPASS = 4;
export const VIRTUAL_TYPES = new Set(["Reroute", "PrimitiveNode", "Note", "MarkdownNote"]);
const WIDGET_TYPES = new Set(["INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"]);
const UPLOAD_KEYS = ["image_upload", "video_upload", "audio_upload", "animated_image_upload"];

export class WorkflowError extends Error {
  constructor(message: string, public nodeId?: string) {
    super(message);
  }
}

// One input of an object_info definition, normalized.
export interface InputSpec {
  name: string;
  type: string; // INT, FLOAT, STRING, BOOLEAN, COMBO, or a socket type (MODEL, IMAGE, ...)
  options: Record<string, Json>;
  values?: string[]; // COMBO choices
  optional: boolean;
}

export function inputSpecs(def: NodeDef): InputSpec[] {
  const out: InputSpec[] = [];
  for (const group of ["required", "optional"] as const) {
    const inputs = def.input?.[group] ?? {};
    const order: string[] = def.input_order?.[group] ?? Object.keys(inputs);
    for (const name of order) {
      const spec = inputs[name];
      if (!spec) continue;
      const [t, opts] = spec as [Json, Json];
      const options = (opts && typeof opts === "object" ? opts : {}) as Record<string, Json>;
      if (Array.isArray(t)) out.push({ name, type: "COMBO", options, values: t.map(String), optional: group === "optional" });
      else if (t === "COMBO")
        out.push({ name, type: "COMBO", options, values: (options.options ?? []).map(String), optional: group === "optional" });
      else out.push({ name, type: String(t), options, optional: group === "optional" });
    }
  }
  return out;
}

export const isWidgetType = (t: string) => WIDGET_TYPES.has(t);
export const isUploadCombo = (s: InputSpec) => s.type === "COMBO" && UPLOAD_KEYS.some((k) => s.options[k] === true);

export function defaultFor(s: InputSpec): Json {
  if ("default" in s.options) return s.options.default;
  if (s.type === "COMBO") return s.values?.[0] ?? null;
  if (s.type === "INT" || s.type === "FLOAT") return 0;
  if (s.type === "BOOLEAN") return false;
  return "";
}

// The control_after_generate a widget gets: the declared one, or "randomize" for INT seed/noise_seed.
export function controlFor(s: InputSpec): string | null {
  if (s.type !== "INT" && s.type !== "COMBO") return null;
  const declared = s.options.control_after_generate;
  const wanted = declared === undefined || declared === null
    ? s.type === "INT" && (s.name === "seed" || s.name === "noise_seed")
    : typeof declared === "string" || declared === true;
  if (!wanted) return null;
  return typeof declared === "string" ? declared : "randomize";
}

export interface WidgetSlot {
  name: string;
  type: string; // INT FLOAT STRING BOOLEAN COMBO CONTROL UPLOAD
  serialize: boolean; // queued in the prompt
  defaultValue: Json;
  forceInput: boolean;
  spec?: InputSpec;
}

// The widgets the UI gives a node, in widgets_values order.
export function widgetLayout(def: NodeDef): WidgetSlot[] {
  const out: WidgetSlot[] = [];
  const specs = inputSpecs(def);
  const add = (s: InputSpec) => {
    if (!WIDGET_TYPES.has(s.type)) return;
    const force = s.options.forceInput === true;
    out.push({ name: s.name, type: s.type, serialize: true, defaultValue: defaultFor(s), forceInput: force, spec: s });
    if (force) return;
    const control = controlFor(s);
    if (control) out.push({ name: "control_after_generate", type: "CONTROL", serialize: false, defaultValue: control, forceInput: false });
  };
  const required = specs.filter((s) => !s.optional);
  required.forEach(add);
  if (required.some(isUploadCombo)) out.push({ name: "upload", type: "UPLOAD", serialize: false, defaultValue: "image", forceInput: false });
  specs.filter((s) => s.optional).forEach(add);
  return out;
}

function fits(w: WidgetSlot, v: Json): boolean {
  if (w.type === "INT" || w.type === "FLOAT") return typeof v === "number" || v === null;
  if (w.type === "BOOLEAN") return typeof v === "boolean";
  if (w.type === "STRING") return typeof v === "string";
  if (w.type === "CONTROL") return v === null || ["fixed", "increment", "decrement", "randomize"].includes(v);
  if (w.type === "COMBO") return v === null || typeof v !== "object" || Array.isArray(v);
  return true;
}

// widgets_values -> {input name: value} for the queued widgets.
export function widgetValues(def: NodeDef, values: Json, nodeId: string): Record<string, Json> {
  const all = widgetLayout(def);
  const layout = all.filter((w) => !w.forceInput);
  const out: Record<string, Json> = {};
  const err = (why: string) =>
    new WorkflowError(`node ${nodeId} (${def.name}): widgets_values do not fit its widgets [${layout.map((w) => w.name).join(", ")}]: ${why}`, nodeId);
  if (values === undefined || values === null) {
    for (const w of layout) if (w.serialize) out[w.name] = w.defaultValue;
    return out;
  }
  if (!Array.isArray(values)) {
    if (typeof values !== "object") throw err("widgets_values must be an array or an object");
    for (const w of layout) {
      if (!w.serialize) continue;
      const v = w.name in values ? values[w.name] : w.defaultValue;
      if (!fits(w, v)) throw err(`value ${JSON.stringify(v)} for ${w.name} (${w.type}) does not fit`);
      out[w.name] = v;
    }
    return out;
  }
  const slots = values.length === all.length && all.length !== layout.length ? all : layout;
  if (values.length > slots.length) throw err(`${values.length} values for ${slots.length} widgets`);
  slots.forEach((w, i) => {
    const v = i < values.length ? values[i] : w.defaultValue;
    if (!fits(w, v)) throw err(`value ${JSON.stringify(v)} at position ${i} does not fit widget ${w.name} (${w.type})`);
    if (w.serialize && !w.forceInput) out[w.name] = v;
  });
  return out;
}

interface Link { origin: string; target: string; originSlot: number; targetSlot: number; type: string }
interface Level { nodes: Map<string, Json>; order: Json[]; links: Map<number, Link> }
interface Dto {
  id: string; path: string[]; node: Json; level: Level; instance?: Dto; subgraph?: Level;
  mode: number; widgets: Record<string, Json>; promoted: Record<string, Json>;
}
interface Resolved { originId: string; originSlot: number; widgetValue?: Json; hasValue: boolean }

const idString = (id: Json): string => {
  if (typeof id === "string") return id;
  if (typeof id === "number") return String(Math.trunc(id));
  throw new WorkflowError(`node id ${JSON.stringify(id)} is not a number or a string`);
};
const asInt = (v: Json, what: string): number => {
  const n = typeof v === "number" ? Math.trunc(v) : typeof v === "string" ? parseInt(v, 10) : NaN;
  if (Number.isNaN(n)) throw new WorkflowError(`${what} must be a number, got ${JSON.stringify(v)}`);
  return n;
};
const typeString = (t: Json) => (typeof t === "string" ? t : typeof t === "number" ? String(t) : "*");

function readLevel(graph: Json): Level {
  if (!graph || !Array.isArray(graph.nodes)) throw new WorkflowError('workflow has no "nodes" array');
  const level: Level = { nodes: new Map(), order: [], links: new Map() };
  for (const n of graph.nodes) {
    if (!n || typeof n !== "object" || n.id === undefined || typeof n.type !== "string")
      throw new WorkflowError('every node needs an "id" and a "type"');
    const id = idString(n.id);
    if (level.nodes.has(id)) throw new WorkflowError(`two nodes have the id ${id}`, id);
    level.nodes.set(id, n);
    level.order.push(n);
  }
  for (const l of graph.links ?? []) {
    if (l === null) continue;
    if (Array.isArray(l)) {
      if (l.length < 5) throw new WorkflowError(`link ${JSON.stringify(l)} has fewer than 5 fields`);
      level.links.set(asInt(l[0], "link id"), {
        origin: idString(l[1]), target: idString(l[3]), originSlot: asInt(l[2], "link origin_slot"),
        targetSlot: asInt(l[4], "link target_slot"), type: l.length > 5 ? typeString(l[5]) : "*",
      });
    } else if (typeof l === "object") {
      level.links.set(asInt(l.id, "link id"), {
        origin: idString(l.origin_id), target: idString(l.target_id), originSlot: asInt(l.origin_slot, "link origin_slot"),
        targetSlot: asInt(l.target_slot, "link target_slot"), type: typeString(l.type ?? "*"),
      });
    } else throw new WorkflowError(`link ${JSON.stringify(l)} is neither an array nor an object`);
  }
  return level;
}

function validConnection(a: string, b: string): boolean {
  if (!a || a === "*" || !b || b === "*" || a === b) return true;
  const xs = a.toLowerCase().split(","), ys = b.toLowerCase().split(",");
  return xs.some((x) => ys.includes(x));
}

function topological(level: Level): Json[] {
  const nodes = [...level.order].sort((a, b) => (typeof a.order === "number" ? a.order : 0) - (typeof b.order === "number" ? b.order : 0));
  const pending = new Map<string, number>(), consumers = new Map<string, string[]>();
  for (const link of level.links.values()) {
    if (!level.nodes.has(link.origin) || !level.nodes.has(link.target)) continue;
    pending.set(link.target, (pending.get(link.target) ?? 0) + 1);
    consumers.set(link.origin, [...(consumers.get(link.origin) ?? []), link.target]);
  }
  const out: Json[] = [], done = new Set<string>();
  while (out.length < nodes.length) {
    const next = nodes.find((n) => !done.has(idString(n.id)) && !(pending.get(idString(n.id)) ?? 0));
    if (!next) { // a cycle: keep the saved order for the rest
      for (const n of nodes) if (!done.has(idString(n.id))) { done.add(idString(n.id)); out.push(n); }
      break;
    }
    const id = idString(next.id);
    done.add(id);
    out.push(next);
    for (const c of consumers.get(id) ?? []) pending.set(c, (pending.get(c) ?? 0) - 1);
  }
  return out;
}

class Converter {
  private root: Level;
  private definitions = new Map<string, Level>();
  private dtos = new Map<string, Dto>();
  private order: Dto[] = [];

  constructor(workflow: Json, private info: ObjectInfo) {
    if (!workflow || typeof workflow !== "object") throw new WorkflowError("a UI workflow must be a JSON object");
    this.root = readLevel(workflow);
    this.collect(workflow);
    this.addLevel(this.root, [], undefined, 0);
  }

  private collect(graph: Json) {
    for (const sg of graph?.definitions?.subgraphs ?? []) {
      if (typeof sg?.id !== "string") throw new WorkflowError('a subgraph definition has no "id"');
      this.definitions.set(sg.id, readLevel(sg));
      this.collect(sg);
    }
  }

  private addLevel(level: Level, path: string[], instance: Dto | undefined, depth: number) {
    if (depth > 32) throw new WorkflowError("subgraphs nest deeper than 32 levels");
    for (const n of topological(level)) {
      const own = idString(n.id);
      const dto: Dto = {
        id: path.length ? `${path.join(":")}:${own}` : own, path, node: n, level, instance,
        mode: typeof n.mode === "number" ? n.mode : 0, widgets: {}, promoted: {},
      };
      if (instance && (instance.mode === MODE_NEVER || instance.mode === MODE_BYPASS)) dto.mode = instance.mode;
      this.dtos.set(dto.id, dto);
      this.order.push(dto);
      const def = this.definitions.get(n.type);
      if (def) {
        dto.subgraph = def;
        this.promote(dto);
        this.addLevel(def, [...path, own], dto, depth + 1);
      } else if (!VIRTUAL_TYPES.has(n.type) && dto.mode !== MODE_NEVER && dto.mode !== MODE_BYPASS) {
        const nd = this.info[n.type];
        if (!nd) throw new WorkflowError(`node ${dto.id}: unknown node type ${n.type}`, dto.id);
        dto.widgets = widgetValues(nd, n.widgets_values, dto.id);
      }
    }
  }

  private promote(dto: Dto) {
    const values = dto.node.widgets_values;
    let k = 0;
    for (const input of dto.node.inputs ?? []) {
      if (!input?.widget) continue;
      if (Array.isArray(values) && k < values.length) dto.promoted[input.name] = values[k];
      else if (values && typeof values === "object" && input.name in values) dto.promoted[input.name] = values[input.name];
      ++k;
    }
  }

  private dtoAt(path: string[], own: string): Dto {
    const id = path.length ? `${path.join(":")}:${own}` : own;
    const d = this.dtos.get(id);
    if (!d) throw new WorkflowError(`no node ${id} in the workflow`, id);
    return d;
  }

  private dangling(dto: Dto, slot: number, why: string) {
    const name = dto.node.inputs?.[slot]?.name ?? String(slot);
    return new WorkflowError(`node ${dto.id} (${dto.node.type}) input ${name}: ${why}`, dto.id);
  }

  resolveInput(dto: Dto, slot: number, visited: Set<string>, type?: string): Resolved | null {
    const key = `${dto.id}[I]${slot}`;
    if (visited.has(key)) throw new WorkflowError(`circular reference while resolving input ${slot} of node ${dto.id}`, dto.id);
    visited.add(key);
    const input = dto.node.inputs?.[slot];
    if (!input || typeof input !== "object") throw this.dangling(dto, slot, "no such input slot");
    if (input.link === undefined || input.link === null) return null;
    const linkId = asInt(input.link, "input link");
    const link = dto.level.links.get(linkId);
    if (!link) throw this.dangling(dto, slot, `link ${linkId} does not exist`);
    const want = type ?? typeString(input.type ?? "*");
    if (dto.instance && link.origin === SUBGRAPH_INPUT) {
      const outer = dto.instance;
      const outerInput = outer.node.inputs?.[link.originSlot];
      if (!outerInput) throw this.dangling(dto, slot, `subgraph input ${link.originSlot} is missing on node ${outer.id}`);
      if (outerInput.link === undefined || outerInput.link === null) {
        if (outerInput.name in outer.promoted) return { originId: outer.id, originSlot: -1, widgetValue: outer.promoted[outerInput.name], hasValue: true };
        return null;
      }
      return this.resolveInput(outer, link.originSlot, visited);
    }
    if (!dto.level.nodes.has(link.origin))
      throw this.dangling(dto, slot, `link ${linkId} comes from node ${link.origin}, which does not exist`);
    return this.resolveOutput(this.dtoAt(dto.path, link.origin), link.originSlot, want, visited);
  }

  private resolveOutput(dto: Dto, slot: number, type: string, visited: Set<string>): Resolved | null {
    const key = `${dto.id}[O]${slot}`;
    if (visited.has(key)) throw new WorkflowError(`circular reference while resolving output ${slot} of node ${dto.id}`, dto.id);
    visited.add(key);
    if (dto.mode === MODE_BYPASS) {
      const index = this.bypassSlot(dto, slot, type);
      return index < 0 ? null : this.resolveInput(dto, index, visited);
    }
    if (dto.subgraph) {
      if (dto.mode === MODE_NEVER) return { originId: dto.id, originSlot: slot, hasValue: false };
      let inner: Link | undefined;
      for (const l of dto.subgraph.links.values()) if (l.target === SUBGRAPH_OUTPUT && l.targetSlot === slot) inner = l;
      if (!inner) return null;
      if (inner.origin === SUBGRAPH_INPUT) return this.resolveInput(dto, inner.originSlot, visited, type);
      if (!dto.subgraph.nodes.has(inner.origin))
        throw new WorkflowError(`subgraph ${dto.node.type} output ${slot} comes from node ${inner.origin}, which does not exist`, dto.id);
      return this.resolveOutput(this.dtoAt([...dto.path, idString(dto.node.id)], inner.origin), inner.originSlot, type, visited);
    }
    if (VIRTUAL_TYPES.has(dto.node.type)) {
      if (slot < (dto.node.inputs ?? []).length) return this.resolveInput(dto, slot, visited, type);
      return null;
    }
    return { originId: dto.id, originSlot: slot, hasValue: false };
  }

  private bypassSlot(dto: Dto, slot: number, type: string): number {
    const inputs = dto.node.inputs ?? [], outputs = dto.node.outputs ?? [];
    const n = inputs.length;
    if (type === "*" || !type) return n > slot ? slot : 0;
    const outType = typeString(outputs[slot]?.type ?? "*");
    const inType = (i: number) => typeString(inputs[i]?.type ?? "*");
    if (slot < n && validConnection(inType(slot), outType) && validConnection(inType(slot), type)) return slot;
    for (let i = 0; i < n; ++i) if (inType(i) === type) return i;
    for (let i = 0; i < n; ++i) if (validConnection(inType(i), outType) && validConnection(inType(i), type)) return i;
    return -1;
  }

  private applyPrimitives() {
    for (const dto of this.order) {
      if (dto.node.type !== "PrimitiveNode") continue;
      const values = dto.node.widgets_values;
      if (!Array.isArray(values) || !values.length) continue;
      this.applyTo(dto, values[0], new Set());
    }
  }

  private applyTo(source: Dto, value: Json, seen: Set<string>) {
    if (seen.has(source.id)) return;
    seen.add(source.id);
    for (const l of source.node.outputs?.[0]?.links ?? []) {
      if (l === null) continue;
      const link = source.level.links.get(asInt(l, "output link"));
      if (!link || !source.level.nodes.has(link.target)) continue;
      const target = this.dtoAt(source.path, link.target);
      if (target.node.type === "Reroute") { this.applyTo(target, value, seen); continue; }
      const input = target.node.inputs?.[link.targetSlot];
      const widget = input?.widget?.name;
      if (!widget) continue;
      if (target.subgraph) target.promoted[input.name] = value;
      else if (widget in target.widgets) target.widgets[widget] = value;
    }
  }

  convert(): ApiPrompt {
    this.applyPrimitives();
    const output: ApiPrompt = {};
    const wrap = (v: Json) => (Array.isArray(v) ? { __value__: v } : v);
    for (const dto of this.order) {
      const type: string = dto.node.type;
      if (dto.subgraph || VIRTUAL_TYPES.has(type) || dto.mode === MODE_NEVER || dto.mode === MODE_BYPASS) continue;
      const inputs: Record<string, Json> = {};
      for (const [name, value] of Object.entries(dto.widgets)) inputs[name] = wrap(value);
      (dto.node.inputs ?? []).forEach((input: Json, i: number) => {
        const r = this.resolveInput(dto, i, new Set());
        if (!r) return;
        inputs[input.name ?? ""] = r.hasValue ? wrap(r.widgetValue) : [r.originId, r.originSlot];
      });
      const title = typeof dto.node.title === "string" ? dto.node.title : this.info[type]?.display_name ?? type;
      output[dto.id] = { inputs, class_type: type, _meta: { title } };
    }
    for (const entry of Object.values(output))
      for (const [name, v] of Object.entries(entry.inputs))
        if (Array.isArray(v) && v.length === 2 && typeof v[0] === "string" && !(v[0] in output)) delete entry.inputs[name];
    return output;
  }
}

export function isUiWorkflow(doc: Json): boolean {
  return !!doc && typeof doc === "object" && Array.isArray(doc.nodes);
}

export function workflowToPrompt(workflow: Json, info: ObjectInfo): ApiPrompt {
  return new Converter(workflow, info).convert();
}
