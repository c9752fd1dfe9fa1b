#include "graph/validation.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <set>

#include "core/error.h"

namespace comfy {
namespace {

// A Python exception as validation reports it: its class name and str().
struct PyException {
  std::string type;
  std::string message;
};

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

// Digits with single underscores between them, as Python's int() and float() accept.
bool strip_underscores(const std::string& s, std::string& out) {
  out.clear();
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '_') {
      if (i == 0 || i + 1 == s.size() || !std::isdigit((unsigned char)s[i - 1]) ||
          !std::isdigit((unsigned char)s[i + 1]))
        return false;
      continue;
    }
    out += s[i];
  }
  return true;
}

const char* py_type_name(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "NoneType";
    case json::value_t::object: return "dict";
    case json::value_t::array: return "list";
    case json::value_t::string: return "str";
    case json::value_t::boolean: return "bool";
    case json::value_t::number_float: return "float";
    default: return "int";
  }
}

// Python's int(v).
json py_int(const json& v) {
  if (v.is_boolean()) return v.get<bool>() ? 1 : 0;
  if (v.is_number_integer()) return v;
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (std::isnan(d)) throw PyException{"ValueError", "cannot convert float NaN to integer"};
    if (std::isinf(d)) throw PyException{"OverflowError", "cannot convert float infinity to integer"};
    double t = std::trunc(d);
    if (t >= -9.2e18 && t <= 9.2e18) return static_cast<int64_t>(t);
    if (t >= 0 && t < 1.8e19) return static_cast<uint64_t>(t);
    return t;  // beyond 64 bits: keep the magnitude so min/max checks still work
  }
  if (v.is_string()) {
    std::string s = trim(v.get<std::string>()), digits;
    bool ok = !s.empty() && strip_underscores(s, digits);
    size_t i = 0;
    bool negative = false;
    if (ok && (digits[0] == '+' || digits[0] == '-')) negative = digits[0] == '-', i = 1;
    ok = ok && i < digits.size() &&
         std::all_of(digits.begin() + i, digits.end(), [](char c) { return std::isdigit((unsigned char)c); });
    if (!ok)
      throw PyException{"ValueError", "invalid literal for int() with base 10: " + py_repr(v)};
    errno = 0;
    if (negative) {
      long long x = std::strtoll(digits.c_str(), nullptr, 10);
      if (errno == 0) return static_cast<int64_t>(x);
    } else {
      unsigned long long x = std::strtoull(digits.c_str() + i, nullptr, 10);
      if (errno == 0) return x <= INT64_MAX ? json(static_cast<int64_t>(x)) : json(static_cast<uint64_t>(x));
    }
    return std::strtod(digits.c_str(), nullptr);
  }
  throw PyException{"TypeError", std::string("int() argument must be a string, a bytes-like object or a "
                                             "real number, not '") + py_type_name(v) + "'"};
}

// Python's float(v).
json py_float(const json& v) {
  if (v.is_boolean()) return v.get<bool>() ? 1.0 : 0.0;
  if (v.is_number()) return v.get<double>();
  if (v.is_string()) {
    std::string s = trim(v.get<std::string>()), clean;
    std::string lower = s;
    std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
    std::string body = (!lower.empty() && (lower[0] == '+' || lower[0] == '-')) ? lower.substr(1) : lower;
    double sign = (!lower.empty() && lower[0] == '-') ? -1.0 : 1.0;
    if (body == "inf" || body == "infinity") return sign * INFINITY;
    if (body == "nan") return NAN;
    bool ok = !s.empty() && strip_underscores(s, clean) &&
              clean.find_first_not_of("0123456789+-.eE") == std::string::npos;
    if (ok) {
      char* end = nullptr;
      double d = std::strtod(clean.c_str(), &end);
      if (end && *end == '\0') return d;
    }
    throw PyException{"ValueError", "could not convert string to float: " + py_repr(v)};
  }
  throw PyException{"TypeError", std::string("float() argument must be a string or a real number, not '") +
                                     py_type_name(v) + "'"};
}

bool py_truthy(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return false;
    case json::value_t::boolean: return v.get<bool>();
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float: return v.get<double>() != 0;
    case json::value_t::string:
    case json::value_t::array:
    case json::value_t::object: return !v.empty();
    default: return true;
  }
}

