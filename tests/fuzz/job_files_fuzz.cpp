// libFuzzer: a job's files as another rank sends them (job_files.hpp). Any
// message must be decoded or refused with packtrain::Error, never crash,
// leak or write outside the run's folder.
#include <packtrain/distributed/job_files.hpp>
#include <packtrain/scheduler/error.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <unistd.h>

namespace {

// This process's run folder, inside a parent the decoder must never write
// beside it (checked after every message).
struct Folders {
  std::filesystem::path parent, root;
  Folders() {
    parent = std::filesystem::temp_directory_path() / ("fuzz_job_files." + std::to_string(::getpid()));
    root = parent / "run";
    std::filesystem::create_directories(root);
  }
  ~Folders() {
    std::error_code ec;
    std::filesystem::remove_all(parent, ec);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Folders folders;
  try {
    (void)packtrain::distributed::decode_job_files(std::string_view(reinterpret_cast<const char*>(data), size),
                                                   folders.root);
  } catch (const packtrain::Error&) {
    // refused with its one line: what a damaged message must get
  }
  // Nothing beside the run's folder, and the folder emptied for the next input.
  for (const auto& entry : std::filesystem::directory_iterator(folders.parent))
    if (entry.path() != folders.root) std::abort();  // a write outside the run's folder
  std::filesystem::remove_all(folders.root);
  std::filesystem::create_directories(folders.root);
  return 0;
}
