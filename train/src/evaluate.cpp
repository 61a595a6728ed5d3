#include <packtrain/scheduler/error.hpp>
#include <packtrain/train/evaluate.hpp>

#include <torch/torch.h>

#include <algorithm>
#include <limits>

namespace packtrain::train {

EvalSums evaluate_batch(const std::function<at::Tensor(const at::Tensor&)>& forward, const data::Dataset& part,
                        const at::Tensor& idx) {
  return eval_sums(forward(part.images.index_select(0, idx)), part.labels.index_select(0, idx));
}

EvalSums eval_sums(const at::Tensor& logits, const at::Tensor& labels) {
  EvalSums sums;
  sums.loss = torch::nn::functional::cross_entropy(
                  logits, labels, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                  .item<double>();
  const auto k = std::min<std::int64_t>(5, logits.size(1));
  const auto best = std::get<1>(logits.topk(k, 1));  // B x k, best first
  const auto hits = best.eq(labels.unsqueeze(1));     // B x k
  sums.top1 = hits.select(1, 0).sum().item<std::int64_t>();
  sums.top5 = hits.any(1).sum().item<std::int64_t>();
  return sums;
}

EvalMetrics evaluate(torch::nn::Module& model, const std::function<at::Tensor(const at::Tensor&)>& forward,
                     const data::Dataset& part, const at::Tensor& indices, std::int64_t batch_size) {
  if (batch_size < 1) throw Error("evaluation batch size must be at least 1");
  constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  const std::int64_t n = indices.defined() ? indices.numel() : 0;
  if (n == 0) return EvalMetrics{kNaN, kNaN, kNaN, 0};

  const bool was_training = model.is_training();
  model.eval();
  torch::NoGradGuard no_grad;
  double loss_sum = 0;
  std::int64_t top1 = 0;
  std::int64_t top5 = 0;
  for (std::int64_t start = 0; start < n; start += batch_size) {
    const auto sums = evaluate_batch(forward, part, indices.narrow(0, start, std::min(batch_size, n - start)));
    loss_sum += sums.loss;
    top1 += sums.top1;
    top5 += sums.top5;
  }
  if (was_training) model.train();
  const auto count = static_cast<double>(n);
  return EvalMetrics{loss_sum / count, static_cast<double>(top1) / count, static_cast<double>(top5) / count, n};
}

}  // namespace packtrain::train