// Python's a < b for the numbers validation compares (value against declared min/max). JSON
// integers may be signed or unsigned 64-bit, so integers compare exactly in 128 bits.
bool py_less(const json& a, const json& b) {
  auto wide = [](const json& j) -> __int128 {
    return j.is_number_unsigned() ? static_cast<__int128>(j.get<uint64_t>()) : static_cast<__int128>(j.get<int64_t>());
  };
  if (a.is_number_integer() && b.is_number_integer()) return wide(a) < wide(b);
  return a.get<double>() < b.get<double>();
}

ErrorObject reason(std::string type, std::string message, std::string details, json extra = json::object()) {
  return ErrorObject{std::move(type), std::move(message), std::move(details), std::move(extra)};
}

struct NodeResult {
  bool valid = true;
  std::vector<ErrorObject> errors;
};

class Validator {
 public:
  Validator(const Registry& r, const Services& s, json& p) : registry_(r), services_(s), prompt_(p) {}

  NodeResult validate(const std::string& id);
  NodeResult validate_node(const std::string& id);
  void remember(const std::string& id, NodeResult r) { store(id, std::move(r)); }
  std::map<std::string, NodeResult> validated;
  std::vector<std::string> validated_order;  // insertion order of `validated`, as a Python dict

 private:
  void store(const std::string& id, NodeResult r) {
    if (!validated.count(id)) validated_order.push_back(id);
    validated[id] = std::move(r);
  }
  const Registry& registry_;
  const Services& services_;
  json& prompt_;
  std::set<std::string> in_progress_;
};

// Looks a linked node up as Python's prompt[o_id] would: a KeyError names the missing key.
const json& lookup_node(const json& prompt, const json& id) {
  if (!id.is_string() || !prompt.contains(id.get<std::string>()))
    throw PyException{"KeyError", py_repr(id)};
  return prompt[id.get<std::string>()];
}

std::string output_type_at(const NodeDef& def, const json& index) {
  if (!index.is_number_integer())
    throw PyException{"TypeError", std::string("tuple indices must be integers or slices, not ") +
                                       py_type_name(index)};
  int64_t i = index.get<int64_t>();
  int64_t n = static_cast<int64_t>(def.output_types.size());
  if (i < -n || i >= n) throw PyException{"IndexError", "tuple index out of range"};
  return def.output_types[i < 0 ? i + n : i];
}

NodeResult Validator::validate(const std::string& id) {
  if (auto it = validated.find(id); it != validated.end()) return it->second;
  // A cycle. ComfyUI recurses around it until Python's recursion limit; every node on the way
  // is then stored as invalid without a reason, so the output fails with nothing listed
  // (recorded: tests/fixtures/validation/cycle.json). We stop at the first revisit instead.
  if (in_progress_.count(id)) return NodeResult{false, {}};
  in_progress_.insert(id);
  try {
    NodeResult r = validate_node(id);
    in_progress_.erase(id);
    return r;
  } catch (...) {
    in_progress_.erase(id);
    throw;
  }
}

