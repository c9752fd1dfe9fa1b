#include "nodes/quantize.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <unordered_map>

namespace comfy::quantize {

Rgb8::Rgb8(int64_t w, int64_t h, const uint8_t* pixels) : width(w), height(h), data(static_cast<size_t>(w * h * 3)) {
  if (pixels) std::copy(pixels, pixels + data.size(), data.begin());
}

namespace {

// ------------------------------------------------------------------ median cut

struct Colour {
  std::array<int, 3> v;
  uint32_t count;
};

struct Box {
  std::vector<int> colours;  // indices into the colour table
  uint32_t pixel_count = 0;
  std::unique_ptr<Box> left, right;
  int volume() const {
    int volume = 1;
    for (int axis = 0; axis < 3; ++axis) volume *= extent(axis) + 1;
    return volume;
  }
  int extent(int axis) const { return max_[axis] - min_[axis]; }
  void bounds(const std::vector<Colour>& table) {
    min_ = {255, 255, 255};
    max_ = {0, 0, 0};
    for (int c : colours)
      for (int a = 0; a < 3; ++a) {
        min_[a] = std::min(min_[a], table[c].v[a]);
        max_[a] = std::max(max_[a], table[c].v[a]);
      }
  }

 private:
  std::array<int, 3> min_{}, max_{};
};

// Pillow's binary max-heap of boxes by pixel count. Its exact sift order decides which of two
// equally populous boxes is split first, so it is reproduced as written, 1-based.
class BoxHeap {
 public:
  void push(Box* box) {
    heap_.push_back(nullptr);
    size_t k = heap_.size() - 1;
    while (k != 1) {
      if (cmp(box, heap_[k / 2]) <= 0) break;
      heap_[k] = heap_[k / 2];
      k >>= 1;
    }
    heap_[k] = box;
  }
  Box* pop() {
    if (heap_.size() <= 1) return nullptr;
    Box* top = heap_[1];
    Box* last = heap_.back();
    heap_.pop_back();
    size_t count = heap_.size() - 1, k = 1, l;
    for (; k * 2 <= count; k = l) {
      l = k * 2;
      if (l < count && cmp(heap_[l], heap_[l + 1]) < 0) ++l;
      if (cmp(last, heap_[l]) > 0) break;
      heap_[k] = heap_[l];
    }
    if (count > 0) heap_[k] = last;
    return top;
  }

