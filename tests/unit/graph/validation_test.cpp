// validate_prompt on test-only nodes: each error kind with its exact body (spec 3.3, 3.4).
#include <gtest/gtest.h>

#include "engine/harness.h"

namespace comfy::testing {
namespace {

json validate_body(json prompt) {
  Engine e;
  ValidationResult v = e.validate(prompt);
  return v.ok ? json{{"ok", v.outputs}, {"node_errors", v.node_errors}} : v.error_body();
}

TEST(Validation, UnknownClass) {
  json p{{"7", node("Foo", json::object())}, {"8", node("TestOutput", {{"value", 1}})}};
  EXPECT_EQ(validate_body(p), json::parse(R"J({"error": {"type": "invalid_prompt",
    "message": "Cannot execute because node Foo does not exist.", "details": "Node ID '#7'", "extra_info": {}},
    "node_errors": {}})J"));
}

TEST(Validation, MissingClassType) {
  json p{{"3", {{"inputs", json::object()}}}};
  EXPECT_EQ(validate_body(p)["error"]["message"], "Cannot execute because a node is missing the class_type property.");
  EXPECT_EQ(validate_body(p)["error"]["details"], "Node ID '#3'");
}

TEST(Validation, NoOutputs) {
  json p{{"1", node("TestInt", {{"value", 1}})}};
  EXPECT_EQ(validate_body(p), json::parse(R"J({"error": {"type": "prompt_no_outputs", "message": "Prompt has no outputs",
    "details": "", "extra_info": {}}, "node_errors": {}})J"));
}

TEST(Validation, RequiredInputMissingUpstream) {
  json p{{"1", node("TestAdd", {{"a", 1}})}, {"9", node("TestOutput", {{"value", link("1")}})}};
  EXPECT_EQ(validate_body(p), json::parse(R"J({"error": {"type": "prompt_outputs_failed_validation",
    "message": "Prompt outputs failed validation", "details": "", "extra_info": {}},
    "node_errors": {"1": {"errors": [{"type": "required_input_missing", "message": "Required input is missing",
      "details": "b", "extra_info": {"input_name": "b"}}], "dependent_outputs": ["9"], "class_type": "TestAdd"}}})J"));
}

TEST(Validation, RequiredInputMissingOnOutputGoesIntoDetails) {
  json p{{"9", node("TestOutput", json::object())}};
  EXPECT_EQ(validate_body(p)["error"]["details"], "Required input is missing: value");
}

TEST(Validation, ReturnTypeMismatch) {
  json p{{"1", node("TestInt", {{"value", 1}})},
         {"2", node("TestFail", {{"value", 1}, {"message", link("1")}})},
         {"3", node("TestOutput", {{"value", link("2")}})}};
  json err = validate_body(p)["node_errors"]["2"]["errors"][0];
  EXPECT_EQ(err, json::parse(R"J({"type": "return_type_mismatch", "message": "Return type mismatch between linked nodes",
    "details": "message, received_type(INT) mismatch input_type(STRING)",
    "extra_info": {"input_name": "message", "input_config": ["STRING", {"default": "boom"}],
                   "received_type": "INT", "linked_node": ["1", 0]}})J"));
}

TEST(Validation, ValueBiggerThanMax) {
  json p{{"1", node("TestInt", {{"value", 1001}})}, {"2", node("TestOutput", {{"value", link("1")}})}};
  EXPECT_EQ(validate_body(p)["node_errors"]["1"]["errors"][0], json::parse(R"J({"type": "value_bigger_than_max",
    "message": "Value 1001 bigger than max of 1000", "details": "value",
    "extra_info": {"input_name": "value", "input_config": ["INT", {"default": 0, "min": -1000, "max": 1000}],
                   "received_value": 1001}})J"));
}

TEST(Validation, ValueSmallerThanMinAfterCoercion) {
  // "-1001.7" is not an int literal, but -1001.7 (a number) truncates to -1001.
  json p{{"1", node("TestInt", {{"value", -1001.7}})}, {"2", node("TestOutput", {{"value", link("1")}})}};
  json err = validate_body(p)["node_errors"]["1"]["errors"][0];
  EXPECT_EQ(err["message"], "Value -1001 smaller than min of -1000");
  EXPECT_EQ(err["extra_info"]["received_value"], -1001);
}

