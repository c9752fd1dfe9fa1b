// ComfyUI's text-encoding nodes of nodes.py: CLIPTextEncode and CLIPSetLastLayer. A CLIP value is
// a shared ClipModel (models/clip_model.h); CONDITIONING is models/conditioning.h.
#include "graph/execution_context.h"
#include "models/clip_model.h"
#include "models/conditioning.h"
#include "nodes/all.h"
#include "nodes/torch_errors.h"

namespace comfy {
namespace {

NodeDef CLIPTextEncode() {
  return NodeDef("CLIPTextEncode")
      .display_name("CLIP Text Encode (Prompt)")
      .category("conditioning")
      .description(
          "Encodes a text prompt using a CLIP model into an embedding that can be used to guide the diffusion model "
          "towards generating specific images.")
      .input("text", "STRING", {{"multiline", true}, {"dynamicPrompts", true}, {"tooltip", "The text to be encoded."}})
      .input("clip", "CLIP", {{"tooltip", "The CLIP model used for encoding the text."}})
      .output("CONDITIONING", std::nullopt,
              "A conditioning containing the embedded text used to guide the diffusion model.")
      .run([](ExecutionContext&, const NodeInputs& in) {
        if (in["clip"].is_none())
          throw ComfyError("RuntimeError",
                           "ERROR: clip input is invalid: None\n\nIf the clip is from a checkpoint loader node your "
                           "checkpoint does not contain a valid clip or text encoder model.");
        const ClipModel& clip = clip_of(in["clip"]);
        // encode_from_tokens_scheduled without hooks: one entry {cond, pooled_output}.
        ClipEncoding e = torch_guarded([&] { return clip.encode_from_tokens(clip.tokenize(in.get_string("text"))); });
        Conditioning c;
        CondEntry entry;
        entry.cond = e.cond;
        entry.options.pooled_output = e.pooled;
        c.entries.push_back(std::move(entry));
        return NodeOutput({conditioning_value(std::move(c))});
      });
}

NodeDef CLIPSetLastLayer() {
  return NodeDef("CLIPSetLastLayer")
      .display_name("CLIP Set Last Layer")
      .category("conditioning")
      .input("clip", "CLIP")
      .input("stop_at_clip_layer", "INT", {{"default", -1}, {"min", -24}, {"max", -1}, {"step", 1}})
      .output("CLIP")
      .run([](ExecutionContext&, const NodeInputs& in) {
        const ClipModel& clip = clip_of(in["clip"]);
        const int64_t layer = in.get_int("stop_at_clip_layer");
        return NodeOutput({Value(std::shared_ptr<const Object>(clip.with_layer_idx(static_cast<int>(layer))))});
      });
}

}  // namespace

void register_clip(Registry& r) {
  r.add(CLIPTextEncode());
  r.add(CLIPSetLastLayer());
}

}  // namespace comfy
