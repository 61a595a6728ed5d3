// The job-files codec (job_files.hpp): what a job end and the --resume
// hand-off carry between ranks. In-process, no MPI.
#include <packtrain/distributed/job_files.hpp>
#include <packtrain/scheduler/error.hpp>

#include "common/test_util.hpp"

#include <gtest/gtest.h>

#include <cstdint>

using namespace packtrain;
using packtrain::testing::read_file;
using packtrain::testing::TempDir;
using packtrain::testing::write_file;

namespace {

JobRecord record_with_files(const std::string& name, const std::vector<std::string>& files) {
  JobRecord r;
  r.id = "00000000000000" + std::to_string(name.size() % 10) + "f";
  r.name = name;
  r.status = JobStatus::done;
  r.artifacts = files;
  return r;
}

// A message built by hand: the 4-byte little-endian header length, the
// header, then `body`.
std::string frame(const nlohmann::json& header, const std::string& body) {
  const auto text = header.dump();
  std::string message;
  for (std::size_t i = 0, n = text.size(); i < 4; ++i, n >>= 8) message += static_cast<char>(n & 0xff);
  return message + text + body;
}

// Why decode_job_files refuses `message` (its Error's text).
std::string refusal(const std::string& message, const std::filesystem::path& root) {
  try {
    distributed::decode_job_files(message, root);
  } catch (const Error& e) {
    return e.what();
  }
  return "(decoded)";
}

bool empty_folder(const std::filesystem::path& dir) {
  return !std::filesystem::exists(dir) || std::filesystem::is_empty(dir);
}

}  // namespace

TEST(JobFiles, RoundTripWritesEveryFileAndGivesBackTheHeader) {
  TempDir here, there;
  const std::string binary("a\0b\xff\n", 5);
  write_file(here / "ckpt/round1/model.pt", binary);
  write_file(here / "ckpt/round1/empty.txt", "");
  write_file(here / "result.json", "{\"top1\": 0.5}");
  const std::vector<JobRecord> records = {record_with_files("lth/a", {"ckpt/round1/model.pt", "ckpt/round1/empty.txt"}),
                                          JobRecord{.id = "0000000000000001", .name = "no-files"},
                                          record_with_files("lth/b", {"result.json"})};

  const auto message = distributed::encode_job_files({{"job", "abc"}, {"n", 3}}, records, here.path());
  const auto header = distributed::decode_job_files(message, there.path());

  EXPECT_EQ(header, (nlohmann::json{{"job", "abc"}, {"n", 3}}));
  EXPECT_EQ(read_file(there / "ckpt/round1/model.pt"), binary);
  EXPECT_EQ(read_file(there / "ckpt/round1/empty.txt"), "");
  EXPECT_EQ(read_file(there / "result.json"), "{\"top1\": 0.5}");
}

TEST(JobFiles, ATruncatedMessageIsRefusedAndWritesNothing) {
  TempDir here, there;
  write_file(here / "f.bin", "0123456789");
  const auto message = distributed::encode_job_files({{"job", "abc"}}, std::vector{record_with_files("j", {"f.bin"})}, here.path());

  EXPECT_NE(refusal(message.substr(0, message.size() - 1), there.path()).find("runs past"), std::string::npos);
  EXPECT_NE(refusal(message.substr(0, 10), there.path()).find("header length"), std::string::npos);
  EXPECT_NE(refusal(message.substr(0, 3), there.path()).find("too few"), std::string::npos);
  EXPECT_TRUE(empty_folder(there.path()));
}

TEST(JobFiles, AFileSizeRunningPastTheEndIsRefused) {
  TempDir there;
  const auto message =
      frame({{"files", {{{"path", "a.txt"}, {"size", 4}}, {{"path", "b.txt"}, {"size", 100}}}}}, "aaaa0123456789");
  EXPECT_EQ(refusal(message, there.path()),
            "damaged job-files message: its file b.txt's size 100 runs past the 10 bytes left");
  EXPECT_TRUE(empty_folder(there.path())) << "a.txt was written before the message was checked";
}

TEST(JobFiles, BytesLeftAfterTheLastFileAreRefused) {
  TempDir there;
  const auto message = frame({{"files", {{{"path", "a.txt"}, {"size", 2}}}}}, "aaXX");
  EXPECT_EQ(refusal(message, there.path()), "damaged job-files message: 2 bytes are left after its last file");
}

TEST(JobFiles, ANegativeOrMissingSizeIsRefused) {
  TempDir there;
  EXPECT_NE(refusal(frame({{"files", {{{"path", "a.txt"}, {"size", -1}}}}}, ""), there.path()).find("is not"),
            std::string::npos);
  EXPECT_NE(refusal(frame({{"files", {{{"path", "a.txt"}}}}}, ""), there.path()).find("is not"), std::string::npos);
  EXPECT_NE(refusal(frame({{"job", "x"}}, ""), there.path()).find("no list of \"files\""), std::string::npos);
  std::string not_json = frame({{"files", nlohmann::json::array()}}, "");
  not_json[4] = '!';
  EXPECT_NE(refusal(not_json, there.path()).find("not JSON"), std::string::npos);
}

TEST(JobFiles, APathLeavingTheRunFolderIsRefusedOnBothSides) {
  TempDir here, there;
  for (const std::string path : {"../escape.txt", "a/../../escape.txt", "/tmp/escape.txt", ""}) {
    const auto message = frame({{"files", {{{"path", path}, {"size", 1}}}}}, "x");
    EXPECT_EQ(refusal(message, there / "run"),
              "damaged job-files message: its file " + path + " is not a path inside the run's folder");
  }
  EXPECT_TRUE(empty_folder(there.path()));
  write_file(here / "run/a.txt", "x");
  try {
    distributed::encode_job_files(nlohmann::json::object(), std::vector{record_with_files("j", {"../run/a.txt"})}, here / "run");
    ADD_FAILURE() << "encoded a path with ..";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("../run/a.txt is not a path inside the run's folder"), std::string::npos);
  }
}

TEST(JobFiles, AMissingFileIsOneLineNamingTheJobAndTheFile) {
  TempDir here;
  const auto record = record_with_files("lth/vgg/round2", {"ckpt/missing.pt"});
  try {
    distributed::encode_job_files({{"job", record.id}}, {&record, 1}, here.path());
    ADD_FAILURE() << "encoded a missing file";
  } catch (const Error& e) {
    const std::string text = e.what();
    EXPECT_EQ(text.rfind("job lth/vgg/round2 (" + record.id + "): its file ckpt/missing.pt is missing", 0), 0u)
        << text;
    EXPECT_EQ(text.find('\n'), std::string::npos);
  }
}