TEST(Validation, InvalidInputType) {
  json p{{"1", node("TestInt", {{"value", "12.5"}})}, {"2", node("TestOutput", {{"value", link("1")}})}};
  EXPECT_EQ(validate_body(p)["node_errors"]["1"]["errors"][0], json::parse(R"J({"type": "invalid_input_type",
    "message": "Failed to convert an input value to a INT value",
    "details": "value, 12.5, invalid literal for int() with base 10: '12.5'",
    "extra_info": {"input_name": "value", "input_config": ["INT", {"default": 0, "min": -1000, "max": 1000}],
                   "received_value": "12.5", "exception_message": "invalid literal for int() with base 10: '12.5'"}})J"));
}

TEST(Validation, CoercesValuesInPlace) {
  json p{{"1", node("TestInt", {{"value", " 12 "}})},
         {"2", node("TestFail", {{"value", link("1")}, {"message", 3.0}})},
         {"3", node("TestLazySwitch", {{"select", "false"}, {"on_true", link("1")}, {"on_false", {{"__value__", 5}}}})},
         {"4", node("TestOutput", {{"value", link("2")}})},
         {"5", node("TestOutput", {{"value", link("3")}})}};
  Engine e;
  ASSERT_TRUE(e.validate(p).ok);
  EXPECT_EQ(p["1"]["inputs"]["value"], 12);
  EXPECT_EQ(p["2"]["inputs"]["message"], "3.0");
  EXPECT_EQ(p["3"]["inputs"]["select"], true);  // Python's bool("false")
  EXPECT_EQ(p["3"]["inputs"]["on_false"], 5);
}

TEST(Validation, BadLinkedInput) {
  json p{{"1", node("TestInt", {{"value", 1}})}, {"2", node("TestOutput", {{"value", json::array({"1", 0, 5})}})}};
  json body = validate_body(p);
  EXPECT_EQ(body["error"]["details"], "Bad linked input, must be a length-2 list of [node_id, slot_index]: value");
  EXPECT_EQ(body["node_errors"]["2"]["errors"][0]["extra_info"]["received_value"], json::parse(R"J(["1", 0, 5])J"));
}

TEST(Validation, LinkToMissingNodeFromOutput) {
  json p{{"2", node("TestOutput", {{"value", link("99")}})}};
  json err = validate_body(p)["node_errors"]["2"]["errors"][0];
  EXPECT_EQ(err["type"], "exception_during_validation");
  EXPECT_EQ(err["message"], "Exception when validating node");
  EXPECT_EQ(err["details"], "'99'");
  EXPECT_EQ(err["extra_info"]["exception_type"], "KeyError");
}

TEST(Validation, LinkToMissingNodeFromInnerNode) {
  json p{{"1", node("TestAdd", {{"a", link("99")}, {"b", 1}})}, {"2", node("TestOutput", {{"value", link("1")}})}};
  json body = validate_body(p);
  json err = body["node_errors"]["1"]["errors"][0];
  EXPECT_EQ(err["type"], "exception_during_inner_validation");
  EXPECT_EQ(err["details"], "'99'");
  EXPECT_EQ(err["extra_info"]["input_name"], "value");
  EXPECT_EQ(err["extra_info"]["linked_node"], json::parse(R"J(["1", 0])J"));
  EXPECT_EQ(body["error"]["details"], "");
}

TEST(Validation, OutputIndexOutOfRange) {
  json p{{"1", node("TestInt", {{"value", 1}})}, {"2", node("TestOutput", {{"value", link("1", 5)}})}};
  json err = validate_body(p)["node_errors"]["2"]["errors"][0];
  EXPECT_EQ(err["details"], "tuple index out of range");
  EXPECT_EQ(err["extra_info"]["exception_type"], "IndexError");
}

TEST(Validation, CustomValidatorFailureAndSkippedRangeChecks) {
  json p{{"1", node("TestValidated", {{"value", 3}})}, {"2", node("TestOutput", {{"value", link("1")}})}};
  EXPECT_EQ(validate_body(p)["node_errors"]["1"]["errors"][0], json::parse(R"J({"type": "custom_validation_failed",
    "message": "Custom validation failed for node", "details": "value - value must be even",
    "extra_info": {"input_name": "value"}})J"));
  // The validator takes `value`, so the declared max (10) is not checked by validation itself.
  p["1"]["inputs"]["value"] = 12;
  EXPECT_TRUE(validate_body(p).contains("ok"));
}

