#pragma once
// A job's files as one message: the one codec for them, used wherever they
// travel (a job's end sent to other ranks, rank 0's hand-off of the jobs
// done before a --resume). No MPI here: the caller moves the bytes.
//
// A job's files are those its record lists in JobRecord::artifacts (what
// the job returned in JobOutcome::artifacts), paths relative to the run's
// folder (each rank has its own folder; no shared filesystem is assumed).
//
// Wire format: a 4-byte little-endian length N, N bytes of JSON header (the
// caller's fields plus "files": [{"path": P, "size": S}, ...]), then the
// files' bytes in that order, and nothing after them. Decoding checks every
// size against what is left before reading, refuses a path that is
// absolute, empty or contains "..", and writes nothing until the whole
// message has been checked.
//
//   auto message = encode_job_files({{"job", record.id}}, {&record, 1}, run_root);
//   ...
//   const auto header = decode_job_files(message, other_run_root);  // files written
//   header["job"]  // == record.id
#include <packtrain/scheduler/journal.hpp>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <span>
#include <string>
#include <string_view>

namespace packtrain::distributed {

// `header` (a JSON object without a "files" key) and the files that
// `records` list, read from under `root`. Throws Error for a file that
// cannot be read: "job NAME (ID): its file PATH is missing (...)" when it
// is not there.
std::string encode_job_files(nlohmann::json header, std::span<const JobRecord> records,
                             const std::filesystem::path& root);

// Checks the whole of `message`, then writes its files under `root` (each
// atomically, creating folders) and returns its header without "files".
// Throws one Error naming what is wrong with a damaged message.
nlohmann::json decode_job_files(std::string_view message, const std::filesystem::path& root);

}  // namespace packtrain::distributed
