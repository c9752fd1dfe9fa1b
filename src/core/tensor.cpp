#include "core/tensor.h"

#include <sstream>
#include <thread>

#include <ATen/Parallel.h>

namespace comfy {

std::string Tensor::repr() const {
  std::ostringstream out;
  out << "tensor(shape=[";
  for (int64_t i = 0; i < tensor.dim(); ++i) out << (i ? ", " : "") << tensor.size(i);
  out << "], dtype=" << tensor.dtype() << ")";
  return out.str();
}

const at::Tensor& tensor_of(const Value& v, const char* what) { return v.as<Tensor>(what).tensor; }

void init_torch_runtime() {
  static bool done = [] {
    unsigned n = std::thread::hardware_concurrency();
    at::set_num_threads(n ? static_cast<int>(n) : 1);
    return true;
  }();
  (void)done;
}

}  // namespace comfy
