#include "graph/value.h"

#include <cmath>

#include "core/error.h"

namespace comfy {

int64_t Value::as_int() const {
  if (data_.is_number_integer()) return data_.get<int64_t>();
  if (data_.is_number_float()) return static_cast<int64_t>(data_.get<double>());
  if (data_.is_boolean()) return data_.get<bool>() ? 1 : 0;
  throw_type_error("INT");
}

uint64_t Value::as_uint() const {
  if (data_.is_number_unsigned()) return data_.get<uint64_t>();
  return static_cast<uint64_t>(as_int());
}

double Value::as_float() const {
  if (data_.is_number()) return data_.get<double>();
  if (data_.is_boolean()) return data_.get<bool>() ? 1.0 : 0.0;
  throw_type_error("FLOAT");
}

bool Value::as_bool() const {
  if (data_.is_boolean()) return data_.get<bool>();
  if (data_.is_number()) return data_.get<double>() != 0;
  if (data_.is_string()) return !data_.get<std::string>().empty();
  throw_type_error("BOOLEAN");
}

const std::string& Value::as_string() const {
  if (data_.is_string()) return data_.get_ref<const std::string&>();
  throw_type_error("STRING");
}

void Value::throw_type_error(const char* what) const {
  std::string got = object_ ? "an object" : std::string(data_.type_name());
  throw ComfyError("TypeError", std::string("expected ") + what + ", got " + got);
}

}  // namespace comfy