NodeResult Validator::validate_node(const std::string& id) {
  json& node = prompt_[id];
  json& inputs = node["inputs"];
  if (!inputs.is_object()) inputs = json::object();
  const NodeDef& def = *registry_.find(node["class_type"].get<std::string>());

  NodeResult result;
  std::map<std::string, std::string> received_types;
  std::vector<const InputSpec*> specs;
  for (auto& s : def.required) specs.push_back(&s);
  for (auto& s : def.optional) specs.push_back(&s);

  for (const InputSpec* spec : specs) {
    const std::string& x = spec->name;
    json config = input_config(def, *spec, services_);
    if (config.size() == 1) config.push_back(json::object());
    if (!inputs.contains(x)) {
      if (def.is_required(x))
        result.errors.push_back(reason("required_input_missing", "Required input is missing", x,
                                       {{"input_name", x}}));
      continue;
    }
    json& val = inputs[x];
    if (val.is_array()) {
      if (val.size() != 2) {
        result.errors.push_back(reason("bad_linked_input",
                                       "Bad linked input, must be a length-2 list of [node_id, slot_index]", x,
                                       {{"input_name", x}, {"input_config", config}, {"received_value", val}}));
        continue;
      }
      const json& source = lookup_node(prompt_, val[0]);
      const NodeDef* source_def = nullptr;
      if (source.is_object() && source.contains("class_type") && source["class_type"].is_string())
        source_def = registry_.find(source["class_type"].get<std::string>());
      if (!source_def) throw PyException{"KeyError", py_repr(source.value("class_type", json()))};
      std::string received = output_type_at(*source_def, val[1]);
      received_types[x] = received;
      bool takes_types = def.validator_takes("input_types");
      if (!takes_types && !types_compatible(received, spec->type)) {
        std::string expected = spec->type == "COMBO" && spec->combo && !spec->v3_combo ? py_str(config[0]) : spec->type;
        result.errors.push_back(reason(
            "return_type_mismatch", "Return type mismatch between linked nodes",
            x + ", received_type(" + received + ") mismatch input_type(" + expected + ")",
            {{"input_name", x}, {"input_config", config}, {"received_type", received}, {"linked_node", val}}));
        continue;
      }
      std::string source_id = val[0].get<std::string>();
      if (validated.count(source_id)) {
        if (!validated[source_id].valid) result.valid = false;
        continue;
      }
      try {
        if (!validate(source_id).valid) result.valid = false;
      } catch (const PyException& e) {
        result.valid = false;
        NodeResult failed{false, {reason("exception_during_inner_validation", "Exception when validating inner node",
                                         e.message,
                                         {{"input_name", x},
                                          {"input_config", config},
                                          {"exception_message", e.message},
                                          {"exception_type", e.type},
                                          {"traceback", json::array()},
                                          {"linked_node", val}})}};
        store(source_id, std::move(failed));
      }
      continue;
    }

    // A constant: unwrap, coerce by declared type, then range and list checks.
    try {
      if (val.is_object() && val.contains("__value__")) {
        json unwrapped = val["__value__"];
        val = unwrapped;
      }
      if (spec->type == "INT") val = py_int(val);
      else if (spec->type == "FLOAT") val = py_float(val);
      else if (spec->type == "STRING") val = py_str(val);
      else if (spec->type == "BOOLEAN") val = py_truthy(val);
    } catch (const PyException& e) {
      result.errors.push_back(reason("invalid_input_type",
                                     "Failed to convert an input value to a " + spec->type + " value",
                                     x + ", " + py_str(val) + ", " + e.message,
                                     {{"input_name", x}, {"input_config", config}, {"received_value", val},
                                      {"exception_message", e.message}}));
      continue;
    }
    if (def.validator_takes(x)) continue;
    const json& opts = spec->options;
    auto range_error = [&](const char* type, const std::string& message) {
      result.errors.push_back(reason(type, message, x,
                                     {{"input_name", x}, {"input_config", config}, {"received_value", val}}));
    };
    if (opts.contains("min") && val.is_number() && py_less(val, opts["min"])) {
      range_error("value_smaller_than_min", "Value " + py_str(val) + " smaller than min of " + py_str(opts["min"]));
      continue;
    }
    if (opts.contains("max") && val.is_number() && py_less(opts["max"], val)) {
      range_error("value_bigger_than_max", "Value " + py_str(val) + " bigger than max of " + py_str(opts["max"]));
      continue;
    }
    if (spec->type == "COMBO") {
      std::vector<std::string> options = combo_options(*spec, services_);
      bool found = val.is_string() && std::find(options.begin(), options.end(), val.get<std::string>()) != options.end();
      if (!found) {
        bool long_list = options.size() > 20;
        std::string list_info = long_list ? "(list of length " + std::to_string(options.size()) + ")"
                                          : py_str(json(options));
        result.errors.push_back(reason("value_not_in_list", "Value not in list",
                                       x + ": '" + py_str(val) + "' not in " + list_info,
                                       {{"input_name", x},
                                        {"input_config", long_list ? json(nullptr) : config},
                                        {"received_value", val}}));
        continue;
      }
    }
  }

  if (def.validate_inputs) {
    // The validator sees constants only; linked inputs are passed as None (spec 3.2 step 4).
    NodeInputs args;
    std::vector<std::string> passed;
    for (auto& [name, value] : inputs.items()) {
      if (!def.find_input(name) || !def.validator_takes(name)) continue;
      args.values[name] = {is_link(value) ? Value() : Value(value)};
      passed.push_back(name);
    }
    if (def.validator_takes("input_types")) passed.push_back("input_types");
    auto verdict = def.validate_inputs(services_, args, received_types);
    bool ok = std::holds_alternative<bool>(verdict) && std::get<bool>(verdict);
    if (!ok) {
      for (auto& name : passed) {
        std::string details = name;
        if (auto* text = std::get_if<std::string>(&verdict)) details += " - " + *text;
        result.errors.push_back(reason("custom_validation_failed", "Custom validation failed for node", details,
                                       {{"input_name", name}}));
      }
    }
  }

  if (!result.errors.empty()) result.valid = false;
  store(id, result);
  return result;
}

}  // namespace

