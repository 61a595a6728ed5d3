// bench_batch: a plan of three entries (a kfold sweep of two models, a
// lottery-ticket sweep and a Hogwild run) as one `packtrain batch` against
// the three commands run one after another, each a real process, in
// alternating rounds in one run. Prints the median makespans (the commands'
// added up) and their ratio (target >= 1.1: the entries' tails overlap).
//
// Usage: bench_batch [--rounds N] [--limit N] [--packtrain PATH] [--plan FILE]
//   --plan: the entries to time (default: the plan below, written to a
//   temporary folder); each runs alone as `packtrain KIND --FLAG VALUE ...`.
#include <common/process.hpp>
#include <common/stats.hpp>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace {

struct Entry {
  std::string kind;
  std::vector<std::string> flags;  // --key value ...
};

// The default plan's entries (the plan file's text is made from them).
std::vector<Entry> default_entries(const std::string& limit) {
  return {
      {"kfold", {"--models", "mlp,lenet5", "--schedules", "cosine", "--folds", "3", "--epochs", "1", "--limit", limit}},
      {"lth", {"--model", "mlp", "--epochs", "2", "--sparsities", "0.5,0.8,0.9", "--limit", limit}},
      {"hogwild", {"--model", "mlp", "--epochs", "2", "--limit", limit}},
  };
}

std::string plan_text(const std::vector<Entry>& entries) {
  std::string text = "seed = 1\n";
  for (const auto& e : entries) {
    text += "\n[[" + e.kind + "]]\n";
    for (std::size_t i = 0; i + 1 < e.flags.size(); i += 2) {
      const auto& v = e.flags[i + 1];
      const bool number = !v.empty() && v.find_first_not_of("0123456789.") == std::string::npos &&
                          v.find(',') == std::string::npos;
      text += e.flags[i].substr(2) + " = " + (number ? v : "\"" + v + "\"") + "\n";
    }
  }
  return text;
}

double makespan(const std::filesystem::path& out) {
  std::ifstream in(out / "results.json");
  const auto json = nlohmann::json::parse(in, nullptr, false);
  if (!json.is_object() || !json.contains("summary")) {
    std::fprintf(stderr, "bench_batch: no results.json in %s\n", out.c_str());
    std::exit(1);
  }
  return json["summary"]["makespan_s"].get<double>();
}

void must(const packtrain::bench::ProcessResult& r, const std::string& what) {
  if (r.ok()) return;
  std::fprintf(stderr, "bench_batch: %s failed (exit %d)\n", what.c_str(), r.exit_code);
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 3;
  std::string limit = "12000";  // docs/performance.md: also --limit 60000 (every image)
  std::string packtrain =
      (std::filesystem::canonical("/proc/self/exe").parent_path() / "../../cli/packtrain").lexically_normal().string();
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--rounds" && i + 1 < argc) {
      rounds = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--limit" && i + 1 < argc) {
      limit = argv[++i];
    } else if (a == "--packtrain" && i + 1 < argc) {
      packtrain = argv[++i];
    } else {
      std::fprintf(stderr,
                   "usage: bench_batch [--rounds N] [--limit SAMPLES] [--packtrain PATH]\n"
                   "  one packtrain batch of kfold (mlp, lenet5), lth and hogwild entries against the three "
                   "commands one after another\n");
      return a == "--help" || a == "-h" ? 0 : 2;
    }
  }
  const auto entries = default_entries(limit);
  const auto dir = std::filesystem::temp_directory_path() / ("bench_batch." + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto plan = dir / "plan.toml";
  std::ofstream(plan) << plan_text(entries);
  std::printf("bench_batch: %d round(s), plan %s:\n%s\n", rounds, plan.c_str(), plan_text(entries).c_str());

  std::vector<double> batch_s, sequential_s;
  for (int round = 0; round < rounds; ++round) {
    // Alternate which goes first: a machine that slows down mid-bench slows both alike.
    for (int turn = 0; turn < 2; ++turn) {
      if ((turn == 0) == (round % 2 == 0)) {
        const auto out = dir / "batch";
        must(packtrain::bench::run_packtrain(packtrain, "batch", out, {plan.string()}, false), "packtrain batch");
        batch_s.push_back(makespan(out));
      } else {
        double total = 0;
        for (const auto& e : entries) {
          const auto out = dir / e.kind;
          must(packtrain::bench::run_packtrain(packtrain, e.kind, out, e.flags, false), "packtrain " + e.kind);
          total += makespan(out);
        }
        sequential_s.push_back(total);
      }
    }
    std::printf("round %d: batch %.1f s, the three commands one after another %.1f s\n", round + 1, batch_s.back(),
                sequential_s.back());
    std::fflush(stdout);
  }
  const double b = packtrain::bench::median(batch_s), s = packtrain::bench::median(sequential_s);
  std::printf("median makespan: batch %.1f s, one after another %.1f s: the batch is %.2fx shorter (target >= 1.1)\n",
              b, s, s / b);
  std::filesystem::remove_all(dir);
  return 0;
}
