// Tensor nodes run their body through `torch_guarded`: torch's own errors (a shape that does not
// broadcast, a padding larger than the image) become the ComfyError of the Python exception
// ComfyUI would report (RuntimeError, IndexError, ValueError), with torch's message and no C++
// backtrace. The body runs under InferenceMode, as ComfyUI runs nodes under torch.inference_mode.
#pragma once
#include <c10/core/InferenceMode.h>
#include <c10/util/Exception.h>

#include <utility>

#include "core/error.h"

namespace comfy {

template <class F>
auto torch_guarded(F&& body) -> decltype(body()) {
  c10::InferenceMode guard;
  try {
    return body();
  } catch (const c10::IndexError& e) {
    throw ComfyError("IndexError", e.what_without_backtrace());
  } catch (const c10::ValueError& e) {
    throw ComfyError("ValueError", e.what_without_backtrace());
  } catch (const c10::TypeError& e) {
    throw ComfyError("TypeError", e.what_without_backtrace());
  } catch (const c10::Error& e) {
    throw ComfyError("RuntimeError", e.what_without_backtrace());
  }
}

}  // namespace comfy
