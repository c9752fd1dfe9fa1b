// The workflow a first start shows (ComfyUI's default text-to-image graph), built through the
// node types so its widgets always match /object_info.
import { type LGraph, type LGraphNode, LiteGraph } from "@comfyorg/litegraph";
import type { Json } from "./api";

function setWidgets(node: LGraphNode, values: Record<string, Json>) {
  for (const [name, value] of Object.entries(values)) {
    const w = node.widgets?.find((x) => x.name === name);
    if (w) w.value = value;
  }
}

export function loadDefaultWorkflow(graph: LGraph) {
  graph.clear();
  const make = (type: string, id: number, pos: [number, number], values: Record<string, Json> = {}, size?: [number, number]) => {
    const node = LiteGraph.createNode(type);
    if (!node) throw new Error(`the server has no ${type} node`);
    node.id = id;
    node.pos = pos;
    setWidgets(node, values);
    if (size) node.setSize(size);
    graph.add(node);
    return node;
  };
  const ckpt = make("CheckpointLoaderSimple", 4, [26, 474], {}, [315, 98]);
  const pos = make("CLIPTextEncode", 6, [415, 186], { text: "beautiful scenery nature glass bottle landscape, , purple galaxy bottle," }, [422, 164]);
  const neg = make("CLIPTextEncode", 7, [413, 389], { text: "text, watermark" }, [425, 180]);
  const latent = make("EmptyLatentImage", 5, [473, 609], { width: 512, height: 512, batch_size: 1 }, [315, 106]);
  const sampler = make("KSampler", 3, [863, 186], { seed: 156680208700286, steps: 20, cfg: 8, sampler_name: "euler", scheduler: "normal", denoise: 1 }, [315, 262]);
  const decode = make("VAEDecode", 8, [1209, 188], {}, [210, 46]);
  const save = make("SaveImage", 9, [1451, 189], { filename_prefix: "ComfyUI" }, [210, 270]);
  const link = (a: LGraphNode, out: string, b: LGraphNode, input: string) =>
    a.connect(a.findOutputSlot(out), b, b.findInputSlot(input));
  link(ckpt, "MODEL", sampler, "model");
  link(ckpt, "CLIP", pos, "clip");
  link(ckpt, "CLIP", neg, "clip");
  link(pos, "CONDITIONING", sampler, "positive");
  link(neg, "CONDITIONING", sampler, "negative");
  link(latent, "LATENT", sampler, "latent_image");
  link(sampler, "LATENT", decode, "samples");
  link(ckpt, "VAE", decode, "vae");
  link(decode, "IMAGE", save, "images");
}
