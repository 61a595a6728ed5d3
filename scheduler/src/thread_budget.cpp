#include <packtrain/scheduler/thread_budget.hpp>

#include <packtrain/scheduler/executor.hpp>

#include <omp.h>

namespace packtrain {

void apply_thread_budget(const std::vector<int>& cores) {
  pin_current_thread(cores);
  const int n = static_cast<int>(cores.size());
  omp_set_num_threads(n);
  if (n > 1) {
#pragma omp parallel num_threads(n)
    pin_current_thread(cores);
  }
}

}  // namespace packtrain
