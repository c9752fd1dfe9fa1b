// comfy-ui-client: getImages (POST /prompt, wait for `executing` node=null, /history/{id}, /view),
// saveImages to disk, then uploadImage and a LoadImage workflow on the uploaded file.
// Usage: node comfy_ui_client.mjs PATH/TO/comfycpp
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { ComfyUIClient } from "comfy-ui-client";
import { assert, checkPng, failingWorkflows, firstPixel, invertWorkflow, runTest, txt2imgWorkflow } from "./harness.mjs";

async function onlyImage(client, workflow, node) {
  const images = await client.getImages(workflow);
  assert(images[node]?.length === 1, `one image of node ${node} expected, got ${JSON.stringify(Object.keys(images))}`);
  return { bytes: Buffer.from(await images[node][0].blob.arrayBuffer()), images };
}

await runTest("comfy_ui_client", async (server) => {
  const client = new ComfyUIClient(server.host, crypto.randomUUID());
  await client.connect();
  try {
    const t2i = await onlyImage(client, txt2imgWorkflow("kaynine_t2i"), "9");
    checkPng(t2i.bytes, 64, 64, "txt2img");
    const saved = path.join(server.baseDir, "saved");
    fs.mkdirSync(saved);
    await client.saveImages(t2i.images, saved);
    const files = fs.readdirSync(saved);
    assert(files.length === 1, `saveImages wrote ${files}`);
    checkPng(fs.readFileSync(path.join(saved, files[0])), 64, 64, "saved txt2img");

    const inv = await onlyImage(client, invertWorkflow("kaynine_invert"), "3");
    checkPng(inv.bytes, 40, 24, "invert");
    assert((await firstPixel(inv.bytes)).every((v) => v === 255), "inverted black should be white");

    // Upload the generated picture, then load it, invert it and save it.
    const up = await client.uploadImage(t2i.bytes, "from_client.png");
    assert(up.name === "from_client.png" && up.type === "input", `uploadImage: ${JSON.stringify(up)}`);
    const loaded = await onlyImage(
      client,
      {
        "1": { class_type: "LoadImage", inputs: { image: up.name } },
        "2": { class_type: "ImageInvert", inputs: { image: ["1", 0] } },
        "3": { class_type: "SaveImage", inputs: { filename_prefix: "kaynine_loaded", images: ["2", 0] } },
      },
      "3",
    );
    checkPng(loaded.bytes, 64, 64, "loaded and inverted");

    // A validation error rejects with the server's JSON; an execution error ends the wait
    // (`executing` node=null is sent for failures too) with no images.
    const { invalid, broken } = failingWorkflows(server);
    const error = await client.getImages(invalid).then(() => null, (e) => e);
    assert(error && JSON.parse(error.message).node_errors?.["4"], `validation error: ${error}`);
    if (!server.external) {
      const none = await client.getImages(broken);
      assert(Object.keys(none).length === 0, `a failed prompt has no images: ${JSON.stringify(none)}`);
    }

    const stats = await client.getSystemStats();
    assert(Array.isArray(stats.devices) && stats.devices.length > 0, `getSystemStats: ${JSON.stringify(stats)}`);
    const info = await client.getObjectInfo("ImageInvert");
    assert(info.ImageInvert?.output?.[0] === "IMAGE", `getObjectInfo: ${JSON.stringify(info)}`);
    const queue = await client.getQueue();
    assert(queue.queue_running.length === 0 && queue.queue_pending.length === 0, `getQueue: ${JSON.stringify(queue)}`);
  } finally {
    await client.disconnect();
  }
});
