// A K-fold sweep shared between MPI ranks: every rank builds the same jobs,
// starts with its share, and steals from the others when it runs dry.
// Rank 0 prints the summary.
//
//   mpirun -np 2 ./distributed_fashion_mnist
//   srun -N 4 --ntasks-per-node=1 --cpus-per-task=32 ./distributed_fashion_mnist
#include <packtrain/data/dataset.hpp>
#include <packtrain/distributed/mpi_sharing.hpp>
#include <packtrain/kfold/kfold.hpp>

#include <cstdio>

namespace {

constexpr int kFolds = 4;
constexpr int kEpochs = 1;
constexpr std::int64_t kSamples = 8'000;

}  // namespace

int main() {
  packtrain::distributed::MpiSession mpi;  // first, before any other thread

  auto data = packtrain::data::shared_dataset("fashion-mnist");
  packtrain::kfold::KFold sweep(data, packtrain::kfold::KFoldOptions().folds(kFolds).limit(kSamples).trainer(
                                          packtrain::train::TrainOptions().epochs(kEpochs)));
  sweep.add_model("mlp").add_model("lenet5").add_schedule(packtrain::train::Schedule::cosine);

  // This rank's cores: mpirun/srun bind each rank, and the affinity mask says where.
  const auto node = packtrain::detect_node_resources();
  packtrain::Executor executor(node.cores);
  packtrain::JobRunner runner(executor, node);
  for (auto& job : sweep.jobs()) runner.add(std::move(job));

  // Each rank keeps the files its jobs make in a folder of its own.
  const auto folder = std::filesystem::temp_directory_path() / ("packtrain-rank-" + std::to_string(mpi.rank()));
  packtrain::distributed::MpiWorkSharing sharing(mpi, runner, folder);
  packtrain::RunOptions options;
  options.rank = mpi.rank();
  options.sharing = &sharing;
  auto run = runner.run(options);
  sharing.finish();

  const auto stats = sharing.stats();
  std::printf("rank %d: ran %d job(s) of %zu, %d steal(s)\n", mpi.rank(),
              static_cast<int>(std::count_if(run.jobs.begin(), run.jobs.end(),
                                             [&](const packtrain::JobRecord& r) { return r.rank == mpi.rank(); })),
              run.jobs.size(), stats.steals);
  if (mpi.rank() == 0) {
    const auto result = packtrain::kfold::result_of(std::move(run));
    std::printf("%s", packtrain::kfold::format_summary(result, node.core_count()).c_str());
    return result.run.exit_code();
  }
  return run.exit_code();
}
