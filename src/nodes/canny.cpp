// ComfyUI's comfy_extras/nodes_canny.py: Canny (kornia.filters.canny, the second output, as a
// 3-channel IMAGE).
#include "nodes/canny.h"

#include <cmath>

#include "core/tensor.h"
#include "graph/execution_context.h"
#include "nodes/all.h"
#include "nodes/torch_errors.h"

namespace comfy {
namespace {

// The 3x3 kernels that pick neighbour k (k = 0: right, then clockwise in image coordinates: down-right,
// down, down-left, left, up-left, up, up-right), as kornia's NMS and hysteresis kernels order them.
const int kNeighbour[8][2] = {{1, 2}, {2, 2}, {2, 1}, {2, 0}, {1, 0}, {0, 0}, {0, 1}, {0, 2}};

at::Tensor neighbour_kernels(double centre, double neighbour) {
  at::Tensor k = at::zeros({8, 1, 3, 3}, at::kFloat);
  for (int i = 0; i < 8; ++i) {
    k[i][0][1][1] = centre;
    k[i][0][kNeighbour[i][0]][kNeighbour[i][1]] = neighbour;
  }
  return k;
}

// kornia.filters.gaussian_blur2d((5, 5), (1, 1)), reflect border, separable (rows, then columns).
at::Tensor gaussian_blur(const at::Tensor& x) {
  std::vector<float> g(5);
  float sum = 0;
  for (int i = 0; i < 5; ++i) {
    const float d = static_cast<float>(i - 2);
    g[static_cast<size_t>(i)] = std::exp(-(d * d) / 2.0f);
    sum += g[static_cast<size_t>(i)];
  }
  at::Tensor k = at::tensor(g, at::kFloat) / sum;
  at::Tensor padded = at::reflection_pad2d(x, {2, 2, 2, 2});
  at::Tensor h = at::conv2d(padded, k.view({1, 1, 1, 5}));
  return at::conv2d(h, k.view({1, 1, 5, 1}));
}

}  // namespace

at::Tensor kornia_canny(const at::Tensor& image, double low_threshold, double high_threshold) {
  if (image.dim() != 4) throw ComfyError("ValueError", "Invalid input shape, we expect BxCxHxW.");
  if (low_threshold > high_threshold)
    throw ComfyError("ValueError", "Invalid input thresholds. low_threshold should be smaller than the high_threshold.");
  at::Tensor x = image.to(at::kFloat);
  if (x.size(1) == 3)
    x = x.select(1, 0).unsqueeze(1) * 0.299 + x.select(1, 1).unsqueeze(1) * 0.587 + x.select(1, 2).unsqueeze(1) * 0.114;
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  at::Tensor blurred = gaussian_blur(x.reshape({B * C, 1, H, W}));
  // spatial_gradient(normalized=False): Sobel, replicate border.
  at::Tensor sobel_x = at::tensor({-1.f, 0.f, 1.f, -2.f, 0.f, 2.f, -1.f, 0.f, 1.f}).view({1, 1, 3, 3});
  at::Tensor sobel_y = sobel_x.transpose(2, 3).contiguous();
  at::Tensor rp = at::replication_pad2d(blurred, {1, 1, 1, 1});
  at::Tensor gx = at::conv2d(rp, sobel_x).view({B, C, H, W});
  at::Tensor gy = at::conv2d(rp, sobel_y).view({B, C, H, W});

  at::Tensor magnitude = at::sqrt(gx * gx + gy * gy + 1e-6);
  at::Tensor angle = at::atan2(gy, gx);
  angle = (angle * 180.0) / at::scalar_tensor(M_PI, at::kFloat);
  angle = at::round(angle / 45) * 45;

  // Non-maximum suppression: the centre minus the neighbour on each side of the gradient direction.
  at::Tensor nms = at::conv2d(magnitude.reshape({B * C, 1, H, W}), neighbour_kernels(1.0, -1.0), {}, 1, 1)
                       .view({B, C * 8, H, W});
  at::Tensor pos = at::remainder(angle / 45, 8).to(at::kLong);
  at::Tensor neg = at::remainder(angle / 45 + 4, 8).to(at::kLong);
  at::Tensor is_max = at::minimum(at::gather(nms, 1, pos), at::gather(nms, 1, neg)) > 0.0;
  magnitude = magnitude * is_max;

  at::Tensor low = (magnitude > low_threshold).to(at::kFloat);
  at::Tensor high = (magnitude > high_threshold).to(at::kFloat);
  at::Tensor edges = low * 0.5 + high * 0.5;

  // Hysteresis.
  at::Tensor hk = neighbour_kernels(0.0, 1.0);
  at::Tensor edges_old = -at::ones_like(edges);
  at::Tensor hyst;
  while ((edges_old - edges).abs().ne(0).any().item<bool>()) {
    at::Tensor weak = (edges == 0.5).to(at::kFloat);
    at::Tensor strong = (edges == 1).to(at::kFloat);
    at::Tensor n = at::conv2d(edges.reshape({B * C, 1, H, W}), hk, {}, 1, 1).view({B, C * 8, H, W});
    // any over the 8 neighbours of each channel (C is 1 for kornia's gray input)
    hyst = (n == 1).view({B, C, 8, H, W}).any(2).to(at::kFloat);
    hyst = hyst * weak + strong;
    edges_old = edges;
    edges = hyst + (hyst == 0).to(at::kFloat) * weak * 0.5;
  }
  return hyst;
}

namespace {

NodeDef Canny() {
  return NodeDef("Canny")
      .schema_v3()
      .category("image/preprocessors")
      .python_module("comfy_extras.nodes_canny")
      .input("image", "IMAGE", json::object())
      .input("low_threshold", "FLOAT", {{"default", 0.4}, {"min", 0.01}, {"max", 0.99}, {"step", 0.01}})
      .input("high_threshold", "FLOAT", {{"default", 0.8}, {"min", 0.01}, {"max", 0.99}, {"step", 0.01}})
      .output("IMAGE")
      .run([](ExecutionContext&, const NodeInputs& in) {
        return torch_guarded([&] {
          at::Tensor image = tensor_of(in["image"], "IMAGE").movedim(-1, 1);
          at::Tensor edges = kornia_canny(image, in.get_float("low_threshold"), in.get_float("high_threshold"));
          return NodeOutput({tensor_value(edges.repeat({1, 3, 1, 1}).movedim(1, -1).contiguous())});
        });
      });
}

}  // namespace

void register_canny(Registry& r) { r.add(Canny()); }

}  // namespace comfy
