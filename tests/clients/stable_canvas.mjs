// @stable-canvas/comfyui-client: Client.enqueue (WebSocket: resolves on `executed`) or
// Client.enqueue_polling (GET /queue until the prompt is gone, then /history), then the image URL
// the client builds (/view?filename=&subfolder=&type=).
// Usage: node stable_canvas.mjs PATH/TO/comfycpp ws|polling
import { Client } from "@stable-canvas/comfyui-client";
import WebSocket from "ws";
import { assert, checkPng, failingWorkflows, firstPixel, invertWorkflow, runTest, txt2imgWorkflow } from "./harness.mjs";

const mode = process.argv[3];
if (mode !== "ws" && mode !== "polling") {
  console.error("usage: node stable_canvas.mjs PATH/TO/comfycpp ws|polling");
  process.exit(2);
}

async function generate(client, workflow) {
  const steps = [];
  // enqueue_polling refuses a progress callback.
  const out =
    mode === "ws"
      ? await client.enqueue(workflow, { disable_random_seed: true, progress: (p) => steps.push(`${p.value}/${p.max}`) })
      : await client.enqueue_polling(workflow, { disable_random_seed: true, polling_ms: 100 });
  assert(out.images?.length === 1, `one image expected, got ${JSON.stringify(out)}`);
  const image = out.images[0];
  assert(image.type === "url", `an image URL expected, got ${JSON.stringify(image)}`);
  const res = await fetch(image.data);
  assert(res.status === 200, `GET ${image.data}: ${res.status}`);
  return { bytes: Buffer.from(await res.arrayBuffer()), steps, out };
}

// The client catches its own errors in getQueue/getHistory and logs them: count those as failures.
const logged = [];
const consoleError = console.error;
console.error = (...args) => {
  logged.push(args.map(String).join(" "));
  consoleError(...args);
};

await runTest(`stable_canvas_${mode}`, async (server) => {
  const client = new Client({ api_host: server.host, WebSocket });
  if (mode === "ws") await client.connect();
  else await client.connect({ websocket: { enabled: false }, polling: { enabled: true, interval: 200 } });
  try {
    const t2i = await generate(client, txt2imgWorkflow(`stable_${mode}_t2i`));
    checkPng(t2i.bytes, 64, 64, "txt2img");
    if (mode === "ws") assert(t2i.steps.includes("2/2"), `KSampler progress 2/2 expected, got ${t2i.steps}`);

    const inv = await generate(client, invertWorkflow(`stable_${mode}_invert`));
    checkPng(inv.bytes, 40, 24, "invert");
    const px = await firstPixel(inv.bytes);
    assert(px.every((v) => v === 255), `inverted black should be white, got ${px}`);

    // Cached rerun: the WS path resolves on the re-sent `executed` of the cached output node.
    const again = await generate(client, invertWorkflow(`stable_${mode}_invert`));
    checkPng(again.bytes, 40, 24, "cached invert");

    // Cached reruns in a row: each one finishes in a millisecond, and the client only listens for
    // its `executed` once it has parsed the POST /prompt answer (comfycpp's ResponseGate).
    if (mode === "ws") {
      for (let i = 0; i < 20; i++)
        await client.enqueue(invertWorkflow(`stable_${mode}_invert`), { disable_random_seed: true, timeout_ms: 10000 });
    }

    // Failures reject: a validation error (400 JSON body) and an execution error.
    const { invalid, broken } = failingWorkflows(server);
    for (const [what, workflow] of [["invalid", invalid], ["broken", broken]]) {
      const run = mode === "ws" ? client.enqueue(workflow, { disable_random_seed: true })
                                : client.enqueue_polling(workflow, { disable_random_seed: true, polling_ms: 100 });
      const error = await run.then(() => null, (e) => e);
      assert(error instanceof Error, `${what}: the prompt should be rejected`);
    }
    checkPng((await generate(client, invertWorkflow(`stable_${mode}_after`))).bytes, 40, 24, "invert after failures");

    // The routes the client wraps answer in the shapes it reads.
    const queue = await client.getQueue();
    assert(Array.isArray(queue.Running) && Array.isArray(queue.Pending), `getQueue: ${JSON.stringify(queue)}`);
    const history = (await client.getHistory()).History;
    const statuses = history.map((h) => h.status?.status_str).sort();
    const expected = ["error", ...Array(mode === "ws" ? 24 : 4).fill("success")];
    if (!server.external) assert(JSON.stringify(statuses) === JSON.stringify(expected), `history statuses: ${statuses}`);
    const stats = await client.getSystemStats();
    assert(stats.system?.os === "linux", `getSystemStats: ${JSON.stringify(stats)}`);
    assert(logged.length === 0, `the client logged errors: ${logged.join("\n")}`);
  } finally {
    client.close();
  }
});
