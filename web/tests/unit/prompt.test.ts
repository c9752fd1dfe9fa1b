// Graph -> API prompt on the UI workflow fixtures: the same prompt as comfycpp's own conversion
// (tests/fixtures/workflows/ui/*.api.json, recorded from ComfyUI's frontend), node types from a
// running comfycpp's /object_info.
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WorkflowError, widgetLayout, workflowToPrompt } from "../../src/prompt";
// @ts-ignore plain ESM helper
import { fixturesDir, startServer } from "../server.mjs";

let info: any;
let server: any;

beforeAll(async () => {
  server = await startServer();
  info = await (await fetch(`${server.url}/api/object_info`)).json();
}, 60000);
afterAll(async () => { await server?.stop(); });

const uiDir = path.join(fixturesDir(), "workflows/ui");
const cases = fs.readdirSync(uiDir).filter((f) => f.endsWith(".json") && !f.endsWith(".api.json"));

describe("workflowToPrompt", () => {
  it("has fixtures to check", () => expect(cases.length).toBeGreaterThan(3));
  for (const file of cases) {
    it(`converts ${file} as ComfyUI does`, () => {
      const workflow = JSON.parse(fs.readFileSync(path.join(uiDir, file), "utf8"));
      const expected = JSON.parse(fs.readFileSync(path.join(uiDir, file.replace(/\.json$/, ".api.json")), "utf8"));
      expect(workflowToPrompt(workflow, info)).toEqual(expected);
    });
  }

  it("matches `comfycpp convert` on the default-style workflow", async () => {
    const { execFileSync } = await import("node:child_process");
    const { comfycppBinary } = await import("../server.mjs" as any);
    const file = path.join(uiDir, "basic_v04.json");
    const cli = JSON.parse(execFileSync(comfycppBinary(), ["convert", file, "--to", "api", "--base-directory", server.base]).toString());
    expect(workflowToPrompt(JSON.parse(fs.readFileSync(file, "utf8")), info)).toEqual(cli);
  });

  it("names the node of a dangling link", () => {
    const workflow = JSON.parse(fs.readFileSync(path.join(uiDir, "basic_v04.json"), "utf8"));
    const target = workflow.nodes.find((n: any) => (n.inputs ?? []).some((i: any) => i.link != null));
    const input = target.inputs.find((i: any) => i.link != null);
    input.link = 9999;
    let err: unknown;
    try { workflowToPrompt(workflow, info); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(WorkflowError);
    expect((err as WorkflowError).nodeId).toBe(String(target.id));
    expect((err as Error).message).toContain("link 9999 does not exist");
  });

  it("drops muted nodes and routes through bypassed ones", () => {
    const load = () => JSON.parse(fs.readFileSync(path.join(uiDir, "basic_v04.json"), "utf8"));
    const before = workflowToPrompt(load(), info);
    expect(before["3"].inputs.images).toEqual(["2", 0]);
    const muted = load();
    muted.nodes.find((n: any) => n.type === "ImageInvert").mode = 2;
    const m = workflowToPrompt(muted, info);
    expect(m["2"]).toBeUndefined();
    expect(m["3"].inputs.images).toBeUndefined();
    const bypassed = load();
    bypassed.nodes.find((n: any) => n.type === "ImageInvert").mode = 4;
    const b = workflowToPrompt(bypassed, info);
    expect(b["2"]).toBeUndefined();
    expect(b["3"].inputs.images).toEqual(["1", 0]);
  });
});

describe("widgetLayout", () => {
  it("gives KSampler's seed a control_after_generate and LoadImage an upload button", () => {
    const names = widgetLayout(info.KSampler).map((w) => w.name);
    expect(names.slice(0, 3)).toEqual(["seed", "control_after_generate", "steps"]);
    const load = widgetLayout(info.LoadImage).map((w) => w.name);
    expect(load).toEqual(["image", "upload"]);
  });
});
