// UI-format workflows -> API prompts, against expectations written from the frontend's rules
// (tests/fixtures/workflows/README.md), and the errors bad workflows give.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "graph/services.h"
#include "graph/ui_workflow.h"
#include "nodes/all.h"

namespace comfy {
namespace {

json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("missing fixture " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return json::parse(ss.str());
}

std::string fixture(const std::string& name) { return std::string(COMFY_TEST_DATA) + "/workflows/ui/" + name; }

// Key order carries no meaning in a prompt: compare as unordered JSON.
nlohmann::json unordered(const json& j) { return nlohmann::json::parse(j.dump()); }

class UiWorkflow : public ::testing::Test {
 protected:
  Registry registry;
  Services services;
  void SetUp() override { register_all_nodes(registry); }
  json convert(const json& workflow) { return ui_workflow_to_prompt(workflow, registry, services); }
  // The error a workflow gives; fails the test when it converts.
  WorkflowError error_of(const json& workflow) {
    try {
      convert(workflow);
    } catch (const WorkflowError& e) {
      return e;
    }
    ADD_FAILURE() << "converted without an error";
    return WorkflowError("none");
  }
  static json& node(json& workflow, int id) {
    for (auto& n : workflow["nodes"])
      if (n["id"] == id) return n;
    throw std::runtime_error("no node " + std::to_string(id));
  }
};

class UiWorkflowFixture : public UiWorkflow, public ::testing::WithParamInterface<std::string> {};

TEST_P(UiWorkflowFixture, ConvertsToTheExpectedPrompt) {
  json workflow = read_json(fixture(GetParam() + ".json"));
  json expected = read_json(fixture(GetParam() + ".api.json"));
  EXPECT_EQ(unordered(convert(workflow)), unordered(expected));
}

INSTANTIATE_TEST_SUITE_P(Fixtures, UiWorkflowFixture,
                         ::testing::Values("basic_v04", "schema_v1", "reroute_chain", "bypass", "mute", "primitive",
                                           "widget_input", "subgraph"));

TEST_F(UiWorkflow, RecognisesUiWorkflowsButNotApiPrompts) {
  EXPECT_TRUE(is_ui_workflow(read_json(fixture("basic_v04.json"))));
  EXPECT_FALSE(is_ui_workflow(read_json(fixture("basic_v04.api.json"))));
}

TEST_F(UiWorkflow, DanglingLinkNamesTheNodeAndInput) {
  json w = read_json(fixture("basic_v04.json"));
  node(w, 2)["inputs"][0]["link"] = 99;
  WorkflowError e = error_of(w);
  EXPECT_NE(std::string(e.what()).find("node 2"), std::string::npos) << e.what();
  EXPECT_NE(std::string(e.what()).find("image"), std::string::npos) << e.what();
  EXPECT_EQ(e.extra_info()["node_id"], "2");
  EXPECT_EQ(e.extra_info()["input_name"], "image");
  json obj = e.error_object();
  for (const char* key : {"type", "message", "details", "extra_info"}) EXPECT_TRUE(obj.contains(key)) << key;
}

TEST_F(UiWorkflow, LinkFromAMissingNodeIsAnError) {
  json w = read_json(fixture("basic_v04.json"));
  w["links"][0][1] = 42;  // origin node 42 does not exist
  WorkflowError e = error_of(w);
  EXPECT_NE(std::string(e.what()).find("42"), std::string::npos) << e.what();
  EXPECT_EQ(e.extra_info()["node_id"], "2");
}

TEST_F(UiWorkflow, UnknownNodeTypeIsAnError) {
  json w = read_json(fixture("basic_v04.json"));
  node(w, 2)["type"] = "NoSuchNode";
  WorkflowError e = error_of(w);
  EXPECT_EQ(e.extra_info()["class_type"], "NoSuchNode");
  EXPECT_NE(std::string(e.what()).find("NoSuchNode"), std::string::npos);
}

TEST_F(UiWorkflow, UnknownTypeOfAMutedNodeIsIgnored) {
  json w = read_json(fixture("basic_v04.json"));
  node(w, 4)["type"] = "SomeCustomNode";
  node(w, 4)["mode"] = 2;
  EXPECT_NO_THROW(convert(w));
}

TEST_F(UiWorkflow, WidgetValuesOfTheWrongKindAreAnError) {
  json w = read_json(fixture("basic_v04.json"));
  node(w, 1)["widgets_values"] = json::array({64, "wide", 1, 0});
  WorkflowError e = error_of(w);
  EXPECT_NE(std::string(e.what()).find("height"), std::string::npos) << e.what();
  EXPECT_EQ(e.extra_info()["node_id"], "1");
}

TEST_F(UiWorkflow, TooManyWidgetValuesAreAnError) {
  json w = read_json(fixture("basic_v04.json"));
  node(w, 1)["widgets_values"] = json::array({64, 48, 1, 0, 7});
  EXPECT_NE(std::string(error_of(w).what()).find("5 values for 4 widgets"), std::string::npos);
}

TEST_F(UiWorkflow, MissingWidgetValuesTakeTheDeclaredDefaults) {
  json w = read_json(fixture("basic_v04.json"));
  node(w, 1)["widgets_values"] = json::array({64});
  json p = convert(w);
  EXPECT_EQ(p["1"]["inputs"]["width"], 64);
  EXPECT_EQ(p["1"]["inputs"]["height"], 512);
  EXPECT_EQ(p["1"]["inputs"]["color"], 0);
}

TEST_F(UiWorkflow, WidgetValuesSavedByNameAreRead) {
  json w = read_json(fixture("basic_v04.json"));
  node(w, 1)["widgets_values"] = json{{"height", 7}, {"width", 9}};
  json p = convert(w);
  EXPECT_EQ(p["1"]["inputs"]["width"], 9);
  EXPECT_EQ(p["1"]["inputs"]["height"], 7);
}

TEST_F(UiWorkflow, ControlAfterGenerateValueIsNotQueued) {
  json w = read_json(fixture("widget_input.json"));
  json p = convert(w);
  EXPECT_EQ(unordered(p["1"]["inputs"]), unordered(json{{"value", 40}}));
  // Without its control slot the values no longer fit PrimitiveInt's widgets.
  node(w, 1)["widgets_values"] = json::array({40, 7});
  EXPECT_THROW(convert(w), WorkflowError);
}

TEST_F(UiWorkflow, IntInputsNamedSeedGetAControlSlot) {
  registry.add(NodeDef("SeedTest").input("seed", "INT", {{"default", 0}}).input("noise_seed", "INT", {{"default", 0}})
                   .input("steps", "INT", {{"default", 20}}).output("INT")
                   .run([](ExecutionContext&, const NodeInputs& in) { return NodeOutput({in["seed"]}); }));
  json w = {{"nodes", json::array({{{"id", 1}, {"type", "SeedTest"}, {"mode", 0},
                                     {"widgets_values", json::array({5, "randomize", 6, "fixed", 30})}}})},
            {"links", json::array()}, {"version", 0.4}};
  EXPECT_EQ(unordered(convert(w)["1"]["inputs"]), unordered(json{{"seed", 5}, {"noise_seed", 6}, {"steps", 30}}));
  w["nodes"][0]["widgets_values"] = json::array({5, 6, 30});
  EXPECT_THROW(convert(w), WorkflowError);
}

TEST_F(UiWorkflow, ForceInputValuesFromOldWorkflowsAreSkipped) {
  registry.add(NodeDef("ForceTest").input("a", "INT", {{"default", 1}, {"forceInput", true}})
                   .input("b", "STRING", {{"default", "x"}}).output("INT")
                   .run([](ExecutionContext&, const NodeInputs& in) { return NodeOutput({in["a"]}); }));
  json w = {{"nodes", json::array({{{"id", 1}, {"type", "ForceTest"}, {"mode", 0},
                                     {"widgets_values", json::array({3, "kept"})}}})},
            {"links", json::array()}};
  EXPECT_EQ(unordered(convert(w)["1"]["inputs"]), unordered(json{{"b", "kept"}}));
  w["nodes"][0]["widgets_values"] = json::array({"now"});
  EXPECT_EQ(unordered(convert(w)["1"]["inputs"]), unordered(json{{"b", "now"}}));
}

TEST_F(UiWorkflow, LoadImageUploadButtonIsSavedButNotQueued) {
  json w = {{"nodes", json::array({{{"id", 7}, {"type", "LoadImage"}, {"mode", 0},
                                     {"outputs", json::array({{{"name", "IMAGE"}, {"type", "IMAGE"}, {"links", json::array()}},
                                                              {{"name", "MASK"}, {"type", "MASK"}, {"links", json::array()}}})},
                                     {"widgets_values", json::array({"example.png", "image"})}}})},
            {"links", json::array()}};
  json p = convert(w);
  EXPECT_EQ(unordered(p["7"]["inputs"]), unordered(json{{"image", "example.png"}}));
  EXPECT_EQ(p["7"]["_meta"]["title"], "Load Image");
}

TEST_F(UiWorkflow, BypassWithoutAMatchingInputLeavesTheInputUnset) {
  // MaskToImage bypassed: its only input is a MASK, the consumer wants an IMAGE.
  json w = read_json(fixture("basic_v04.json"));
  w["nodes"].push_back({{"id", 5}, {"type", "SolidMask"}, {"mode", 0}, {"widgets_values", json::array({1.0, 8, 8})},
                        {"outputs", json::array({{{"name", "MASK"}, {"type", "MASK"}, {"links", json::array({3})}}})}});
  w["nodes"].push_back({{"id", 6}, {"type", "MaskToImage"}, {"mode", 4},
                        {"inputs", json::array({{{"name", "mask"}, {"type", "MASK"}, {"link", 3}}})},
                        {"outputs", json::array({{{"name", "IMAGE"}, {"type", "IMAGE"}, {"links", json::array({2})}}})}});
  w["links"][1] = json::array({2, 6, 0, 3, 0, "IMAGE"});
  w["links"].push_back(json::array({3, 5, 0, 6, 0, "MASK"}));
  json p = convert(w);
  EXPECT_FALSE(p.contains("6"));
  EXPECT_FALSE(p["3"]["inputs"].contains("images"));
  EXPECT_EQ(p["3"]["inputs"]["filename_prefix"], "basic");
}

TEST_F(UiWorkflow, ArrayWidgetValuesAreWrapped) {
  registry.add(NodeDef("ListTest").combo("pick", std::vector<std::string>{"a", "b"}).output("INT")
                   .run([](ExecutionContext&, const NodeInputs& in) { return NodeOutput({in["pick"]}); }));
  json w = {{"nodes", json::array({{{"id", 1}, {"type", "ListTest"}, {"widgets_values", json::array({json::array({"a", "b"})})}}})},
            {"links", json::array()}};
  EXPECT_EQ(unordered(convert(w)["1"]["inputs"]["pick"]), unordered(json{{"__value__", {"a", "b"}}}));
}

TEST_F(UiWorkflow, RerouteLoopIsAnErrorNotACrash) {
  json w = {{"nodes", json::array({{{"id", 1}, {"type", "Reroute"}, {"inputs", json::array({{{"name", ""}, {"type", "*"}, {"link", 2}}})}},
                                   {{"id", 2}, {"type", "Reroute"}, {"inputs", json::array({{{"name", ""}, {"type", "*"}, {"link", 1}}})}},
                                   {{"id", 3}, {"type", "PreviewAny"}, {"inputs", json::array({{{"name", "source"}, {"type", "*"}, {"link", 3}}})}}})},
            {"links", json::array({json::array({1, 1, 0, 2, 0, "*"}), json::array({2, 2, 0, 1, 0, "*"}),
                                   json::array({3, 2, 0, 3, 0, "*"})})}};
  EXPECT_NE(std::string(error_of(w).what()).find("circular"), std::string::npos);
}

TEST_F(UiWorkflow, MalformedWorkflowsAreErrors) {
  EXPECT_THROW(convert(json{{"nodes", 3}}), WorkflowError);
  EXPECT_THROW(convert(json::array()), WorkflowError);
  EXPECT_THROW(convert(json{{"nodes", json::array({{{"id", 1}}})}}), WorkflowError);  // no type
  json w = read_json(fixture("basic_v04.json"));
  node(w, 2)["inputs"] = json::array({"image"});
  EXPECT_THROW(convert(w), WorkflowError);
  w = read_json(fixture("basic_v04.json"));
  w["links"][0] = json::array({1, 1});
  EXPECT_THROW(convert(w), WorkflowError);
}

TEST_F(UiWorkflow, SubgraphThatContainsItselfIsAnError) {
  json w = read_json(fixture("subgraph.json"));
  // Make the inner subgraph contain an instance of the outer one.
  w["definitions"]["subgraphs"][1]["nodes"][0]["type"] = "a1b2c3d4-0000-4000-8000-00000000000a";
  EXPECT_THROW(convert(w), WorkflowError);
}

TEST_F(UiWorkflow, MutedSubgraphInstanceDropsItsNodesAndConsumersInputs) {
  json w = read_json(fixture("subgraph.json"));
  node(w, 10)["mode"] = 2;
  json p = convert(w);
  EXPECT_EQ(p.size(), 2u);  // EmptyImage and SaveImage
  EXPECT_FALSE(p["2"]["inputs"].contains("images"));
}

TEST_F(UiWorkflow, BypassedSubgraphInstancePassesItsInputThrough) {
  json w = read_json(fixture("subgraph.json"));
  node(w, 10)["mode"] = 4;
  json p = convert(w);
  EXPECT_EQ(p.size(), 2u);
  EXPECT_EQ(p["2"]["inputs"]["images"], json::array({"1", 0}));
}

}  // namespace
}  // namespace comfy
