#include <packtrain/scheduler/job.hpp>

#include <packtrain/scheduler/error.hpp>
#include <packtrain/scheduler/events.hpp>

#include <array>
#include <cstdio>

namespace packtrain {
namespace {

constexpr std::array<std::pair<JobStatus, std::string_view>, 8> kStatusNames{{
    {JobStatus::queued, "queued"},
    {JobStatus::running, "running"},
    {JobStatus::done, "done"},
    {JobStatus::failed, "failed"},
    {JobStatus::diverged, "diverged"},
    {JobStatus::skipped, "skipped"},
    {JobStatus::cancelled, "cancelled"},
    {JobStatus::crashed, "crashed"},
}};

}  // namespace

std::string_view to_string(JobStatus status) {
  for (const auto& [s, name] : kStatusNames)
    if (s == status) return name;
  return "unknown";
}

JobStatus job_status_from_string(std::string_view text) {
  for (const auto& [s, name] : kStatusNames)
    if (name == text) return s;
  throw Error("unknown job status '" + std::string(text) + "'");
}

std::string_view to_string(EventKind kind) {
  switch (kind) {
    case EventKind::queued: return "queued";
    case EventKind::started: return "started";
    case EventKind::progress: return "progress";
    case EventKind::finished: return "finished";
    case EventKind::failed: return "failed";
    case EventKind::retried: return "retried";
    case EventKind::skipped: return "skipped";
    case EventKind::cancelled: return "cancelled";
    case EventKind::resized: return "resized";
  }
  return "unknown";
}

std::uint64_t stable_hash(std::string_view text) {
  std::uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a 64 offset basis
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ULL;  // FNV-1a 64 prime
  }
  return h;
}

std::uint64_t derive_seed(const std::string& job_id, std::uint64_t base_seed) {
  // splitmix64 finalizer over the id's hash mixed with the base seed.
  std::uint64_t z = stable_hash(job_id) ^ (base_seed * 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return (z ^ (z >> 31)) & 0x7fffffffffffffffULL;  // non-negative as int64 (torch seeds)
}

std::string Job::id() const {
  // nlohmann::json keeps object keys sorted, so dump() is canonical.
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(stable_hash(spec.dump())));
  return buf;
}

}  // namespace packtrain
