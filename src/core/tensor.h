// Tensors as graph values. ComfyUI passes IMAGE as a float tensor [B,H,W,C] in 0..1 and MASK as
// [B,H,W] (or [H,W]); both travel as a Tensor object, the socket type says which it is.
#pragma once
#include <ATen/ATen.h>

#include <string>

#include "graph/value.h"

namespace comfy {

struct Tensor : Object {
  at::Tensor tensor;
  explicit Tensor(at::Tensor t) : tensor(std::move(t)) {}
  // As Python prints a tensor's type and shape (current_inputs of execution errors show this).
  std::string repr() const override;
};

inline Value tensor_value(at::Tensor t) { return Value::make(Tensor(std::move(t))); }
// The tensor of an IMAGE/MASK input; a TypeError naming `what` if the value is something else.
const at::Tensor& tensor_of(const Value& v, const char* what);

// Sets torch's threads and kernels once per process (Debian's torch starts with one thread).
void init_torch_runtime();

}  // namespace comfy
