// libFuzzer: a run's journal.sqlite as --resume and `packtrain report` read
// it, damaged. Opened and read, or refused with packtrain::Error, never a
// crash; a journal that opens gives records whose fields can be used.
#include "input_file.hpp"

#include <packtrain/scheduler/error.hpp>
#include <packtrain/scheduler/journal.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <unistd.h>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const auto dir = std::filesystem::temp_directory_path() / ("fuzz_journal." + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);  // SQLite's -wal and -journal files of the last input too
  std::filesystem::create_directories(dir);
  const auto path = dir / "journal.sqlite";
  packtrain::fuzz::write_input(path, data, size);
  try {
    const auto journal = packtrain::Journal::open_existing(path);
    for (const auto& r : journal->records()) {
      (void)r.metrics.dump();
      (void)journal->find(r.id);
    }
    for (const char* key : {"command", "flags", "columns", "cores", "sweep_jobs", "shard", "summary"})
      (void)journal->meta(key);
  } catch (const packtrain::Error&) {
  }
  // As --resume opens it: to write (an older journal gains its new column).
  try {
    const auto journal = packtrain::Journal::open(path);
    (void)journal->records();
  } catch (const packtrain::Error&) {
  }
  return 0;
}
