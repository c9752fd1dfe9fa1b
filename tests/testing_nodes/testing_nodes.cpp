#include "testing_nodes/testing_nodes.h"

#include <chrono>
#include <thread>

#include "core/error.h"
#include "graph/execution_context.h"

namespace comfy::testing {

CallCounter& counter() {
  static CallCounter c;
  return c;
}

namespace {

NodeDef test_node(const char* name) { return NodeDef(name).category("Testing/Nodes").python_module("custom_nodes.testing"); }

// TestInt: a constant.
NodeDef TestInt() {
  return test_node("TestInt")
      .input("value", "INT", {{"default", 0}, {"min", -1000}, {"max", 1000}})
      .output("INT")
      .run([](ExecutionContext&, const NodeInputs& in) {
        counter().hit("TestInt");
        return NodeOutput({in["value"]});
      });
}

// TestAdd: a + b.
NodeDef TestAdd() {
  return test_node("TestAdd")
      .input("a", "INT", {{"default", 0}})
      .input("b", "INT", {{"default", 0}})
      .output("INT")
      .run([](ExecutionContext&, const NodeInputs& in) {
        counter().hit("TestAdd");
        return NodeOutput({Value(json(in.get_int("a") + in.get_int("b")))});
      });
}

// TestOutput: an output node that shows its input in the UI dict.
NodeDef TestOutput() {
  return test_node("TestOutput")
      .input("value", "*")
      .output_node()
      .run([](ExecutionContext&, const NodeInputs& in) {
        counter().hit("TestOutput");
        return NodeOutput({}, json{{"values", json::array({in["value"].data()})}});
      });
}

// TestLazySwitch: only evaluates the branch `select` names (check_lazy_status).
NodeDef TestLazySwitch() {
  return test_node("TestLazySwitch")
      .input("select", "BOOLEAN", {{"default", true}})
      .input("on_true", "INT", {{"lazy", true}})
      .input("on_false", "INT", {{"lazy", true}})
      .output("INT")
      .lazy_status([](ExecutionContext&, const NodeInputs& in) {
        std::string needed = in.get_bool("select") ? "on_true" : "on_false";
        if (in[needed].is_none()) return std::vector<std::string>{needed};
        return std::vector<std::string>{};
      })
      .run([](ExecutionContext&, const NodeInputs& in) {
        counter().hit("TestLazySwitch");
        return NodeOutput({in[in.get_bool("select") ? "on_true" : "on_false"]});
      });
}

// TestMakeList: an OUTPUT_IS_LIST node giving [start, start+1, ..., start+count-1].
NodeDef TestMakeList() {
  return test_node("TestMakeList")
      .input("start", "INT", {{"default", 0}})
      .input("count", "INT", {{"default", 3}})
      .output("INT", "INT", std::nullopt, true)
      .run([](ExecutionContext&, const NodeInputs& in) {
        ValueList list;
        for (int64_t i = 0; i < in.get_int("count"); ++i) list.items.emplace_back(json(in.get_int("start") + i));
        return NodeOutput({Value::make(std::move(list))});
      });
}

// TestSumList: an INPUT_IS_LIST node adding up a whole list.
NodeDef TestSumList() {
  return test_node("TestSumList")
      .input("values", "INT")
      .output("INT")
      .input_is_list()
      .run([](ExecutionContext&, const NodeInputs& in) {
        int64_t sum = 0;
        for (auto& v : in.list("values")) sum += v.as_int();
        return NodeOutput({Value(json(sum))});
      });
}

// TestSlow: reports `steps` progress ticks, sleeping between them (for interrupts).
NodeDef TestSlow() {
  return test_node("TestSlow")
      .input("value", "INT")
      .input("steps", "INT", {{"default", 5}})
      .input("sleep_ms", "INT", {{"default", 10}})
      .output("INT")
      .run([](ExecutionContext& ctx, const NodeInputs& in) {
        counter().hit("TestSlow");
        int64_t steps = in.get_int("steps");
        for (int64_t i = 0; i < steps; ++i) {
          std::this_thread::sleep_for(std::chrono::milliseconds(in.get_int("sleep_ms")));
          ctx.progress(static_cast<double>(i + 1), static_cast<double>(steps));
        }
        return NodeOutput({in["value"]});
      });
}

// TestFail: raises ValueError with the given message.
NodeDef TestFail() {
  return test_node("TestFail")
      .input("value", "INT")
      .input("message", "STRING", {{"default", "boom"}})
      .output("INT")
      .run([](ExecutionContext&, const NodeInputs& in) -> NodeOutput {
        throw ComfyError("ValueError", in.get_string("message"));
      });
}

// TestValidated: a custom validator that rejects odd values.
NodeDef TestValidated() {
  return test_node("TestValidated")
      .input("value", "INT", {{"min", 0}, {"max", 10}})
      .output("INT")
      .validator(
          [](const Services&, const NodeInputs& in, const std::map<std::string, std::string>&)
              -> std::variant<bool, std::string> {
            if (in["value"].is_none()) return true;
            if (in.get_int("value") % 2) return "value must be even";
            return true;
          },
          {"value"})
      .run([](ExecutionContext&, const NodeInputs& in) { return NodeOutput({in["value"]}); });
}

// TestHidden: shows its hidden inputs in the UI.
NodeDef TestHidden() {
  return test_node("TestHidden")
      .input("value", "INT")
      .hidden_input("prompt", "PROMPT")
      .hidden_input("extra_pnginfo", "EXTRA_PNGINFO")
      .hidden_input("unique_id", "UNIQUE_ID")
      .output_node()
      .run([](ExecutionContext&, const NodeInputs& in) {
        counter().hit("TestHidden");
        return NodeOutput({}, json{{"unique_id", {in["unique_id"].data()}},
                                   {"extra_pnginfo", {in["extra_pnginfo"].data()}},
                                   {"prompt_nodes", {in["prompt"].data().size()}}});
      });
}

// TestBlock: blocks everything downstream (ExecutionBlocker), with or without a message.
NodeDef TestBlock() {
  return test_node("TestBlock")
      .input("value", "INT")
      .input("message", "STRING", {{"default", ""}})
      .output("INT")
      .run([](ExecutionContext&, const NodeInputs& in) {
        return NodeOutput({Value::make(ExecutionBlocker(in.get_string("message")))});
      });
}

// TestChanged: re-runs whenever its fingerprint input changes, even with equal values.
NodeDef TestChanged() {
  return test_node("TestChanged")
      .input("value", "INT")
      .input("fingerprint", "STRING", {{"default", ""}})
      .output("INT")
      .fingerprint([](const Services&, const NodeInputs& in) -> json {
        std::string f = in["fingerprint"].is_none() ? "" : in.get_string("fingerprint");
        if (f == "nan") return NAN;
        return f;
      })
      .run([](ExecutionContext&, const NodeInputs& in) {
        counter().hit("TestChanged");
        return NodeOutput({in["value"]});
      });
}

// TestModelLoader: names a file of models/checkpoints, as loaders do.
NodeDef TestModelLoader() {
  return test_node("TestModelLoader")
      .model_combo("ckpt_name", "checkpoints")
      .output("INT")
      .run([](ExecutionContext&, const NodeInputs& in) {
        counter().hit("TestModelLoader");
        return NodeOutput({Value(json(static_cast<int64_t>(in.get_string("ckpt_name").size())))});
      });
}

// TestStateful: counts its own calls in its node state (ComfyUI's objects cache).
NodeDef TestStateful() {
  return test_node("TestStateful")
      .input("value", "INT")
      .output("INT")
      .not_idempotent()
      .run([](ExecutionContext& ctx, const NodeInputs& in) {
        int& calls = ctx.node_state<int>();
        ++calls;
        return NodeOutput({Value(json(calls))});
      });
}

}  // namespace

void register_testing_nodes(Registry& r) {
  r.add(TestStateful());
  r.add(TestModelLoader());
  r.add(TestInt());
  r.add(TestAdd());
  r.add(TestOutput());
  r.add(TestLazySwitch());
  r.add(TestMakeList());
  r.add(TestSumList());
  r.add(TestSlow());
  r.add(TestFail());
  r.add(TestValidated());
  r.add(TestHidden());
  r.add(TestBlock());
  r.add(TestChanged());
}

}  // namespace comfy::testing
