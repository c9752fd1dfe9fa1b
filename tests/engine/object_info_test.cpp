// /object_info printed from node declarations, compared field by field with the real ComfyUI's
// answer (tests/fixtures/comfyui/object_info.json, recorded from ComfyUI 0.8.0).
#include <gtest/gtest.h>

#include "engine/harness.h"
#include "engine/object_info_defs.h"
#include "nodes/all.h"

namespace comfy::testing {
namespace {

const json& recorded() {
  static json j = load_json_file(COMFY_TEST_DATA "/comfyui/object_info.json");
  return j;
}

// Field-by-field equality: key order is not part of the contract.
nlohmann::json unordered(const json& j) { return nlohmann::json::parse(j.dump()); }

TEST(ObjectInfo, EveryRecordedNodePrintsBackIdentically) {
  Registry r;
  Services s;
  int mismatches = 0;
  for (auto& [name, info] : recorded().items()) {
    json printed = r.object_info(node_def_from_object_info(name, info), s);
    if (unordered(printed) != unordered(info)) {
      ADD_FAILURE() << name << "\n  recorded: " << info.dump() << "\n  printed:  " << printed.dump();
      if (++mismatches > 5) break;
    }
  }
  EXPECT_EQ(recorded().size(), 445u);
}

TEST(ObjectInfo, OurNodesMatchComfyUI) {
  Registry r;
  register_all_nodes(r);
  Services s;
  ASSERT_FALSE(r.all().empty());
  for (auto& def : r.all()) {
    ASSERT_TRUE(recorded().contains(def.name)) << def.name << " is not a ComfyUI node";
    json ours = r.object_info(def, s), theirs = recorded()[def.name];
    // Combos that list a folder depend on the files present: compare everything but the list.
    for (auto* list : {&def.required, &def.optional})
      for (auto& spec : *list) {
        if (spec.folder.empty()) continue;
        const char* section = list == &def.required ? "required" : "optional";
        for (json* j : {&ours, &theirs}) {
          json& cfg = (*j)["input"][section][spec.name];
          if (spec.v3_combo) cfg[1]["options"] = "<files>";
          else cfg[0] = "<files>";
        }
      }
    EXPECT_EQ(unordered(ours), unordered(theirs)) << def.name << "\n  ours:   " << ours.dump()
                                                  << "\n  ComfyUI: " << theirs.dump();
  }
}

TEST(ObjectInfo, OrderFollowsRegistration) {
  Registry r;
  register_all_nodes(r);
  Services s;
  json all = r.object_info(s);
  size_t i = 0;
  for (auto& [name, info] : all.items()) EXPECT_EQ(name, r.all()[i++].name);
}

TEST(ObjectInfo, OneDeclarationDrivesObjectInfoAndValidation) {
  Services s;
  for (int64_t max : {10, 20}) {
    Registry r;
    r.add(NodeDef("Limited").input("value", "INT", {{"default", 1}, {"min", 0}, {"max", max}}).output_node().run(
        [](ExecutionContext&, const NodeInputs&) { return NodeOutput(); }));
    EXPECT_EQ(r.object_info(s)["Limited"]["input"]["required"]["value"][1]["max"], max);
    json p{{"1", node("Limited", {{"value", 15}})}};
    EXPECT_EQ(validate_prompt(r, s, p).ok, max == 20);
  }
}

}  // namespace
}  // namespace comfy::testing
