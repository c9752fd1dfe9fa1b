// A value that flows along a link or sits in a widget. Widget values are JSON (INT, FLOAT,
// STRING, BOOLEAN, combo strings, and the PROMPT/EXTRA_PNGINFO hidden inputs); everything a
// node makes that JSON cannot hold (a tensor, a model, a list of conditionings) is an Object
// defined by the room that owns it. The graph room never needs to know what is inside.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/json.h"

namespace comfy {

class Object {
 public:
  virtual ~Object() = default;
  // How the object shows in an execution error's current_inputs (ComfyUI prints str(obj)).
  virtual std::string repr() const { return "<object>"; }
};

class Value {
 public:
  Value() = default;  // None
  Value(json data) : data_(std::move(data)) {}
  Value(std::shared_ptr<const Object> object) : object_(std::move(object)) {}
  template <class T>
  static Value make(T object) {
    return Value(std::shared_ptr<const Object>(std::make_shared<const T>(std::move(object))));
  }

  bool is_none() const { return !object_ && data_.is_null(); }
  bool is_object() const { return object_ != nullptr; }
  const json& data() const { return data_; }
  const std::shared_ptr<const Object>& object() const { return object_; }

  // The object as T, or nullptr when it holds something else.
  template <class T>
  const T* get() const {
    return dynamic_cast<const T*>(object_.get());
  }
  // The object as T, or a TypeError naming what was expected.
  template <class T>
  const T& as(const char* what) const {
    if (const T* p = get<T>()) return *p;
    throw_type_error(what);
  }

  int64_t as_int() const;
  uint64_t as_uint() const;
  double as_float() const;
  bool as_bool() const;
  const std::string& as_string() const;

 private:
  [[noreturn]] void throw_type_error(const char* what) const;
  json data_;
  std::shared_ptr<const Object> object_;
};

// Put in place of a node's outputs to stop everything downstream from running (ComfyUI's
// ExecutionBlocker): a message is reported once as an execution error, no message blocks silently.
struct ExecutionBlocker : Object {
  std::string message;  // empty: block silently
  explicit ExecutionBlocker(std::string m = {}) : message(std::move(m)) {}
};

// The value of an OUTPUT_IS_LIST slot for one call: its items are concatenated across calls.
struct ValueList : Object {
  std::vector<Value> items;
};

}  // namespace comfy