bool is_link(const json& value) {
  return value.is_array() && value.size() == 2 && value[0].is_string() && value[1].is_number();
}

bool types_compatible(const std::string& received, const std::string& expected) {
  if (received == expected) return true;
  if (received == "*" || expected == "*") return true;
  if (received == "COMFY_MATCHTYPE_V3" || expected == "COMFY_MATCHTYPE_V3") return true;
  auto split = [](const std::string& s) {
    std::set<std::string> out;
    size_t start = 0;
    while (true) {
      size_t comma = s.find(',', start);
      out.insert(trim(s.substr(start, comma == std::string::npos ? std::string::npos : comma - start)));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    return out;
  };
  auto a = split(received), b = split(expected);
  if (a.count("*") || b.count("*")) return true;
  for (auto& t : a)
    if (b.count(t)) return true;
  return false;
}

ValidationResult validate_prompt(const Registry& registry, const Services& services, json& prompt,
                                 const std::optional<std::vector<std::string>>& partial_targets) {
  ValidationResult out;
  std::vector<std::string> outputs;
  for (auto& [id, node] : prompt.items()) {
    if (!node.is_object() || !node.contains("class_type")) {
      out.error = reason("invalid_prompt", "Cannot execute because a node is missing the class_type property.",
                         "Node ID '#" + id + "'").to_json();
      return out;
    }
    const NodeDef* def = node["class_type"].is_string() ? registry.find(node["class_type"].get<std::string>()) : nullptr;
    if (!def) {
      out.error = reason("invalid_prompt",
                         "Cannot execute because node " + py_str(node["class_type"]) + " does not exist.",
                         "Node ID '#" + id + "'").to_json();
      return out;
    }
    if (def->output_node_ &&
        (!partial_targets || std::find(partial_targets->begin(), partial_targets->end(), id) != partial_targets->end()))
      outputs.push_back(id);
  }
  if (outputs.empty()) {
    out.error = reason("prompt_no_outputs", "Prompt has no outputs", "").to_json();
    return out;
  }

  Validator validator(registry, services, prompt);
  std::vector<std::pair<std::string, std::vector<ErrorObject>>> failures;
  for (auto& o : outputs) {
    NodeResult r;
    try {
      r = validator.validate(o);
    } catch (const PyException& e) {
      r = NodeResult{false, {reason("exception_during_validation", "Exception when validating node", e.message,
                                    {{"exception_type", e.type}, {"traceback", json::array()}})}};
      validator.remember(o, r);
    } catch (const std::exception& e) {
      r = NodeResult{false, {reason("exception_during_validation", "Exception when validating node", e.what(),
                                    {{"exception_type", "Exception"}, {"traceback", json::array()}})}};
      validator.remember(o, r);
    }
    if (r.valid) {
      out.outputs.push_back(o);
      continue;
    }
    failures.emplace_back(o, r.errors);
    for (auto& node_id : validator.validated_order) {
      const NodeResult& nr = validator.validated[node_id];
      if (nr.valid || nr.errors.empty()) continue;
      if (!out.node_errors.contains(node_id)) {
        json errors = json::array();
        for (auto& e : nr.errors) errors.push_back(e.to_json());
        out.node_errors[node_id] = json{{"errors", errors},
                                        {"dependent_outputs", json::array()},
                                        {"class_type", prompt[node_id]["class_type"]}};
      }
      out.node_errors[node_id]["dependent_outputs"].push_back(o);
    }
  }
  if (out.outputs.empty()) {
    std::string details;
    for (auto& [o, errors] : failures)
      for (auto& e : errors) details += (details.empty() ? "" : "\n") + e.message + ": " + e.details;
    out.error = reason("prompt_outputs_failed_validation", "Prompt outputs failed validation", details).to_json();
    return out;
  }
  out.ok = true;
  return out;
}

}  // namespace comfy
