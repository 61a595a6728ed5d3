// The job-files codec (the format is in job_files.hpp).
#include <packtrain/distributed/job_files.hpp>

#include <packtrain/scheduler/error.hpp>
#include <packtrain/scheduler/results.hpp>

#include <cstdint>
#include <fstream>
#include <iterator>
#include <limits>
#include <utility>
#include <vector>

namespace packtrain::distributed {
namespace {

constexpr std::size_t kLengthBytes = 4;

// A path a message may carry: relative to the run's folder and staying in it.
bool stays_in_run_folder(const std::filesystem::path& path) {
  if (path.empty() || path.has_root_path()) return false;
  for (const auto& part : path)
    if (part == "..") return false;
  return true;
}

std::string job_named(const JobRecord& record) { return "job " + record.name + " (" + record.id + ")"; }

std::string read_job_file(const JobRecord& record, const std::string& path, const std::filesystem::path& root) {
  const auto full = root / path;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(full, ec))
    throw Error(job_named(record) + ": its file " + path + " is missing (no " + full.string() + ")");
  std::ifstream in(full, std::ios::binary);
  if (!in) throw Error(job_named(record) + ": cannot read its file " + full.string());
  std::string data{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (in.bad()) throw Error(job_named(record) + ": cannot read its file " + full.string());
  return data;
}

[[noreturn]] void damaged(const std::string& what) { throw Error("damaged job-files message: " + what); }

}  // namespace

std::string encode_job_files(nlohmann::json header, std::span<const JobRecord> records,
                             const std::filesystem::path& root) {
  PACKTRAIN_CHECK(header.is_object() && !header.contains("files"), "a job-files header is an object without \"files\"");
  auto& listed = header["files"] = nlohmann::json::array();
  std::string files;
  for (const auto& record : records) {
    for (const auto& path : record.artifacts) {
      if (!stays_in_run_folder(path))
        throw Error(job_named(record) + ": its file " + path + " is not a path inside the run's folder");
      const auto data = read_job_file(record, path, root);
      listed.push_back({{"path", path}, {"size", data.size()}});
      files += data;
    }
  }
  const auto text = header.dump();
  if (text.size() > std::numeric_limits<std::uint32_t>::max())
    throw Error("a job-files header of " + std::to_string(text.size()) + " bytes is too large");
  auto n = static_cast<std::uint32_t>(text.size());
  std::string message(kLengthBytes, '\0');
  for (std::size_t i = 0; i < kLengthBytes; ++i, n >>= 8) message[i] = static_cast<char>(n & 0xffu);
  message.reserve(kLengthBytes + text.size() + files.size());
  message += text;
  message += files;
  return message;
}

nlohmann::json decode_job_files(std::string_view message, const std::filesystem::path& root) {
  if (message.size() < kLengthBytes)
    damaged(std::to_string(message.size()) + " bytes, too few for its 4-byte header length");
  std::uint32_t n = 0;
  for (std::size_t i = kLengthBytes; i-- > 0;) n = (n << 8) | static_cast<unsigned char>(message[i]);
  std::size_t left = message.size() - kLengthBytes;
  if (n > left) damaged("its header length " + std::to_string(n) + " runs past the " + std::to_string(left) + " bytes after it");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(message.substr(kLengthBytes, n));
  } catch (const nlohmann::json::exception& e) {
    damaged(std::string("its header is not JSON (") + e.what() + ")");
  }
  if (!header.is_object() || !header.contains("files") || !header["files"].is_array())
    damaged("its header has no list of \"files\"");
  std::size_t offset = kLengthBytes + n;
  left -= n;
  std::vector<std::pair<std::string, std::string_view>> files;
  for (const auto& f : header["files"]) {
    if (!f.is_object() || !f.contains("path") || !f["path"].is_string() || !f.contains("size") ||
        !f["size"].is_number_unsigned())
      damaged("a file entry " + f.dump() + " is not {\"path\": text, \"size\": bytes}");
    const auto path = f["path"].get<std::string>();
    if (!stays_in_run_folder(path)) damaged("its file " + path + " is not a path inside the run's folder");
    const auto size = f["size"].get<std::uint64_t>();
    if (size > left)
      damaged("its file " + path + "'s size " + std::to_string(size) + " runs past the " + std::to_string(left) +
              " bytes left");
    files.emplace_back(path, message.substr(offset, static_cast<std::size_t>(size)));
    offset += static_cast<std::size_t>(size);
    left -= static_cast<std::size_t>(size);
  }
  if (left != 0) damaged(std::to_string(left) + " bytes are left after its last file");
  for (const auto& [path, data] : files) {
    const auto full = root / path;
    std::error_code ec;
    std::filesystem::create_directories(full.parent_path(), ec);
    if (ec) throw Error("cannot create the folder " + full.parent_path().string() + ": " + ec.message());
    write_file_atomically(full, std::string(data));
  }
  header.erase("files");
  return header;
}

}  // namespace packtrain::distributed
