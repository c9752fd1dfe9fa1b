// Animated PNG frames as Pillow's ImageSequence gives them (LoadImage turns them into a batch):
// every frame is the full canvas after the frame's region was drawn with its blend op (source,
// or over: pasted through its own alpha) on what the previous frame's dispose op (none,
// background = cleared to zeros, previous = restored) left.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "io/image.h"

namespace comfy::io {

// `img` holds the decoded default image (frames[0]); when the file has an acTL chunk, the other
// frames are appended. 16-bit grey ("I") animations keep only the default image. Throws
// ComfyError("OSError") for broken frame data.
void read_apng_frames(const std::vector<uint8_t>& bytes, DecodedImage& img, const std::string& what);

}  // namespace comfy::io
