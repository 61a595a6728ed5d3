#include "layers.hpp"
#include "pool_kernels.hpp"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <torch/torch.h>

#include <algorithm>

namespace packtrain::models::detail {
namespace {

// The layouts the loops take; anything else goes to torch::max_pool2d.
enum class Layout { none, nchw, nhwc };

Layout layout_of(const torch::Tensor& x) {
  if (!x.device().is_cpu() || x.scalar_type() != torch::kFloat || x.dim() != 4 || x.layout() != torch::kStrided ||
      x.size(2) < 2 || x.size(3) < 2)
    return Layout::none;
  if (x.is_contiguous()) return Layout::nchw;
  if (x.is_contiguous(at::MemoryFormat::ChannelsLast)) return Layout::nhwc;
  return Layout::none;
}

at::MemoryFormat format_of(Layout layout) {
  return layout == Layout::nhwc ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
}

std::size_t size_at(const c10::IntArrayRef sizes, std::size_t d) { return static_cast<std::size_t>(sizes[d]); }

// `loop(first, count)` over `items` (planes or images of `item_size`
// elements each) in pieces over the calling thread's intra-op threads, as
// LibTorch's pooling splits its work.
template <typename Loop>
void in_pieces(std::size_t items, std::size_t item_size, const Loop& loop) {
  const auto grain = static_cast<std::int64_t>(std::max<std::size_t>(1, 32768 / std::max<std::size_t>(1, item_size)));
  at::parallel_for(0, static_cast<std::int64_t>(items), grain, [&](std::int64_t begin, std::int64_t end) {
    loop(static_cast<std::size_t>(begin), static_cast<std::size_t>(end - begin));
  });
}

// Pools `x` (in `layout`) into a new tensor of the same layout; `which`
// (null: not wanted) gets the winners in the output's order.
torch::Tensor pool(const torch::Tensor& x, Layout layout, torch::Tensor* which) {
  RECORD_FUNCTION("packtrain::max_pool_2x2", std::vector<c10::IValue>{});
  const auto sizes = x.sizes();
  auto out = torch::empty({sizes[0], sizes[1], sizes[2] / 2, sizes[3] / 2}, x.options().memory_format(format_of(layout)));
  std::uint8_t* winners = nullptr;
  if (which) {
    *which = torch::empty({out.numel()}, x.options().dtype(torch::kUInt8));
    winners = which->data_ptr<std::uint8_t>();
  }
  const float* in = x.data_ptr<float>();
  float* o = out.data_ptr<float>();
  const std::size_t n = size_at(sizes, 0), c = size_at(sizes, 1), h = size_at(sizes, 2), w = size_at(sizes, 3);
  const std::size_t in_plane = h * w, out_plane = (h / 2) * (w / 2);
  if (layout == Layout::nchw)
    in_pieces(n * c, in_plane, [&](std::size_t first, std::size_t count) {
      kernels::max_pool_2x2(in + first * in_plane, o + first * out_plane, winners ? winners + first * out_plane : nullptr,
                            count, h, w);
    });
  else
    in_pieces(n, in_plane * c, [&](std::size_t first, std::size_t count) {
      kernels::max_pool_2x2_nhwc(in + first * in_plane * c, o + first * out_plane * c,
                                 winners ? winners + first * out_plane * c : nullptr, count, h, w, c);
    });
  return out;
}

// max_pool2d(x, 2) as an autograd function over pool_kernels.cpp's loops:
// the winners (one byte an output) are all backward keeps.
struct MaxPool2x2 : torch::autograd::Function<MaxPool2x2> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x) {
    const auto layout = layout_of(x);
    torch::Tensor which;
    auto out = pool(x, layout, &which);
    ctx->save_for_backward({which});
    ctx->saved_data["sizes"] = x.sizes().vec();
    ctx->saved_data["nhwc"] = layout == Layout::nhwc;
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    RECORD_FUNCTION("packtrain::max_pool_2x2_backward", std::vector<c10::IValue>{});
    const auto which = ctx->get_saved_variables()[0];
    const auto sizes = ctx->saved_data["sizes"].toIntVector();
    const bool nhwc = ctx->saved_data["nhwc"].toBool();
    const auto format = nhwc ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
    const auto grad = grads[0].contiguous(format);
    auto grad_in = torch::empty(sizes, grad.options().memory_format(format));
    const auto n = static_cast<std::size_t>(sizes[0]), c = static_cast<std::size_t>(sizes[1]);
    const auto h = static_cast<std::size_t>(sizes[2]), w = static_cast<std::size_t>(sizes[3]);
    const float* g = grad.data_ptr<float>();
    const std::uint8_t* k = which.data_ptr<std::uint8_t>();
    float* gi = grad_in.data_ptr<float>();
    const std::size_t in_plane = h * w, out_plane = (h / 2) * (w / 2);
    if (nhwc)
      in_pieces(n, in_plane * c, [&](std::size_t first, std::size_t count) {
        kernels::max_pool_2x2_nhwc_backward(g + first * out_plane * c, k + first * out_plane * c,
                                            gi + first * in_plane * c, count, h, w, c);
      });
    else
      in_pieces(n * c, in_plane, [&](std::size_t first, std::size_t count) {
        kernels::max_pool_2x2_backward(g + first * out_plane, k + first * out_plane, gi + first * in_plane, count, h, w);
      });
    return {grad_in};
  }
};

}  // namespace

torch::Tensor max_pool_2x2(const torch::Tensor& x) {
  const auto layout = layout_of(x);
  if (layout == Layout::none) return torch::max_pool2d(x, 2);
  if (x.requires_grad() && torch::GradMode::is_enabled()) return MaxPool2x2::apply(x);
  return pool(x, layout, nullptr);  // evaluation: no winners to keep
}

}  // namespace packtrain::models::detail
