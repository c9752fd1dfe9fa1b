// Resident memory of the mapped weight files. Weights stay in their files, mapped read-only and
// shared (io/safetensors), so every page a network has read counts in the process's RSS until the
// process ends, although the kernel keeps the same bytes in its page cache anyway. These drop a
// model's pages from this process's mappings once a stage is done with them (madvise
// MADV_DONTNEED on the read-only mapping: nothing is lost, and a later read faults the page back
// in from the page cache, without disk I/O while the file stays cached). Memory, not results: the
// tensors are unchanged and stay valid.
#pragma once
#include <cstdint>

#include "models/weights.h"

namespace comfy {

// The pages of the tensors under `w.prefix` that lie in a mapped file (pages shared with a tensor
// outside the prefix are kept). Returns the bytes released (0 for in-memory weights).
int64_t release_weight_pages(const Weights& w);
// Every page of every weight file mapped by WeightSet::from_file that is still open.
int64_t release_all_weight_pages();

}  // namespace comfy