 private:
  static int cmp(const Box* a, const Box* b) { return static_cast<int>(a->pixel_count) - static_cast<int>(b->pixel_count); }
  std::vector<Box*> heap_ = {nullptr};
};

// Splits a box at the median pixel along its widest axis (extents weighted 77/150/29, as luminance).
void split(Box& box, const std::vector<Colour>& table) {
  const int weights[3] = {77, 150, 29};
  int axis = 0, best = box.extent(0) * weights[0];
  for (int a = 1; a < 3; ++a)
    if (best < box.extent(a) * weights[a]) best = box.extent(a) * weights[a], axis = a;

  std::vector<int> sorted = box.colours;
  std::stable_sort(sorted.begin(), sorted.end(), [&](int a, int b) { return table[a].v[axis] > table[b].v[axis]; });
  size_t n = sorted.size(), i = 0;
  uint32_t taken = 0, left_count = 0, right_count = 0;
  while (i < n) {
    taken += table[sorted[i]].count;
    left_count += table[sorted[i]].count;
    ++i;
    if (taken * 2 > box.pixel_count) break;
  }
  if (i < n) {  // colours equal to the median one stay on its side
    int median = table[sorted[i - 1]].v[axis];
    for (; i < n && table[sorted[i]].v[axis] == median; ++i) left_count += table[sorted[i]].count;
  }
  size_t cut = i;
  for (size_t j = cut; j < n; ++j) right_count += table[sorted[j]].count;
  if (cut == n) {  // nothing left for the right: it takes the smallest value
    int smallest = table[sorted[n - 1]].v[axis];
    while (cut > 0 && table[sorted[cut - 1]].v[axis] == smallest) {
      --cut;
      left_count -= table[sorted[cut]].count;
      right_count += table[sorted[cut]].count;
    }
  }
  box.left = std::make_unique<Box>();
  box.right = std::make_unique<Box>();
  box.left->colours.assign(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(cut));
  box.right->colours.assign(sorted.begin() + static_cast<std::ptrdiff_t>(cut), sorted.end());
  box.left->pixel_count = left_count;
  box.right->pixel_count = right_count;
  box.left->bounds(table);
  box.right->bounds(table);
}

// Numbers the leaves left to right: each colour gets its box's palette index.
void number_leaves(const Box& box, std::vector<int>& palette_index, int& next) {
  if (box.left && box.right) {
    number_leaves(*box.left, palette_index, next);
    number_leaves(*box.right, palette_index, next);
    return;
  }
  for (int c : box.colours) palette_index[c] = next;
  if (!box.colours.empty()) ++next;
}

// Pillow counts colours in a hash table whose keys compare by this hash, so two colours with
// the same hash count as one (the first one seen).
uint32_t pixel_hash(uint32_t r, uint32_t g, uint32_t b) { return (r * 463) ^ ((g << 8) * 10069) ^ ((b << 16) * 64997); }

// ------------------------------------------------------------------ palette lookup

// The palette entry nearest (squared RGB distance, first entry on ties) to the colour's cell
// corner (each channel with its two low bits cleared), as Pillow's colour cache answers.
class Nearest {
 public:
  explicit Nearest(const Palette& palette) : palette_(palette), cache_(64 * 64 * 64, -1) {}
  int operator()(int r, int g, int b) {
    int16_t& slot = cache_[(r >> 2) + (g >> 2) * 64 + (b >> 2) * 64 * 64];
    if (slot < 0) {
      int cr = r & ~3, cg = g & ~3, cb = b & ~3;
      unsigned best = ~0u;
      for (size_t i = 0; i < palette_.size(); ++i) {
        int dr = cr - palette_[i][0], dg = cg - palette_[i][1], db = cb - palette_[i][2];
        unsigned d = static_cast<unsigned>(dr * dr + dg * dg + db * db);
        if (d < best) best = d, slot = static_cast<int16_t>(i);
      }
    }
    return slot;
  }

