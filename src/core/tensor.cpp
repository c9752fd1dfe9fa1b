#include "core/tensor.h"

#include <cstdlib>
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
    // Debian's torch picks its AVX2 kernels on AVX-512 CPUs unless told otherwise; the choice is
    // read when the first CPU kernel is dispatched, so this must run before any tensor work.
    // torch trusts the variable without checking the CPU, so ask only where AVX-512 is there.
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
      setenv("ATEN_CPU_CAPABILITY", "avx512", /*overwrite=*/0);
#endif
    unsigned n = std::thread::hardware_concurrency();
    at::set_num_threads(n ? static_cast<int>(n) : 1);
    return true;
  }();
  (void)done;
}

}  // namespace comfy
