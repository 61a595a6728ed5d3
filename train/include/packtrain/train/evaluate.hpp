#pragma once
// Loss and top-1 / top-5 accuracy of a model on an index view.
//
//   auto m = packtrain::train::evaluate(*model, data->test, packtrain::data::all_indices(data->test));
//   std::printf("test top-1 %.4f\n", m.top1);

#include <packtrain/data/dataset.hpp>

#include <torch/nn/module.h>

#include <cstdint>
#include <functional>

namespace packtrain::train {

struct EvalMetrics {
  double loss = 0;           // mean cross-entropy
  double top1 = 0;           // share of samples whose label is the top logit
  double top5 = 0;           // ... among the top 5 (1 with 5 classes or fewer)
  std::int64_t samples = 0;
};

// Runs `forward` in eval mode without gradients over `indices` of `part`, in
// batches, and puts the module back in the mode it was in. Non-finite logits
// give a NaN loss, never an exception. An empty view gives NaN metrics.
EvalMetrics evaluate(torch::nn::Module& model, const std::function<at::Tensor(const at::Tensor&)>& forward,
                     const data::Dataset& part, const at::Tensor& indices, std::int64_t batch_size = 1000);

// What evaluate() adds up over one batch (`idx`: the batch's sample numbers
// in `part`), for callers that spread an evaluation's batches over threads
// and add the sums up in batch order: the same bits as evaluate(). The
// caller puts the model in eval mode and turns gradients off.
struct EvalSums {
  double loss = 0;  // summed cross-entropy
  std::int64_t top1 = 0;
  std::int64_t top5 = 0;
};
EvalSums evaluate_batch(const std::function<at::Tensor(const at::Tensor&)>& forward, const data::Dataset& part,
                        const at::Tensor& idx);
// The same sums of one batch's B x classes logits against its labels.
EvalSums eval_sums(const at::Tensor& logits, const at::Tensor& labels);

// The same for any module with `at::Tensor forward(at::Tensor)` (every zoo model).
template <typename Net>
EvalMetrics evaluate(Net& model, const data::Dataset& part, const at::Tensor& indices, std::int64_t batch_size = 1000) {
  return evaluate(
      model, [&model](const at::Tensor& x) { return model.forward(x); }, part, indices, batch_size);
}

}  // namespace packtrain::train