 private:
  const Palette& palette_;
  std::vector<int16_t> cache_;
};

int clip8(int v) { return v <= 0 ? 0 : v < 256 ? v : 255; }

}  // namespace

Palette median_cut_palette(const Rgb8& image, int colors) {
  size_t pixels = static_cast<size_t>(image.width * image.height);
  if (pixels == 0) return {};
  std::vector<Colour> table;
  std::vector<int> colour_of(pixels);
  std::unordered_map<uint32_t, int> by_hash;
  for (size_t i = 0; i < pixels; ++i) {
    const uint8_t* p = &image.data[i * 3];
    auto [it, inserted] = by_hash.try_emplace(pixel_hash(p[0], p[1], p[2]), static_cast<int>(table.size()));
    if (inserted) table.push_back({{p[0], p[1], p[2]}, 0});
    table[it->second].count++;
    colour_of[i] = it->second;
  }

  Box root;
  for (size_t c = 0; c < table.size(); ++c) root.colours.push_back(static_cast<int>(c));
  root.pixel_count = static_cast<uint32_t>(pixels);
  root.bounds(table);
  BoxHeap heap;
  heap.push(&root);
  for (int remaining = colors; --remaining > 0;) {
    Box* box;
    do {
      box = heap.pop();
    } while (box && box->volume() == 1);
    if (!box) break;
    split(*box, table);
    heap.push(box->left.get());
    heap.push(box->right.get());
  }

  std::vector<int> palette_index(table.size());
  int entries = 0;
  number_leaves(root, palette_index, entries);
  std::vector<std::array<uint64_t, 3>> sum(entries, {0, 0, 0});
  std::vector<uint64_t> count(entries, 0);
  for (size_t i = 0; i < pixels; ++i) {
    int e = palette_index[colour_of[i]];
    for (int a = 0; a < 3; ++a) sum[e][a] += image.data[i * 3 + a];
    count[e]++;
  }
  // Pillow 9.4's quantized image keeps a full 256-entry palette: the unused entries are black,
  // and both the palette mapping and ComfyUI's Bayer spread (256 / palette size) see them.
  Palette palette(std::max(entries, 256), {0, 0, 0});
  for (int e = 0; e < entries; ++e)
    for (int a = 0; a < 3; ++a)
      palette[e][a] = static_cast<uint8_t>(static_cast<int>(.5 + static_cast<double>(sum[e][a]) / static_cast<double>(count[e])));
  return palette;
}

Rgb8 to_palette(const Rgb8& image, const Palette& palette, bool floyd_steinberg) {
  Rgb8 out(image.width, image.height);
  Nearest nearest(palette);
  if (!floyd_steinberg) {
    for (int64_t y = 0; y < image.height; ++y)
      for (int64_t x = 0; x < image.width; ++x) {
        const uint8_t* p = image.at(x, y);
        const auto& c = palette[nearest(p[0], p[1], p[2])];
        std::copy(c.begin(), c.end(), out.at(x, y));
      }
    return out;
  }
  // Pillow's error diffusion (7/16 right, 3/16 below left, 5/16 below, 1/16 below right, integer
  // arithmetic). `errors` holds, per column slot, what the next row receives; it is not cleared
  // between rows, and the slot after the last column receives the blue sums in all three
  // channels, as Pillow's does.
  std::vector<int> errors(static_cast<size_t>(image.width + 1) * 3, 0);
  for (int64_t y = 0; y < image.height; ++y) {
    int carry[3] = {0, 0, 0}, below0[3] = {0, 0, 0}, below1[3] = {0, 0, 0}, below2[3] = {0, 0, 0};
    int* e = errors.data();
    for (int64_t x = 0; x < image.width; ++x, e += 3) {
      const uint8_t* p = image.at(x, y);
      int v[3];
      for (int a = 0; a < 3; ++a) v[a] = clip8(p[a] + (carry[a] + e[3 + a]) / 16);
      int index = nearest(v[0], v[1], v[2]);
      const auto& c = palette[index];
      std::copy(c.begin(), c.end(), out.at(x, y));
      for (int a = 0; a < 3; ++a) {
        int err = v[a] - c[a];
        below2[a] = err;
        e[a] = 3 * err + below0[a];
        below0[a] = 5 * err + below1[a];
        below1[a] = below2[a];
        carry[a] = 7 * err;
      }
    }
    e[0] = below0[2];
    e[1] = below1[2];
    e[2] = below2[2];
  }
  return out;
}

Rgb8 bayer(const Rgb8& image, const Palette& palette, int order) {
  // ComfyUI's normalized Bayer matrix, in float32 as numpy computes it.
  int levels = 0;
  while ((1 << levels) < order) ++levels;
  std::vector<float> m = {0.0f};
  int size = 1;
  for (int n = 1; n <= levels; ++n) {
    float q = static_cast<float>(1 << (2 * n));
    int next = size * 2;
    std::vector<float> grown(static_cast<size_t>(next * next));
    for (int y = 0; y < size; ++y)
      for (int x = 0; x < size; ++x) {
        float v = q * m[y * size + x];
        grown[y * next + x] = (v - 1.5f) / q;
        grown[y * next + x + size] = (v + 0.5f) / q;
        grown[(y + size) * next + x] = (v + 1.5f) / q;
        grown[(y + size) * next + x + size] = (v - 0.5f) / q;
      }
    m = std::move(grown);
    size = next;
  }
  float spread = static_cast<float>(2.0 * 256 / static_cast<double>(palette.size()));
  for (auto& v : m) v = spread * v + 0.5f;

  Rgb8 dithered(image.width, image.height);
  for (int64_t y = 0; y < image.height; ++y)
    for (int64_t x = 0; x < image.width; ++x) {
      float t = m[(y % size) * size + (x % size)];
      for (int a = 0; a < 3; ++a) {
        float v = std::clamp(static_cast<float>(image.at(x, y)[a]) + t, 0.0f, 255.0f);
        dithered.at(x, y)[a] = static_cast<uint8_t>(v);
      }
    }
  return to_palette(dithered, palette, false);
}

}  // namespace comfy::quantize
