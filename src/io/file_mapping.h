// A whole file mapped read-only and shared (MAP_SHARED): the readers' tensors are views into it,
// and each holds it through a shared_ptr, so it is unmapped when the last view goes.
#pragma once
#include <sys/mman.h>

#include <cstddef>

namespace comfy::io {

struct FileMapping {
  void* addr = MAP_FAILED;
  std::size_t size = 0;
  FileMapping() = default;
  FileMapping(const FileMapping&) = delete;
  FileMapping& operator=(const FileMapping&) = delete;
  ~FileMapping() {
    if (addr != MAP_FAILED) ::munmap(addr, size);
  }
};

}  // namespace comfy::io
