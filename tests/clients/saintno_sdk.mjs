// @saintno/comfyui-sdk: ComfyApi + PromptBuilder + CallWrapper run both workflows through
// comfycpp (WS events, /history, /view), then a cached rerun.
// Usage: node saintno_sdk.mjs PATH/TO/comfycpp
import { CallWrapper, ComfyApi, PromptBuilder } from "@saintno/comfyui-sdk";
import { assert, checkPng, failingWorkflows, firstPixel, invertWorkflow, runTest, txt2imgWorkflow } from "./harness.mjs";

// Runs a prompt that must fail; returns every error CallWrapper reported.
async function expectFailure(api, workflow) {
  const builder = new PromptBuilder(workflow, [], ["images"]).setOutputNode("images", "9");
  const errors = [];
  const result = await new CallWrapper(api, builder).onFailed((err) => errors.push(err)).run();
  assert(result === false, `the run should fail, got ${JSON.stringify(result)}`);
  assert(errors.length > 0, "onFailed was not called");
  return errors;
}

async function generate(api, workflow, outputNode) {
  const builder = new PromptBuilder(workflow, [], ["images"]).setOutputNode("images", outputNode);
  let failure = null;
  const steps = [];
  const result = await new CallWrapper(api, builder)
    .onProgress((p) => steps.push(`${p.value}/${p.max}`))
    .onFailed((err) => (failure = err))
    .run();
  if (!result) throw new Error(`CallWrapper.run failed: ${failure?.stack ?? failure}`);
  const images = result.images?.images;
  assert(Array.isArray(images) && images.length === 1, `one image expected, got ${JSON.stringify(result.images)}`);
  const blob = await api.getImage(images[0]);
  return { bytes: Buffer.from(await blob.arrayBuffer()), steps, promptId: result._promptId };
}

await runTest("saintno_sdk", async (server) => {
  const api = await new ComfyApi(server.url).init(5, 500).waitForReady();
  try {
    const t2i = await generate(api, txt2imgWorkflow("saintno_t2i"), "9");
    checkPng(t2i.bytes, 64, 64, "txt2img");
    assert(t2i.steps.includes("2/2"), `KSampler progress 2/2 expected, got ${t2i.steps}`);

    const inv = await generate(api, invertWorkflow("saintno_invert"), "3");
    checkPng(inv.bytes, 40, 24, "invert");
    const px = await firstPixel(inv.bytes);
    assert(px.every((v) => v === 255), `inverted black should be white, got ${px}`);

    // The same prompt again: every node cached; the client must still get its image.
    const again = await generate(api, invertWorkflow("saintno_invert"), "3");
    checkPng(again.bytes, 40, 24, "cached invert");

    // Failures come back as failures: the 400 body is JSON the client hands over as the cause.
    const { invalid, broken } = failingWorkflows(server);
    const enqueueErrors = await expectFailure(api, invalid);
    const cause = enqueueErrors.find((e) => e.name === "EnqueueFailedError")?.cause;
    assert(cause?.node_errors?.["4"]?.errors?.[0]?.type === "value_not_in_list", `EnqueueFailedError cause: ${JSON.stringify(cause)}`);
    // An execution error (the client reports it as an error event or, when the prompt is already in
    // the history as failed, as WentMissingError: both are failures, neither hangs).
    await expectFailure(api, broken);
    // And the server still runs the next prompt.
    checkPng((await generate(api, invertWorkflow("saintno_after"), "3")).bytes, 40, 24, "invert after failures");
  } finally {
    api.destroy();
  }
});
