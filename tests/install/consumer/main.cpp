// Runs two dependent jobs through an installed packtrain and prints their order.
#include <packtrain/scheduler/job_runner.hpp>

#include <cstdio>

int main() {
  const auto node = packtrain::detect_node_resources();
  packtrain::Executor executor(node.cores);
  packtrain::JobRunner runner(executor, node);
  packtrain::Job first;
  first.name = "first";
  first.spec = {{"step", 1}};
  first.run = [](packtrain::JobContext&) {
    std::puts("ran first");
    return packtrain::JobOutcome{};
  };
  packtrain::Job second = first;
  second.name = "second";
  second.spec = {{"step", 2}};
  second.after = {runner.add(first)};
  second.run = [](packtrain::JobContext&) {
    std::puts("ran second");
    return packtrain::JobOutcome{};
  };
  runner.add(second);
  const auto summary = runner.run();
  std::printf("consumer: %d done\n", summary.done);
  return summary.exit_code();
}
