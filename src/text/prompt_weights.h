// ComfyUI's prompt weighting syntax (comfy/sd1_clip.py: escape_important, parse_parentheses,
// token_weights):
//   (text)        weight x 1.1 per level of nesting: ((a)) = 1.1 * 1.1 (computed in doubles, so
//                 1.2100000000000002 as in Python);
//   (text:1.3)    the weight is the number after the LAST ':' inside the group (Python float()
//                 syntax: "1.3", " 2 ", "-1", "1e-1", "1_0", "inf"); it replaces the enclosing
//                 weight rather than multiplying it; a colon at position 0 or a non-number keeps
//                 the text (colon included) at the group's 1.1x weight;
//   \( and \)     literal parentheses;
//   [text]        nothing special: square brackets are ordinary text in ComfyUI;
//   unbalanced    an unclosed "(" stays literal text; a stray ")" is literal text too.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace comfy {

struct WeightedSegment {
  std::string text;  // with \( \) already turned back into ( )
  double weight = 1.0;
  bool operator==(const WeightedSegment&) const = default;
};

// The text cut into runs of equal weight, in order (empty runs between groups included, as
// ComfyUI keeps them: each still takes a word id).
std::vector<WeightedSegment> parse_prompt_weights(std::string_view text);

// What ComfyUI's disable_weights path leaves of the text: only the \( \) escapes are undone.
std::string unescape_prompt(std::string_view text);

// Python's float(str) for the weight syntax; nullopt where Python raises ValueError.
// (ASCII digits only: Python would also accept other Unicode decimal digits.)
std::optional<double> parse_python_float(std::string_view s);

}  // namespace comfy