TEST(Validation, OneGoodOutputIsEnough) {
  json p{{"1", node("TestInt", {{"value", 5000}})},
         {"2", node("TestOutput", {{"value", link("1")}})},
         {"3", node("TestOutput", {{"value", 1}})}};
  json body = validate_body(p);
  EXPECT_EQ(body["ok"], json::parse(R"J(["3"])J"));
  EXPECT_EQ(body["node_errors"]["1"]["dependent_outputs"], json::parse(R"J(["2"])J"));
}

TEST(Validation, PartialExecutionTargets) {
  Engine e;
  json p{{"1", node("TestOutput", {{"value", 1}})}, {"2", node("TestOutput", {{"value", 2}})},
         {"3", node("TestInt", {{"value", 1}})}};
  ValidationResult v = validate_prompt(e.registry, e.services, p, std::vector<std::string>{"2"});
  EXPECT_EQ(v.outputs, std::vector<std::string>{"2"});
  v = validate_prompt(e.registry, e.services, p, std::vector<std::string>{"3"});
  EXPECT_EQ(v.error["type"], "prompt_no_outputs");
}

TEST(Validation, CycleFailsItsOutputWithoutListingANode) {
  // As recorded from ComfyUI 0.8.0 (tests/fixtures/validation/cycle*.json).
  json p{{"1", node("TestAdd", {{"a", link("2")}, {"b", 1}})},
         {"2", node("TestAdd", {{"a", link("1")}, {"b", 1}})},
         {"3", node("TestOutput", {{"value", link("2")}})}};
  EXPECT_EQ(validate_body(p), json::parse(R"J({"error": {"type": "prompt_outputs_failed_validation",
    "message": "Prompt outputs failed validation", "details": "", "extra_info": {}}, "node_errors": {}})J"));
  p["4"] = node("TestOutput", {{"value", 1}});
  EXPECT_EQ(validate_body(p), json::parse(R"J({"ok": ["4"], "node_errors": {}})J"));
}

TEST(Validation, LongComboListIsAbbreviated) {
  Registry r;
  std::vector<std::string> many;
  for (int i = 0; i < 25; ++i) many.push_back("s" + std::to_string(i));
  r.add(NodeDef("Pick").combo("choice", many).output_node().run([](ExecutionContext&, const NodeInputs&) {
    return NodeOutput();
  }));
  r.add(NodeDef("PickFew").combo("choice", {"a", "b"}, {{"tooltip", "t"}}).output_node().run(
      [](ExecutionContext&, const NodeInputs&) { return NodeOutput(); }));
  Services s;
  json p{{"1", node("Pick", {{"choice", "foo"}})}};
  ValidationResult v = validate_prompt(r, s, p);
  EXPECT_EQ(v.error["details"], "Value not in list: choice: 'foo' not in (list of length 25)");
  EXPECT_EQ(v.node_errors["1"]["errors"][0]["extra_info"]["input_config"], nullptr);
  json q{{"1", node("PickFew", {{"choice", "x"}})}};
  v = validate_prompt(r, s, q);
  EXPECT_EQ(v.node_errors["1"]["errors"][0]["details"], "choice: 'x' not in ['a', 'b']");
  EXPECT_EQ(v.node_errors["1"]["errors"][0]["extra_info"]["input_config"], json::parse(R"J([["a", "b"], {"tooltip": "t"}])J"));
}

TEST(Validation, TypesCompatible) {
  EXPECT_TRUE(types_compatible("IMAGE", "IMAGE"));
  EXPECT_TRUE(types_compatible("IMAGE", "*"));
  EXPECT_TRUE(types_compatible("INT,FLOAT", "FLOAT"));
  EXPECT_TRUE(types_compatible("INT, FLOAT", "STRING,FLOAT"));
  EXPECT_FALSE(types_compatible("IMAGE", "MASK"));
  EXPECT_FALSE(types_compatible("INT,FLOAT", "STRING"));
}

}  // namespace
}  // namespace comfy::testing
