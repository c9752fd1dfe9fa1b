// The few Python str operations ComfyUI's prompt handling relies on, over UTF-8 std::strings:
// Python counts and slices code points, and its split()/strip() know Unicode whitespace.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace comfy::py {

// Python's str.isspace() for one code point (what str.split() and str.strip() use).
bool isspace(char32_t c);
// Code points of UTF-8 text; an invalid byte decodes to U+FFFD.
std::u32string decode_utf8(std::string_view s);
std::string encode_utf8(std::u32string_view s);
// s.split(): runs of Unicode whitespace separate, leading/trailing whitespace ignored.
std::vector<std::string> split(std::string_view s);
// s.strip(chars) for an ASCII set of characters.
std::string strip(std::string_view s, std::string_view chars);
// len(s) in code points.
std::size_t length(std::string_view s);
// s[n:] with n in code points.
std::string slice_from(std::string_view s, std::size_t n);

}  // namespace comfy::py
