// ComfyUI's comfy_extras/nodes_primitive.py: constants a workflow can wire into other inputs.
#include "nodes/all.h"

namespace comfy {
namespace {

NodeDef primitive(const char* name, const char* display, const char* type, json opts) {
  return NodeDef(name)
      .schema_v3()
      .display_name(display)
      .category("utils/primitive")
      .python_module("comfy_extras.nodes_primitive")
      .input("value", type, std::move(opts))
      .output(type)
      .run([](ExecutionContext&, const NodeInputs& in) { return NodeOutput({in["value"]}); });
}

constexpr int64_t kIntLimit = 9223372036854775807;  // sys.maxsize

NodeDef PrimitiveString() { return primitive("PrimitiveString", "String", "STRING", {{"multiline", false}}); }
NodeDef PrimitiveStringMultiline() {
  return primitive("PrimitiveStringMultiline", "String (Multiline)", "STRING", {{"multiline", true}});
}
NodeDef PrimitiveInt() {
  return primitive("PrimitiveInt", "Int", "INT",
                   {{"min", -kIntLimit}, {"max", kIntLimit}, {"control_after_generate", true}});
}
NodeDef PrimitiveFloat() {
  return primitive("PrimitiveFloat", "Float", "FLOAT", {{"min", -kIntLimit}, {"max", kIntLimit}, {"step", 0.1}});
}
NodeDef PrimitiveBoolean() { return primitive("PrimitiveBoolean", "Boolean", "BOOLEAN", json::object()); }

}  // namespace

void register_primitive(Registry& r) {
  r.add(PrimitiveString());
  r.add(PrimitiveStringMultiline());
  r.add(PrimitiveInt());
  r.add(PrimitiveFloat());
  r.add(PrimitiveBoolean());
}

}  // namespace comfy
